"""Bring a database to the head of the one migration history (`council db upgrade`).

Why Alembic over SQLAlchemy Core: the tables are written once (db/tables.py) and both
backends get their DDL from them; Alembic keeps the ordered, named revisions (as our own list
did), generates new ones from the tables, batch-alters SQLite, and is what SQLAlchemy's users
already run. The ten migrations released before it (storage.MIGRATIONS) stay as they were:

- a SQLite file part-way through them finishes them first, then is stamped at the baseline
  revision (0001, the same schema: tests/test_db.py compares them);
- a new SQLite file is built by Alembic and records those ten names and `user_version` 10, so
  a release from before Alembic opens it, and one that counts fewer refuses it as before;
- a database stamped with a revision we do not know was written by a newer release: refused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from council.db.engine import is_postgres, make_engine, shown
from council.errors import SchemaTooNewError
from council.memory.schema import Migration, migrate

BASELINE = "0001_baseline"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("council.db") / "migrations"))
    return cfg


@lru_cache(maxsize=1)
def revisions() -> list[str]:
    """Every revision we know, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def current(conn: Connection) -> list[str]:
    if not inspect(conn).has_table("alembic_version"):
        return []
    return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def upgrade(url: str, legacy: Sequence[Migration]) -> list[str]:
    """Apply the pending revisions; returns the revisions the database is at afterwards."""
    if not is_postgres(url):
        path = Path(make_url(url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        if _sqlite_at_head(path, legacy):
            return [revisions()[-1]]  # the common case, a reopen: no engine, no Alembic
        _finish_legacy(path, legacy)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            at = current(conn)
            unknown = sorted(set(at) - set(revisions()))
            if unknown:
                raise SchemaTooNewError(
                    f"The database {shown(url)} is at revision {unknown[0]}, which this Council "
                    "does not know: it was written by a newer release. Upgrade Council, or "
                    "point COUNCIL_DATABASE_URL elsewhere. The database was left untouched."
                )
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            if not at and _legacy_complete(conn, legacy):
                command.stamp(cfg, BASELINE)  # the ten old migrations built the baseline
            command.upgrade(cfg, "head")
            conn.commit()
            if conn.dialect.name == "sqlite":
                _record_legacy(conn, legacy)
            return current(conn)
    finally:
        engine.dispose()


def _finish_legacy(path: Path, legacy: Sequence[Migration]) -> None:
    """Run the old migrations a SQLite file has started but not finished (or refuse it)."""
    if not path.is_file():
        return
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        started = db.execute("PRAGMA user_version").fetchone()[0]
        if started > len(legacy) or (started and not _has_alembic(db)):
            migrate(db, str(path), legacy)  # refuses a newer one untouched
    finally:
        db.close()


def _sqlite_at_head(path: Path, legacy: Sequence[Migration]) -> bool:
    if not path.is_file():
        return False
    db = sqlite3.connect(path, timeout=30)
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] != len(legacy) or not _has_alembic(db):
            return False
        return [r[0] for r in db.execute("SELECT version_num FROM alembic_version")] == [
            revisions()[-1]
        ]
    finally:
        db.close()


def _has_alembic(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
    return row is not None


def _legacy_complete(conn: Connection, legacy: Sequence[Migration]) -> bool:
    if conn.dialect.name != "sqlite":
        return False
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0) == len(legacy)


def _record_legacy(conn: Connection, legacy: Sequence[Migration]) -> None:
    """The baseline holds the ten old migrations: say so, for releases from before Alembic."""
    with conn.begin():
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
        )
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO schema_migrations (name, applied_at) VALUES (?, ?)",
            [(m.__name__, time.time()) for m in legacy],
        )
        conn.exec_driver_sql(f"PRAGMA user_version = {len(legacy)}")
