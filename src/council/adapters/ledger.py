"""The adapters' storage: versions, per-role aliases and deployments (their tables, their
migration and every query of them), over the memory Store. registry.py holds the rules."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from council.memory.schema import run_script
from council.memory.store import Store


# migrations (council/storage.py orders them) ---------------------------------------------
def m003_adapter_tables(db: sqlite3.Connection) -> None:
    """The adapters' part of m003_adapters (see council/storage.py)."""
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
        """,
    )


# versions ----------------------------------------------------------------------------------
def insert_adapter(store: Store, meta: dict[str, Any]) -> None:
    """Record a finished adapter (its meta.json); a known version is left as it is."""
    with store.tx() as db:
        db.execute(
            "INSERT INTO adapters (version, role, path, base_model, dataset_version, "
            "meta_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (meta["version"], meta["role"], meta["path"], meta.get("base_model_name", ""),
             meta.get("dataset_version"), json.dumps(meta), meta["created_at"]),
        )  # fmt: skip


def known_versions(store: Store) -> set[str]:
    return {r["version"] for r in store.query("SELECT version FROM adapters")}


def adapter_row(store: Store, version: str) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM adapters WHERE version = ?", (version,))
    return rows[0] if rows else None


def newest_versions(store: Store, limit: int = 5) -> list[str]:
    """The newest versions whose files are still there."""
    rows = store.query(
        "SELECT version FROM adapters WHERE retired = 0 ORDER BY created_at DESC LIMIT ?",
        (limit,),
    )
    return [r["version"] for r in rows]


def adapter_rows(store: Store, role: str | None = None) -> list[sqlite3.Row]:
    sql = "SELECT * FROM adapters" + (" WHERE role = ?" if role else "")
    return store.query(sql + " ORDER BY created_at", (role,) if role else ())


def retire(store: Store, version: str) -> None:
    """Retention removed the version's files; its row stays."""
    with store.tx() as db:
        db.execute("UPDATE adapters SET retired = 1 WHERE version = ?", (version,))


# aliases -----------------------------------------------------------------------------------
def alias_rows(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT role, alias, version FROM adapter_aliases")


def alias(db: sqlite3.Connection, role: str, name: str) -> str | None:
    row = db.execute(
        "SELECT version FROM adapter_aliases WHERE role = ? AND alias = ?", (role, name)
    ).fetchone()
    return row["version"] if row else None


def set_alias(db: sqlite3.Connection, role: str, name: str, version: str | None) -> None:
    db.execute(
        "INSERT INTO adapter_aliases (role, alias, version, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (role, alias) DO UPDATE SET version = excluded.version, "
        "updated_at = excluded.updated_at",
        (role, name, version, time.time()),
    )


def roles(store: Store) -> list[str]:
    rows = store.query(
        "SELECT role FROM adapters UNION SELECT role FROM adapter_aliases ORDER BY role"
    )
    return [r["role"] for r in rows]


# deployments -------------------------------------------------------------------------------
def canary_of(db: sqlite3.Connection, role: str) -> sqlite3.Row | None:
    """(id, version, started_at) of the role's canary being watched, if any."""
    row: sqlite3.Row | None = db.execute(
        "SELECT id, version, started_at FROM deployments WHERE role = ? AND state = 'canary'",
        (role,),
    ).fetchone()
    return row


def insert_deployment(
    db: sqlite3.Connection, *, role: str, version: str | None, previous: str | None,
    action: str, canary: bool, share: float, window_s: float, requests: int, reason: str,
) -> int:  # fmt: skip
    cur = db.execute(
        "INSERT INTO deployments (role, version, previous, action, state, share, "
        "window_s, requests, reason, started_at, ended_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (role, version, previous, action, "canary" if canary else "confirmed", share,
         window_s if canary else 0, requests if canary else 0, reason, time.time(),
         None if canary else time.time()),
    )  # fmt: skip
    assert cur.lastrowid is not None
    return cur.lastrowid


def insert_rollback(
    db: sqlite3.Connection, *, role: str, version: str | None, previous: str | None,
    reason: str, summary: dict[str, Any], now: float,
) -> int:  # fmt: skip
    cur = db.execute(
        "INSERT INTO deployments (role, version, previous, action, state, reason, "
        "summary_json, started_at, ended_at) VALUES (?, ?, ?, 'rollback', 'confirmed', "
        "?, ?, ?, ?)",
        (role, version, previous, reason, json.dumps(summary), now, now),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def roll_back_canary(
    db: sqlite3.Connection, dep_id: int, reason: str, summary: dict[str, Any], now: float
) -> None:
    db.execute(
        "UPDATE deployments SET state = 'rolled_back', ended_at = ?, reason = ?, "
        "summary_json = ? WHERE id = ?",
        (now, reason, json.dumps(summary), dep_id),
    )


def replaced_by(db: sqlite3.Connection, role: str, version: str | None) -> str | None:
    """What `version` replaced when it last became the role's champion (not by a rollback)."""
    row = db.execute(
        "SELECT previous FROM deployments WHERE role = ? AND action != 'rollback' "
        "AND version IS NOT DISTINCT FROM ? ORDER BY id DESC LIMIT 1",
        (role, version),
    ).fetchone()
    return row["previous"] if row else None


def confirm(store: Store, dep_id: int, summary: dict[str, Any]) -> None:
    with store.tx() as db:
        db.execute(
            "UPDATE deployments SET state = 'confirmed', ended_at = ?, summary_json = ? "
            "WHERE id = ? AND state = 'canary'",
            (time.time(), json.dumps(summary), dep_id),
        )


def deployment_row(store: Store, dep_id: int) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM deployments WHERE id = ?", (dep_id,))
    return rows[0] if rows else None


def canary_rows(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM deployments WHERE state = 'canary' ORDER BY id")


def history_rows(store: Store, role: str | None, limit: int) -> list[sqlite3.Row]:
    sql = "SELECT * FROM deployments" + (" WHERE role = ?" if role else "")
    args: tuple[Any, ...] = (role, limit) if role else (limit,)
    return store.query(sql + " ORDER BY id DESC LIMIT ?", args)


def signature(store: Store) -> tuple[Any, ...]:
    """Changes whenever an alias or a deployment changes (servers poll this)."""
    row = store.query(
        "SELECT (SELECT MAX(updated_at) FROM adapter_aliases) AS a, "
        "(SELECT MAX(id) FROM deployments) AS d, "
        "(SELECT COUNT(*) FROM deployments WHERE state = 'canary') AS c"
    )[0]
    return (row["a"], row["d"], row["c"])


# figures for /metrics ----------------------------------------------------------------------
def count_adapters(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) FROM adapters")[0][0])


def newest_meta(store: Store) -> dict[str, Any] | None:
    """meta.json of the newest adapter."""
    rows = store.query("SELECT meta_json FROM adapters ORDER BY created_at DESC LIMIT 1")
    return json.loads(rows[0][0]) if rows else None


def count_deployments(store: Store) -> tuple[int, int]:
    """(deployments confirmed, rollbacks)."""
    ok = store.query(
        "SELECT COUNT(*) FROM deployments WHERE action != 'rollback' AND state = 'confirmed'"
    )[0][0]
    rolled = store.query("SELECT COUNT(*) FROM deployments WHERE action = 'rollback'")[0][0]
    return int(ok), int(rolled)


def champions(store: Store) -> list[sqlite3.Row]:
    """(role, version) of every role's champion alias."""
    return store.query("SELECT role, version FROM adapter_aliases WHERE alias = 'champion'")
