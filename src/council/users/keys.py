"""Users and their API keys: issue one (shown once), list, revoke, and tell who a key is.

    users = Users(store)
    name, key = users.add("ana")            # key: "ck-..." printed once, stored hashed
    users.caller(key)                       # Caller("ana", admin=False, key="ck-AbCdEf")
    users.revoke("ana")                     # her key and sessions stop working at once

Nothing is cached: every request looks its key up (one indexed SELECT), so a revocation
answers the very next request with 401.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from council.errors import InvalidRequestError, UserExistsError, UserNotFoundError
from council.memory.store import Store
from council.users import ledger
from council.users.caller import ANONYMOUS, Caller

KEY_PREFIX = "ck-"
SHOWN = len(KEY_PREFIX) + 6  # characters of a key kept for listings ("ck-AbCdEf")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidRequestError(
            f"User name {name!r} is not allowed: use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit.",
            param="name",
            code="invalid_user_name",
        )
    if name.lower() == ANONYMOUS:  # it owns what single-user mode stored before any key
        raise InvalidRequestError(
            f"User name {name!r} is reserved for requests nobody signed in to: pick another.",
            param="name",
            code="reserved_user_name",
        )
    return name


def _caller(row: dict[str, Any]) -> Caller:
    return Caller(row["name"], admin=bool(row["admin"]), key=row["prefix"])


class Users:
    """The users of one store (the server's, or the one `council users` opens)."""

    def __init__(self, store: Store):
        self.store = store
        self._keys_seen = False  # api_keys rows are never deleted: once seen, always there

    def add(self, name: str, admin: bool = False) -> tuple[str, str]:
        """A new user with a new key; returns (name, key). A revoked user may be added again
        (with a new key: the old one stays revoked)."""
        check_name(name)
        known = ledger.user(self.store, name)
        if known is not None and known["revoked_at"] is None:
            raise UserExistsError(
                f"User {name!r} already exists. To give them a new key, revoke the old one "
                f"(`council users revoke {name}`) and add them again."
            )
        key = new_key()
        ledger.add_user(self.store, name, admin, digest(key), key[:SHOWN])
        return name, key

    def list(self) -> list[dict[str, Any]]:
        return ledger.users(self.store)

    def revoke(self, name: str) -> None:
        if not ledger.revoke_user(self.store, name):
            raise UserNotFoundError(
                f"No active user {name!r}. See who exists with `council users list` "
                "(or GET /api/users)."
            )

    def keys_exist(self) -> bool:
        """Whether a key was ever issued (revoked ones count). Asked on every request until
        the first key appears (another process may add it), never again after."""
        if not self._keys_seen:
            self._keys_seen = ledger.any_key(self.store)
        return self._keys_seen

    def caller(self, key: str) -> Caller | None:
        """Who this key is, or None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX):
            return None
        row = ledger.live_key(self.store, digest(key))
        return _caller(row) if row else None

    # the web page's sessions -------------------------------------------------------------
    def open_session(self, key: str, ttl_s: float) -> tuple[str, Caller] | None:
        """A new session id (the cookie's value) for a valid key, or None."""
        row = ledger.live_key(self.store, digest(key)) if key.startswith(KEY_PREFIX) else None
        if row is None:
            return None
        sid = secrets.token_urlsafe(32)
        ledger.add_session(self.store, digest(sid), int(row["id"]), time.time() + ttl_s)
        return sid, _caller(row)

    def session(self, sid: str) -> Caller | None:
        row = ledger.live_session(self.store, digest(sid))
        return _caller(row) if row else None

    def close_session(self, sid: str) -> None:
        ledger.end_session(self.store, digest(sid))
