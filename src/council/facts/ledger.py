"""The facts room's tables and every query of them: `facts` and the `fact_jobs` queue.

A job is written in the same transaction as its exchange (`enqueue`), so a reply the client saw
always has its extraction pending or done; a job is deleted only in the transaction that
stores its outcome, so a crash in between leaves it pending and the next start redoes it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from council.learning.erasure import erase_exchanges
from council.memory.schema import run_script
from council.memory.store import ExchangeRecord, Store
from council.types import last_user_text

SQLITE_MAX_INT = 2**63  # ids are SQLite INTEGERs: anything at or past this cannot exist


def m008_facts(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            text TEXT NOT NULL,
            said_at REAL NOT NULL,                     -- when the user said it (newer wins)
            exchange_id TEXT,                          -- the turn it came from (no FK: erasable)
            source TEXT NOT NULL,                      -- head id, 'fallback', or 'edit'
            superseded_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            superseded_at REAL,                        -- NULL: current
            created_at REAL NOT NULL,
            vector BLOB NOT NULL                       -- float32, searched brute force per user
        );
        CREATE INDEX facts_user ON facts(user_id, superseded_at);

        CREATE TABLE fact_jobs (                       -- extraction waiting, durably
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            exchange_id TEXT,
            user_id TEXT NOT NULL,
            text TEXT NOT NULL,                        -- the user's turn
            said_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        """,
    )


@dataclass
class Job:
    id: int
    exchange_id: str | None
    user_id: str
    text: str
    said_at: float
    attempts: int


@dataclass
class Fact:
    id: int
    user_id: str
    text: str
    said_at: float
    exchange_id: str | None
    source: str
    superseded_by: int | None
    superseded_at: float | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_COLUMNS = (
    "id, user_id, text, said_at, exchange_id, source, superseded_by, superseded_at, created_at"
)


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def enqueue(db: sqlite3.Connection, rec: ExchangeRecord) -> None:
    """The exchange's user turn, queued in the transaction that records it (Store.record's
    `also`), whatever its label."""
    db.execute(
        "INSERT INTO fact_jobs (exchange_id, user_id, text, said_at, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (rec.id, rec.user_id, last_user_text(rec.messages), rec.created_at, time.time()),
    )


