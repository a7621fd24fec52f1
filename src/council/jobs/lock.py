"""The nightly cycle's leader lock: one `council improve` at a time, across processes and hosts.

Without COUNCIL_REDIS_URL the lock is an OS file lock (flock) on data_dir/locks/<name>.lock: the
kernel drops it when its holder dies, so a crashed cycle never blocks the next one. With it, the
lock is a Redis key (SET NX PX) whose value is the holder record; a thread renews its TTL while
it is held, so a holder that dies stops renewing and the key expires ttl_s later.

    with leader_lock(settings) as lease:   # raises LockHeld naming the holder
        ...
        lease.ensure_held()                # before anything that must not run twice
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import filelock

from council.config import Settings
from council.errors import CouncilError

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 60.0  # Redis only: how long a dead holder's lock outlives it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LockHeld(CouncilError):
    """Another process holds the lock; `holder` is its record (host, pid, started) if known."""

    status_code = 409
    error_type = "conflict_error"
    code = "lock_held"

    def __init__(self, name: str, holder: dict[str, Any] | None):
        self.name = name
        self.holder = holder
        who = _describe(holder) if holder else "its holder has not written its record yet"
        super().__init__(
            f"Another improvement cycle holds the '{name}' lock ({who}); "
            "wait for it to finish or stop it."
        )


class LockUnavailable(CouncilError):
    """The lock's backend cannot be used: Redis unreachable, or a filesystem without flock."""

    status_code = 503
    error_type = "service_unavailable"
    code = "lock_unavailable"


class LockLost(CouncilError):
    """A Redis lease expired while held (renewals failed): another cycle may hold it now."""

    status_code = 409
    error_type = "conflict_error"
    code = "lock_lost"


@dataclass
class Lease:
    """This process's hold on a lock: who holds it, and whether it is still held."""

    name: str
    backend: Literal["file", "redis"]
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    _lost: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def ensure_held(self) -> None:
        """Raise LockLost if the lease expired (Redis renewals failed) while we held it."""
        if self.lost:
            raise LockLost(
                f"The '{self.name}' lock expired while this cycle held it (Redis renewals "
                "failed); another cycle may be running. Stop here and rerun `council improve`."
            )

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "token": self.token,
        }

    def describe(self) -> str:
        return _describe(self.record())


def leader_lock(
    settings: Settings, name: str = "improve", *, ttl_s: float = DEFAULT_TTL_S
) -> AbstractContextManager[Lease]:
    """Hold the named lock for a `with` block, or raise LockHeld at once (never waits).

    ttl_s applies to the Redis lock only (a file lock dies with its process).
    """
    if not _NAME.match(name):
        raise ValueError(f"lock name {name!r} must be letters, digits, '.', '_' or '-'")
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, not {ttl_s}")
    if settings.deploy.redis_url:
        return _redis_lock(settings.deploy.redis_url, name, ttl_s)
    return _file_lock(Path(settings.server.data_dir) / "locks", name)


@contextlib.contextmanager
def _file_lock(folder: Path, name: str) -> Iterator[Lease]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    holder_path = folder / f"{name}.holder.json"
    # fallback_to_soft=False: a soft lock outlives a crashed holder, which is what we must avoid
    lock = filelock.FileLock(path, timeout=0, thread_local=False, fallback_to_soft=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(name, _read_record(holder_path)) from None
    except OSError as e:
        raise LockUnavailable(
            f"Cannot take the file lock {path} ({e}); put data_dir on a local filesystem "
            "that supports flock, or set COUNCIL_REDIS_URL to use a Redis lock."
        ) from e
    lease = Lease(name, "file")
    try:
        _write_record(holder_path, lease.record())
        yield lease
    finally:
        # The record goes before the lock: the next holder writes its own only after acquiring.
        try:
            holder_path.unlink(missing_ok=True)
        except OSError as e:
            log.warning("could not remove the lock holder record %s: %s", holder_path, e)
        lock.release()


@contextlib.contextmanager
def _redis_lock(url: str, name: str, ttl_s: float) -> Iterator[Lease]:
    import redis
    from redis.exceptions import LockError

    lease = Lease(name, "redis")
    key = f"council:lock:{name}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        # The token is the holder record (with a uuid): contenders read who holds it from the key.
        lock = client.lock(key, timeout=ttl_s, blocking=False, thread_local=False)
        acquired = lock.acquire(token=json.dumps(lease.record()))
        held = None if acquired else client.get(key)
    except (redis.RedisError, ValueError, OSError) as e:
        raise LockUnavailable(
            f"Cannot use Redis at {_redact(url)} for the '{name}' lock ({e}); check "
            "COUNCIL_REDIS_URL, or unset it to use a file lock under data_dir."
        ) from e
    if not acquired:
        client.close()
        raise LockHeld(name, _parse_record(held))
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lock, ttl_s, stop, lease), name=f"lock-{name}", daemon=True
    )
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()  # a Lua script: deletes the key only if our token is still its value
        except LockError:
            log.warning("the '%s' lock had expired before release; another cycle may hold it", name)
        except redis.RedisError as e:
            log.warning("could not release the '%s' lock (%s); it expires in %ss", name, e, ttl_s)
        finally:
            client.close()


def _renew(lock: Any, ttl_s: float, stop: threading.Event, lease: Lease) -> None:
    """Reset the key's TTL every ttl_s/3 until stopped; a lost key marks the lease lost."""
    from redis.exceptions import LockError, RedisError

    while not stop.wait(ttl_s / 3):
        try:
            lock.reacquire()
        except LockError:
            lease._lost.set()
            log.error("the '%s' lock expired while held; another cycle may take it", lease.name)
            return
        except RedisError as e:  # transient: the next tick retries while the TTL lasts
            log.warning("could not renew the '%s' lock: %s", lease.name, e)


def _describe(record: dict[str, Any]) -> str:
    return (
        f"host {record.get('host', '?')}, pid {record.get('pid', '?')}, "
        f"since {record.get('started', '?')}"
    )


def _write_record(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # contenders never read half a record


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        return _parse_record(path.read_bytes())
    except OSError:
        return None


def _parse_record(raw: bytes | str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparseable URL>"
