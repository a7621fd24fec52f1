"""Open the store's connections on either backend, migrated to the head first."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import sqlalchemy.exc
from psycopg_pool import PoolTimeout
from sqlalchemy.engine import make_url

from council.db.engine import checked, is_postgres, shown, sqlite_url
from council.db.pool import Database, PgPool, SqliteDatabase
from council.db.upgrade import upgrade
from council.errors import ConfigError
from council.memory.schema import Migration


@dataclass
class Opened:
    db: Database  # SQLite's one connection, or Postgres's pool
    path: Path | None  # the SQLite file; None on Postgres
    where: str  # for messages: the file, or the URL without its password
    postgres: bool


def open_connection(
    where: Path | str, migrations: Sequence[Migration], pool_size: int = 8
) -> Opened:
    """`where`: a SQLite file, or a URL (postgresql://..., sqlite:///...); `pool_size`: the
    most connections a Postgres store holds (COUNCIL_DATABASE_POOL_SIZE)."""
    if isinstance(where, str) and "://" in where:
        url = checked(where)  # any other backend is refused, saying what to set
        if is_postgres(url):
            return _open_postgres(url, migrations, pool_size)
        where = make_url(url).database or ""
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(sqlite_url(path), migrations)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return Opened(SqliteDatabase(db), path, str(path), False)


def _open_postgres(url: str, migrations: Sequence[Migration], pool_size: int) -> Opened:
    try:
        upgrade(url, migrations)
        db = PgPool(url, pool_size)
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError, PoolTimeout) as exc:
        raise ConfigError(
            f"Cannot reach the database {shown(url)}: {str(exc).strip().splitlines()[0]}. Check "
            "COUNCIL_DATABASE_URL (host, port, user, password, database) and that Postgres is "
            "running; unset it to use the SQLite file in the data dir."
        ) from exc
    return Opened(db, None, shown(url), True)


def write_embeddings(db: Any, table: str, ids: list[int], vectors: np.ndarray) -> None:
    """Postgres: fill pgvector's `embedding` beside the blob, for the HNSW index."""
    db.executemany(
        f"UPDATE {table} SET embedding = ? WHERE id = ?",
        [(np.asarray(v, dtype=np.float32), i) for i, v in zip(ids, vectors, strict=True)],
    )
