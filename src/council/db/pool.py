"""Where the store's statements run: a transaction, or one statement, on a checked-out connection.

SQLite: one connection in the process behind a lock (SQLite has one writer anyway, and WAL
readers gain little from more connections in one process). Postgres: a psycopg_pool of up to
COUNCIL_DATABASE_POOL_SIZE connections, so requests of one replica read and write at once;
each transaction holds one connection from BEGIN to COMMIT and gives it back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from psycopg_pool import ConnectionPool, PoolTimeout

from council.db.pg import PgConnection, configure, dsn, row_factory
from council.errors import OverloadedError


class Database(Protocol):
    """The store's connections: `transaction()` commits on exit (rolls back on an error);
    `connection()` runs statements outside a transaction."""

    def transaction(self) -> Any: ...  # a context manager yielding a connection

    def connection(self) -> Any: ...

    def close(self) -> None: ...


class SqliteDatabase:
    """One SQLite connection, one statement or transaction at a time."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")  # the write lock at once: no upgrade deadlock
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self.db

    def close(self) -> None:
        with self._lock:
            self.db.close()


class PgPool:
    """A pool of `size` psycopg connections (autocommit; a transaction is an explicit block)."""

    def __init__(self, url: str, size: int, timeout_s: float = 30.0):
        self.pool = ConnectionPool(
            dsn(url),
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "row_factory": row_factory},
            configure=configure,
            timeout=timeout_s,  # how long a checkout waits for a free connection
            name="council-store",
            open=False,
        )
        self.pool.open(wait=True, timeout=timeout_s)  # unreachable: PoolTimeout

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        with self.connection() as db, db.raw.transaction():
            yield db

    @contextmanager
    def connection(self) -> Iterator[PgConnection]:
        try:
            raw = self.pool.getconn()
        except PoolTimeout as exc:  # every connection busy for `timeout`: a 503, not a 500
            raise OverloadedError(
                f"All {self.pool.max_size} database connections of this replica stayed busy "
                f"for {self.pool.timeout:.0f} s. Retry; if it lasts, raise "
                "COUNCIL_DATABASE_POOL_SIZE (within Postgres's max_connections) or add replicas."
            ) from exc
        try:
            yield PgConnection(raw)
        finally:
            self.pool.putconn(raw)  # a broken one is dropped and replaced

    def close(self) -> None:
        self.pool.close()
