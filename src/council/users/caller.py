"""The caller of the request in flight, as the server authenticated it.

The server sets it once per request (`bind`); code below the server that must know whose
request it serves (limits counting every head call, usage records) reads `current()` instead
of having the caller threaded through every signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """`name` owns the data the request reads and writes; `key` names the API key used (None in
    single-user mode, where nobody signs in); `admin` may use the admin endpoints."""

    name: str
    admin: bool = False
    key: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.key is not None

    @property
    def metered(self) -> bool:
        """Limits and usage count user keys: not single-user mode, nor the admin token (whose
        caller's name starts with ':', which no user name may contain)."""
        return self.signed_in and not self.name.startswith(":")


_current: ContextVar[Caller | None] = ContextVar("council_caller", default=None)


def current() -> Caller | None:
    return _current.get()


@contextmanager
def bind(caller: Caller) -> Iterator[Caller]:
    token = _current.set(caller)
    try:
        yield caller
    finally:
        _current.reset(token)
