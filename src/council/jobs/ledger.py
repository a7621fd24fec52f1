"""The jobs' storage: the `runs` table (its migration and every query of it), over the memory
Store. runs.py holds the run records' rules and log files."""

from __future__ import annotations

import sqlite3
from typing import Any

from council.memory.schema import run_script
from council.memory.store import Store


# migrations (council/storage.py orders them) ---------------------------------------------
def m003_runs(db: sqlite3.Connection) -> None:
    """The jobs' part of m003_adapters (see council/storage.py)."""
    run_script(
        db,
        """
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


# run records -------------------------------------------------------------------------------
COLUMNS = ("status", "step", "progress", "pid", "error", "result_json", "steps_json",
           "params_json", "finished_at", "updated_at")  # fmt: skip


def insert_run(
    store: Store, *, run_id: str, kind: str, params_json: str, log_path: str, host: str,
    pid: int, now: float,
) -> None:  # fmt: skip
    with store.tx() as db:
        db.execute(
            "INSERT INTO runs (id, kind, status, params_json, log_path, host, pid, "
            "created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            (run_id, kind, params_json, log_path, host, pid, now, now),
        )


def update_run(store: Store, run_id: str, cols: dict[str, Any]) -> None:
    """Set these columns (names from COLUMNS only: they are spliced into the SQL)."""
    unknown = set(cols) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a column of runs: {', '.join(sorted(unknown))}")
    sets = ", ".join(f"{k} = ?" for k in cols)
    with store.tx() as db:
        db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*cols.values(), run_id))


def run_row(store: Store, run_id: str) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM runs WHERE id = ?", (run_id,))
    return rows[0] if rows else None


def recent_runs(store: Store, kind: str | None, limit: int) -> list[dict[str, Any]]:
    sql = "SELECT id, kind, status, step, progress, created_at, finished_at, error FROM runs"
    args: tuple[Any, ...] = (kind, limit) if kind else (limit,)
    sql += (" WHERE kind = ?" if kind else "") + " ORDER BY created_at DESC LIMIT ?"
    return [dict(r) for r in store.query(sql, args)]


def unfinished_runs(store: Store, kind: str, host: str, keep: str) -> list[sqlite3.Row]:
    """(id, pid) of this host's queued or running runs of a kind, but `keep`."""
    return store.query(
        "SELECT id, pid FROM runs WHERE kind = ? AND status IN ('queued', 'running') "
        "AND host = ? AND id != ?",
        (kind, host, keep),
    )


def finished_runs_past(store: Store, keep: int) -> list[str]:
    """Ids of the finished runs older than the newest `keep` runs."""
    rows = store.query(  # the offset in Python: SQLite and Postgres spell "no limit" apart
        "SELECT id FROM runs WHERE finished_at IS NOT NULL ORDER BY created_at DESC"
    )
    return [r["id"] for r in rows[keep:]]


# figures for /metrics ----------------------------------------------------------------------
def improve_counts(store: Store) -> dict[str, int]:
    """Improvement cycles by status."""
    rows = store.query(
        "SELECT status, COUNT(*) AS n FROM runs WHERE kind = 'improve' GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


def last_improve_seconds(store: Store) -> float | None:
    """Wall time of the latest finished improvement cycle."""
    rows = store.query(
        "SELECT finished_at - created_at FROM runs WHERE kind = 'improve' "
        "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
    )
    return rows[0][0] if rows else None
