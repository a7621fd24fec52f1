"""One schema definition, two backends: Alembic builds both, upgrades the SQLite files of
earlier releases in place, refuses newer ones, and `council db copy` moves a store to Postgres."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from council.cli import app
from council.db.engine import make_engine, sqlite_url
from council.db.tables import metadata
from council.db.upgrade import BASELINE, revisions, upgrade
from council.errors import SchemaTooNewError
from council.memory.schema import migrate
from council.storage import MIGRATIONS, open_db
from tests.test_store import record


def differences(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [
            d for d in compare_metadata(ctx, metadata)
            if not (isinstance(d, tuple) and d[0] == "remove_table"
                    and d[1].name == "schema_migrations")
            and not (isinstance(d, tuple) and d[0] == "remove_column" and d[3].name == "embedding")
        ]  # fmt: skip
    engine.dispose()
    return diffs


def legacy_file(path: Path, upto: int) -> None:
    """A database as a release before Alembic left it, `upto` old migrations in."""
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, str(path), MIGRATIONS[:upto])
    db.close()


def test_alembic_builds_exactly_the_tables_on_sqlite_and_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    url = sqlite_url(tmp_path / "new.db")
    assert upgrade(url, MIGRATIONS) == [revisions()[-1]]
    assert differences(url) == []
    assert differences(postgres_url) == []
    db = sqlite3.connect(tmp_path / "new.db")  # a release from before Alembic can open it
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.parametrize("upto", [4, len(MIGRATIONS)])
def test_an_old_sqlite_file_finishes_its_migrations_and_is_stamped(
    tmp_path: Path, upto: int
) -> None:
    path = tmp_path / "old.db"
    legacy_file(path, upto)
    store = open_db(path)
    record(store, "e1")  # the upgraded file takes writes
    assert store.query("SELECT version_num FROM alembic_version")[0][0] == revisions()[-1]
    assert len(store.query("SELECT name FROM schema_migrations")) == len(MIGRATIONS)
    # the same columns and indexes as Alembic's own; SQLite reports inline foreign keys' ON
    # DELETE and primary keys' nullability differently, the rest must match exactly
    left = [
        d for d in differences(sqlite_url(path))
        if not isinstance(d, list) and d[0] not in ("remove_fk", "add_fk")
    ]  # fmt: skip
    assert left == []
    fks = store.query("PRAGMA foreign_key_list(chunks)")
    assert [r["on_delete"] for r in fks] == ["CASCADE"]


def test_an_unknown_revision_is_refused_untouched(tmp_path: Path, postgres_url: str) -> None:
    for url in (sqlite_url(tmp_path / "c.db"), postgres_url):
        upgrade(url, MIGRATIONS)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_future'")
        engine.dispose()
        with pytest.raises(SchemaTooNewError, match=r"newer release.*Upgrade Council"):
            upgrade(url, MIGRATIONS)
    assert BASELINE in revisions()


def test_db_upgrade_command_and_copy_to_postgres(
    offline_and_isolated: Path, postgres_url: str
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert revisions()[-1] in result.output
    store = open_db(offline_and_isolated / "council.db")
    record(store, "e1", conversation_id="c1")
    rec = record(store, "e2", conversation_id="c1")
    with store.tx() as db:
        db.execute("UPDATE exchanges SET parent_id = 'e2' WHERE id = 'e1'")  # points ahead
    store.add_memory("note", np.arange(4, dtype=np.float32), user="bob")
    store.replace_document("/d.txt", "h", 3, [(0, 0, 3, "abc")], np.ones((1, 4)))
    result = runner.invoke(app, ["db", "copy", "--to", postgres_url])
    assert result.exit_code == 0, result.output
    assert "memories: 3 rows" in result.output and "checked 4 vectors" in result.output
    copy = open_db(postgres_url)
    assert copy.exchange("e1")["parent_id"] == rec.id
    assert copy.add_memory("after", np.ones(4)) == 4  # ids resume after the copied ones
    again = runner.invoke(app, ["db", "copy", "--to", postgres_url])
    assert again.exit_code != 0 and "empty database" in again.output


def test_the_database_url_moves_the_store_and_a_bad_one_says_the_fix(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from council.config import Settings
    from council.errors import ConfigError
    from council.storage import open_store

    monkeypatch.setenv("COUNCIL_DATABASE_URL", postgres_url)
    store = open_store(Settings())
    assert store.postgres and store.path is None and "postgres" in store.stats()["database"]
    with pytest.raises(ConfigError, match=r"postgresql://user:password@host"):
        open_db("mysql://db/council")
    with pytest.raises(ConfigError, match=r"Cannot reach the database.*COUNCIL_DATABASE_URL"):
        open_db(f"postgresql://council@/nodb?host={tmp_path}")  # no server on that socket
