"""A database URL to a SQLAlchemy engine: the SQLite file by default, or Postgres.

`COUNCIL_DATABASE_URL=postgresql://user:pw@host/db` moves the store to Postgres (psycopg 3);
unset, the store is `council.db` in the data dir, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from council.errors import ConfigError

SQLITE_FILE = "council.db"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def shown(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def checked(url: str) -> str:
    """`url` with the driver we ship (psycopg 3) named; any other backend is refused."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with no fix in it
        raise ConfigError(
            f"COUNCIL_DATABASE_URL {url!r} is not a database URL ({exc}). Use "
            "postgresql://user:password@host:5432/dbname, or unset it for the SQLite file."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return url
    raise ConfigError(
        f"COUNCIL_DATABASE_URL names {backend!r}, which Council does not store in. Use "
        "postgresql://user:password@host:5432/dbname, or unset it for the SQLite file."
    )


def make_engine(url: str) -> Engine:
    """An engine whose transactions cover DDL on SQLite too (so a migration is all or nothing)."""
    url = checked(url)
    if not is_postgres(url):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_autocommit)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would otherwise commit before DDL; SQLAlchemy's documented recipe hands BEGIN
    # to us (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#pysqlite-serializable).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # two processes migrating: the second waits