class FactLedger:
    """SQL over the facts tables of one store."""

    def __init__(self, store: Store):
        self.store = store

    # the queue ------------------------------------------------------------------------
    def pending(self, limit: int = 32) -> list[Job]:
        rows = self.store.query(
            "SELECT id, exchange_id, user_id, text, said_at, attempts FROM fact_jobs "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [Job(*r) for r in rows]

    def pending_count(self) -> int:
        return int(self.store.query("SELECT COUNT(*) FROM fact_jobs")[0][0])

    def attempted(self, job_id: int) -> None:
        with self.store.tx() as db:
            db.execute("UPDATE fact_jobs SET attempts = attempts + 1 WHERE id = ?", (job_id,))

    def drop_job(self, job_id: int) -> None:
        with self.store.tx() as db:
            db.execute("DELETE FROM fact_jobs WHERE id = ?", (job_id,))

    # facts ----------------------------------------------------------------------------
    def current(self, user: str, history: bool = False) -> tuple[list[Fact], np.ndarray]:
        """The user's facts not superseded (`history`: all), with their vectors (rows aligned),
        oldest first."""
        only_current = "" if history else " AND superseded_at IS NULL"
        rows = self.store.query(
            f"SELECT {_COLUMNS}, vector FROM facts WHERE user_id = ?{only_current} "
            "ORDER BY said_at, id",
            (user,),
        )
        facts = [Fact(*r[:-1]) for r in rows]
        vecs = [np.frombuffer(r[-1], dtype=np.float32) for r in rows]
        return facts, (np.stack(vecs) if vecs else np.zeros((0, 0), dtype=np.float32))

    def facts_of(self, user: str | None, history: bool = False) -> list[Fact]:
        where, args = [], []
        if user is not None:
            where.append("user_id = ?")
            args.append(user)
        if not history:
            where.append("superseded_at IS NULL")
        sql = f"SELECT {_COLUMNS} FROM facts"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY said_at DESC, id"
        return [Fact(*r) for r in self.store.query(sql, args)]

    def get(self, fact_id: int) -> Fact | None:
        if not 0 < fact_id < SQLITE_MAX_INT:  # no row has it, and SQLite cannot bind it
            return None
        rows = self.store.query(f"SELECT {_COLUMNS} FROM facts WHERE id = ?", (fact_id,))
        return Fact(*rows[0]) if rows else None

    def apply(
        self,
        job: Job,
        adds: list[tuple[str, np.ndarray, str, int | None]],
    ) -> list[int]:
        """One job's outcome in one transaction: each (text, vector, source, supersedes) added,
        the fact it supersedes (if any) kept as history, and the job gone. A job another
        replica's worker has done meanwhile adds nothing (its row is gone: [])."""
        now, ids = time.time(), []
        with self.store.tx() as db:
            # the job's row first: of two workers on one job, the second waits here for the
            # first's commit, then finds nothing to delete
            if db.execute("DELETE FROM fact_jobs WHERE id = ?", (job.id,)).rowcount == 0:
                return []
            for text, vector, source, old in adds:
                cur = db.execute(
                    "INSERT INTO facts (user_id, text, said_at, exchange_id, source, created_at, "
                    "vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job.user_id, text, job.said_at, job.exchange_id, source, now, _blob(vector)),
                )
                new = int(cur.lastrowid or 0)
                ids.append(new)
                if old is not None:
                    db.execute(
                        "UPDATE facts SET superseded_by = ?, superseded_at = ? "
                        "WHERE id = ? AND user_id = ?",
                        (new, job.said_at, old, job.user_id),  # when the newer one was said
                    )
        return ids

    def edit(self, fact_id: int, text: str, vector: np.ndarray) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE facts SET text = ?, vector = ?, source = 'edit' WHERE id = ?",
                (text, _blob(vector), fact_id),
            )

    def forget(self, fact_id: int) -> bool:
        """Erase one fact: the row and its vector (its history rows stay, unlinked)."""
        if not 0 < fact_id < SQLITE_MAX_INT:
            return False
        with self.store.tx() as db:
            return db.execute("DELETE FROM facts WHERE id = ?", (fact_id,)).rowcount > 0

    def forget_user(self, user: str) -> dict[str, int]:
        """Erase everything of a user: facts, queued jobs, memories, exchanges (with their
        votes, feedback and harvests), conversations, and the training examples and frozen
        dataset lines built from those exchanges. Returns counts per table."""
        with self.store.tx() as db:
            own = "(SELECT id FROM exchanges WHERE user_id = ?)"
            ids = {r[0] for r in db.execute(own[1:-1], (user,))}
            learnt = erase_exchanges(db, ids)
            db.execute(
                f"DELETE FROM harvests WHERE exchange_id IN {own} OR rewrite_id IN {own}",
                (user, user),
            )
            for table in ("votes", "feedback", "memories"):
                db.execute(f"DELETE FROM {table} WHERE exchange_id IN {own}", (user,))
            counts = {
                "facts": db.execute("DELETE FROM facts WHERE user_id = ?", (user,)).rowcount,
                "jobs": db.execute("DELETE FROM fact_jobs WHERE user_id = ?", (user,)).rowcount,
                "memories": db.execute("DELETE FROM memories WHERE user_id = ?", (user,)).rowcount,
            }
            db.execute(
                f"UPDATE exchanges SET parent_id = NULL WHERE parent_id IN {own}",
                (user,),
            )
            counts["exchanges"] = db.execute(
                "DELETE FROM exchanges WHERE user_id = ?", (user,)
            ).rowcount
            counts["conversations"] = db.execute(
                "DELETE FROM conversations WHERE user_id = ?", (user,)
            ).rowcount
        return counts | learnt
