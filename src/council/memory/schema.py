"""The store's schema as an ordered list of migrations (applied names are recorded).

`PRAGMA user_version` holds how many migrations a database has seen, so a database written by
a newer Council (more migrations than we know) is refused instead of silently downgraded.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from council.errors import SchemaTooNewError

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX conversations_user ON conversations(user_id, updated_at);

        CREATE TABLE exchanges (
            id TEXT PRIMARY KEY,
            conversation_id TEXT REFERENCES conversations(id),
            user_id TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'council',      -- council | single | agent0
            created_at REAL NOT NULL,
            prompt TEXT NOT NULL,                      -- the last user message
            messages_json TEXT NOT NULL,               -- everything the heads were sent
            answer TEXT NOT NULL,
            strategy TEXT NOT NULL,
            task_type TEXT,
            models_json TEXT NOT NULL,
            confidence REAL,
            latency_ms REAL,
            cost_usd REAL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            notes_json TEXT NOT NULL DEFAULT '[]',
            recalled_json TEXT NOT NULL DEFAULT '[]',  -- memories and snippets put in the prompt
            success INTEGER,                           -- 1, 0 or NULL (unknown)
            label_source TEXT,                         -- confidence | verifier | judge | feedback
            parent_id TEXT REFERENCES exchanges(id),   -- an improved answer points at the original
            improved INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX exchanges_time ON exchanges(created_at);
        CREATE INDEX exchanges_conversation ON exchanges(conversation_id, created_at);
        CREATE INDEX exchanges_success ON exchanges(success, created_at);

        CREATE TABLE votes (
            exchange_id TEXT NOT NULL REFERENCES exchanges(id),
            position INTEGER NOT NULL,
            head TEXT NOT NULL,
            answer TEXT NOT NULL,
            extracted TEXT,
            cluster INTEGER,
            weight REAL NOT NULL,
            latency_ms REAL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost_usd REAL,
            error TEXT,
            won INTEGER NOT NULL,
            PRIMARY KEY (exchange_id, position)
        );

        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            exchange_id TEXT NOT NULL REFERENCES exchanges(id),
            rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
            comment TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX feedback_exchange ON feedback(exchange_id);

        CREATE TABLE memories (                        -- what vector recall searches
            id INTEGER PRIMARY KEY AUTOINCREMENT,      -- never reused: index ids stay unique
            text TEXT NOT NULL,
            role TEXT NOT NULL,                        -- exchange | note | agent0 | ...
            user_id TEXT NOT NULL,
            session_id TEXT,
            exchange_id TEXT REFERENCES exchanges(id),
            success INTEGER,
            meta_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            vector BLOB NOT NULL                       -- float32, so the index rebuilds offline
        );
        CREATE INDEX memories_user ON memories(user_id, created_at);
        CREATE INDEX memories_exchange ON memories(exchange_id);

        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            chunks INTEGER NOT NULL,
            ingested_at REAL NOT NULL
        );

        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            text TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX chunks_document ON chunks(document_id, position);
        """,
    )


@migration
def m002_learning(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE harvests (                        -- one row per harvested failure
            exchange_id TEXT PRIMARY KEY REFERENCES exchanges(id),
            status TEXT NOT NULL,                      -- accepted | rejected
            rewrite_id TEXT REFERENCES exchanges(id),  -- Agent-0's answer, stored as an exchange
            quality REAL NOT NULL,
            signals_json TEXT NOT NULL,
            agent TEXT NOT NULL,
            harvested_at REAL NOT NULL
        );

        CREATE TABLE examples (                        -- training examples, each traceable
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,                      -- harvest | collector | distill
            exchange_ids_json TEXT NOT NULL,           -- where it came from
            messages_json TEXT NOT NULL,               -- the prompt side (system/user turns)
            response TEXT NOT NULL,                    -- the assistant answer to learn
            reasoning TEXT,
            quality REAL NOT NULL,
            task_type TEXT,
            models_agreed INTEGER,
            user_feedback INTEGER,
            signals_json TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL UNIQUE,         -- exact duplicates are refused
            vector BLOB,                               -- prompt embedding, for near-duplicates
            created_at REAL NOT NULL
        );
        CREATE INDEX examples_quality ON examples(quality);

        CREATE TABLE holdout (                         -- gauntlet items training must never see
            content_hash TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            family TEXT,
            vector BLOB,
            created_at REAL NOT NULL
        );

        CREATE TABLE datasets (                        -- frozen, immutable versions
            version TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            examples INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    )


@migration
def m003_adapters(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE adapters (                        -- immutable trained versions
            version TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            path TEXT NOT NULL,
            base_model TEXT NOT NULL,
            dataset_version TEXT,
            meta_json TEXT NOT NULL,
            retired INTEGER NOT NULL DEFAULT 0,        -- files removed by retention
            created_at REAL NOT NULL
        );
        CREATE INDEX adapters_role ON adapters(role, created_at);

        CREATE TABLE adapter_aliases (                 -- champion | challenger | previous
            role TEXT NOT NULL,
            alias TEXT NOT NULL,
            version TEXT REFERENCES adapters(version), -- NULL: the base model, no adapter
            updated_at REAL NOT NULL,
            PRIMARY KEY (role, alias)
        );

        CREATE TABLE deployments (                     -- every champion change, with its canary
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            role TEXT NOT NULL,
            version TEXT,                              -- NULL: back to the base model
            previous TEXT,
            action TEXT NOT NULL,                      -- deploy | promote | rollback
            state TEXT NOT NULL,                       -- canary | confirmed | rolled_back
            share REAL NOT NULL DEFAULT 1.0,
            window_s REAL NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL DEFAULT '',
            summary_json TEXT NOT NULL DEFAULT '{}',
            started_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE INDEX deployments_state ON deployments(state, role);

        CREATE TABLE gauntlet_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            role TEXT NOT NULL,
            champion TEXT,
            challenger TEXT NOT NULL,
            verdict TEXT NOT NULL,
            ratio REAL,
            path TEXT,
            report_json TEXT NOT NULL,
            created_at REAL NOT NULL
        );

        CREATE TABLE runs (                            -- background training / improve runs
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,                        -- train | improve
            status TEXT NOT NULL,                      -- queued | running | succeeded | failed
            step TEXT NOT NULL DEFAULT '',
            progress REAL NOT NULL DEFAULT 0,
            params_json TEXT NOT NULL DEFAULT '{}',
            steps_json TEXT NOT NULL DEFAULT '[]',     -- [{name, status, seconds, detail}]
            result_json TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            log_path TEXT,
            host TEXT,
            pid INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL
        );
        """,
    )


@migration
def m004_vote_certainty(db: sqlite3.Connection) -> None:
    # Each head's self-certainty (mean token logprob): the router relearns from it at start.
    db.execute("ALTER TABLE votes ADD COLUMN logprob REAL")


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Execute statements one by one (executescript would COMMIT the open transaction)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            db.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending[:80]!r}")


def migrate(db: sqlite3.Connection, where: str) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns their names.

    `db` must be in autocommit mode (isolation_level=None): we issue BEGIN/COMMIT ourselves so
    that DDL is transactional too.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaTooNewError(
            f"The database {where} has schema version {version}, but this Council knows only "
            f"{len(MIGRATIONS)}: it was written by a newer release. Upgrade Council, or set "
            "COUNCIL_DATA_DIR to another folder. The database was left untouched."
        )
    applied = []
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")  # a crash mid-migration leaves the previous version
        try:
            step(db)
            db.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (step.__name__, time.time()),
            )
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(step.__name__)
    return applied
