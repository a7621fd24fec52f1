"""Memory's tables (conversations, exchanges, votes, feedback, memories, documents, chunks)
and the migration machinery every part's tables go through.

Each part defines the migrations of its own tables (learning/ledger.py, adapters/ledger.py,
jobs/ledger.py); council/storage.py lists them all in one ordered history and hands it to the
Store. Applied names are recorded in `schema_migrations`; `PRAGMA user_version` holds how many
migrations a database has seen, so a database written by a newer Council (more migrations
than we know) is refused instead of silently downgraded.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from council.errors import SchemaTooNewError

# A migration is named mNNN_what; its name is recorded, so it never changes once released.
Migration = Callable[[sqlite3.Connection], None]


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


def m004_vote_certainty(db: sqlite3.Connection) -> None:
    # Each head's self-certainty (mean token logprob): the router relearns from it at start.
    db.execute("ALTER TABLE votes ADD COLUMN logprob REAL")


def m007_document_owner(db: sqlite3.Connection) -> None:
    # NULL: shared with every user (ingested by an admin or the CLI); else the one user whose
    # requests may recall it (ingested through the API by that user). memory/ownership.py reads it.
    db.execute("ALTER TABLE documents ADD COLUMN owner TEXT")


def m009_feedback_correction(db: sqlite3.Connection) -> None:
    # What a 👎 says the answer should have been: the strongest label learning has (harvest.py).
    db.execute("ALTER TABLE feedback ADD COLUMN correction TEXT")


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


def migrate(db: sqlite3.Connection, where: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply the pending ones of `migrations` (the whole ordered history) in order, each in its
    own transaction; returns their names.

    `db` must be in autocommit mode (isolation_level=None): we issue BEGIN/COMMIT ourselves so
    that DDL is transactional too.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise SchemaTooNewError(
            f"The database {where} has schema version {version}, but this Council knows only "
            f"{len(migrations)}: it was written by a newer release. Upgrade Council, or set "
            "COUNCIL_DATA_DIR to another folder. The database was left untouched."
        )
    applied = []
    for number, step in enumerate(migrations[version:], start=version + 1):
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
