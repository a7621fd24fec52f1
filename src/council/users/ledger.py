"""The users' storage: `users`, `api_keys` and `sessions` (their migration and every query of
them), over the memory Store. keys.py holds the rules (what a key looks like, who may sign in).

Secrets are never stored: a key and a session id are kept as the SHA-256 of their text. Both
are 256-bit random values, so a fast hash is enough (a slow password hash guards guessable
secrets); the key's first characters are kept apart, to tell keys apart in listings.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from council.memory.schema import run_script
from council.memory.store import Store


# migrations (council/storage.py orders them) ---------------------------------------------
def m006_users(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            admin INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            revoked_at REAL                            -- set: no key of theirs works
        );

        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users(name),
            sha256 TEXT NOT NULL UNIQUE,               -- of the whole key; the key is not kept
            prefix TEXT NOT NULL,                      -- its first characters, for listings
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE INDEX api_keys_user ON api_keys(user_name);

        CREATE TABLE sessions (                        -- the web page's sign-ins
            sha256 TEXT PRIMARY KEY,                   -- of the cookie's session id
            key_id INTEGER NOT NULL REFERENCES api_keys(id),
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        """,
    )


# users and keys ----------------------------------------------------------------------------
def user(store: Store, name: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM users WHERE name = ?", (name,))
    return dict(rows[0]) if rows else None


def add_user(store: Store, name: str, admin: bool, sha256: str, prefix: str) -> None:
    """A new user (or a revoked one back) with one new key, in one transaction."""
    now = time.time()
    with store.tx() as db:
        db.execute(
            "INSERT INTO users (name, admin, created_at) VALUES (?, ?, ?) ON CONFLICT(name) "
            "DO UPDATE SET admin = excluded.admin, revoked_at = NULL",
            (name, int(admin), now),
        )
        db.execute(
            "INSERT INTO api_keys (user_name, sha256, prefix, created_at) VALUES (?, ?, ?, ?)",
            (name, sha256, prefix, now),
        )


def users(store: Store) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT u.name, u.admin, u.created_at, u.revoked_at, "
        "(SELECT GROUP_CONCAT(k.prefix) FROM api_keys k "
        " WHERE k.user_name = u.name AND k.revoked_at IS NULL) AS keys "
        "FROM users u ORDER BY u.name"
    )
    return [
        {**dict(r), "admin": bool(r["admin"]), "keys": (r["keys"] or "").split(",") if r["keys"]
         else []}
        for r in rows
    ]  # fmt: skip


def revoke_user(store: Store, name: str) -> bool:
    """Revoke the user and every key of theirs, and end their sessions; False: no such user."""
    now = time.time()
    with store.tx() as db:
        cur = db.execute(
            "UPDATE users SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now, name)
        )
        db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
            (now, name),
        )
        db.execute(
            "DELETE FROM sessions WHERE key_id IN (SELECT id FROM api_keys WHERE user_name = ?)",
            (name,),
        )
        return cur.rowcount > 0


def any_key(store: Store) -> bool:
    """Whether a key was ever issued (revoked ones count: revoking the last user must not
    reopen the server to everyone as single-user mode)."""
    return bool(store.query("SELECT EXISTS (SELECT 1 FROM api_keys)")[0][0])


def live_key(store: Store, sha256: str) -> dict[str, Any] | None:
    """The key with this hash, with its user, if neither is revoked."""
    rows = store.query(
        "SELECT k.id, k.prefix, u.name, u.admin FROM api_keys k JOIN users u "
        "ON u.name = k.user_name WHERE k.sha256 = ? AND k.revoked_at IS NULL "
        "AND u.revoked_at IS NULL",
        (sha256,),
    )
    return dict(rows[0]) if rows else None


# sessions ----------------------------------------------------------------------------------
def add_session(store: Store, sha256: str, key_id: int, expires_at: float) -> None:
    now = time.time()
    with store.tx() as db:
        db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        db.execute(
            "INSERT INTO sessions (sha256, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (sha256, key_id, now, expires_at),
        )


def live_session(store: Store, sha256: str) -> dict[str, Any] | None:
    """The key behind an unexpired session, if the key and its user are not revoked."""
    rows = store.query(
        "SELECT k.id, k.prefix, u.name, u.admin FROM sessions s "
        "JOIN api_keys k ON k.id = s.key_id JOIN users u ON u.name = k.user_name "
        "WHERE s.sha256 = ? AND s.expires_at > ? AND k.revoked_at IS NULL "
        "AND u.revoked_at IS NULL",
        (sha256, time.time()),
    )
    return dict(rows[0]) if rows else None


def end_session(store: Store, sha256: str) -> None:
    with store.tx() as db:
        db.execute("DELETE FROM sessions WHERE sha256 = ?", (sha256,))
