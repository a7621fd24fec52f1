"""The quota's storage: per-user limit overrides and usage per UTC day (its migration and every
query of it), over the memory Store. Keyed by the user's name, not by the users table, so the
quota does not depend on how keys are stored."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from council.memory.schema import run_script
from council.memory.store import Store

UNLIMITED = -1  # an override that lifts a default limit (NULL: the default applies)


# migrations (council/storage.py orders them) ---------------------------------------------
def m005_key_limits(db: sqlite3.Connection) -> None:
    """Limit overrides per user, requests and head calls per user and UTC day."""
    run_script(
        db,
        """
        CREATE TABLE limits_override (
            user TEXT PRIMARY KEY,
            rpm INTEGER,                -- NULL: settings' default; -1: unlimited
            tokens_per_day INTEGER,
            usd_per_day REAL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE key_requests (     -- requests admitted to the council, and refused
            day TEXT NOT NULL,          -- YYYY-MM-DD, UTC
            user TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, user)
        );
        CREATE TABLE key_usage (        -- every head call a user's requests caused
            day TEXT NOT NULL,
            user TEXT NOT NULL,
            head TEXT NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (day, user, head)
        );
        """,
    )


# overrides -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Override:
    """One user's stored overrides: None keeps the default, UNLIMITED lifts it."""

    rpm: int | None = None
    tokens_per_day: int | None = None
    usd_per_day: float | None = None


def override(store: Store, user: str) -> Override:
    rows = store.query(
        'SELECT rpm, tokens_per_day, usd_per_day FROM limits_override WHERE "user" = ?', (user,)
    )
    return Override(*rows[0]) if rows else Override()


def set_override(store: Store, user: str, new: Override) -> None:
    with store.tx() as db:
        db.execute(
            'INSERT INTO limits_override ("user", rpm, tokens_per_day, usd_per_day, updated_at) '
            'VALUES (?, ?, ?, ?, ?) ON CONFLICT ("user") DO UPDATE SET rpm = excluded.rpm, '
            "tokens_per_day = excluded.tokens_per_day, usd_per_day = excluded.usd_per_day, "
            "updated_at = excluded.updated_at",
            (user, new.rpm, new.tokens_per_day, new.usd_per_day, time.time()),
        )


def overrides(store: Store) -> dict[str, Override]:
    rows = store.query('SELECT "user", rpm, tokens_per_day, usd_per_day FROM limits_override')
    return {r[0]: Override(r[1], r[2], r[3]) for r in rows}


# usage -----------------------------------------------------------------------------------
def count_request(store: Store, day: str, user: str, rejected: bool) -> None:
    with store.tx() as db:
        db.execute(
            'INSERT INTO key_requests (day, "user", requests, rejected) VALUES (?, ?, ?, ?) '
            'ON CONFLICT (day, "user") DO UPDATE SET '
            "requests = key_requests.requests + excluded.requests, "
            "rejected = key_requests.rejected + excluded.rejected",
            (day, user, int(not rejected), int(rejected)),
        )


def charge(
    store: Store, day: str, user: str, head: str, calls: int, tokens_in: int, tokens_out: int,
    cost_usd: float,
) -> None:  # fmt: skip
    with store.tx() as db:
        db.execute(
            'INSERT INTO key_usage (day, "user", head, calls, tokens_in, tokens_out, cost_usd) '
            'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, "user", head) DO UPDATE SET '
            "calls = key_usage.calls + excluded.calls, "
            "tokens_in = key_usage.tokens_in + excluded.tokens_in, "
            "tokens_out = key_usage.tokens_out + excluded.tokens_out, "
            "cost_usd = key_usage.cost_usd + excluded.cost_usd",
            (day, user, head, calls, tokens_in, tokens_out, cost_usd),
        )


def usage(store: Store, since: str, user: str | None = None) -> dict[str, dict[str, Any]]:
    """Per user since that UTC day (inclusive): requests, rejected, and per head calls, tokens
    and cost. `user` None: every user."""
    where, args = "day >= ?", [since]
    if user is not None:
        where, args = 'day >= ? AND "user" = ?', [since, user]
    out: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return out.setdefault(name, {"user": name, "requests": 0, "rejected": 0, "heads": {}})

    for r in store.query(
        'SELECT "user", SUM(requests), SUM(rejected) FROM key_requests '
        f'WHERE {where} GROUP BY "user"',
        args,
    ):
        e = entry(r[0])
        e["requests"], e["rejected"] = r[1], r[2]
    for r in store.query(
        'SELECT "user", head, SUM(calls), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) '
        f'FROM key_usage WHERE {where} GROUP BY "user", head ORDER BY "user", head',
        args,
    ):
        entry(r[0])["heads"][r[1]] = {
            "calls": r[2], "tokens_in": r[3], "tokens_out": r[4], "cost_usd": r[5],
        }  # fmt: skip
    return out
