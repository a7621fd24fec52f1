"""A real Postgres with pgvector for the store tests: one server per test session (pgserver's
bundled build, ~1-6 s to start), and a fresh database per test copied from a migrated template
(CREATE DATABASE ... TEMPLATE, a file copy: no migrations per test)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The server and the URL of a migrated template database; skips (saying why) if it can't
    start here."""
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a dev dependency
        pytest.skip(f"Postgres tests need the pgserver wheel ({exc}); pip install pgserver")
    why = ""
    for _attempt in range(2):  # initdb has failed once on a box with load average 20: retry
        # a short path: the server's Unix socket path must fit in 107 bytes
        root = Path(tmp_path_factory.mktemp("pg"))
        try:
            server = pgserver.get_server(root, cleanup_mode="stop")
            break
        except Exception as exc:  # pgserver raises several kinds; each means no server here
            why = f"{exc} {getattr(exc, 'stderr', '') or ''}".strip()
    else:
        pytest.skip(f"Postgres (pgserver) could not start here: {why}")
    server.psql("CREATE DATABASE council_template;")
    from council.db.upgrade import upgrade
    from council.storage import MIGRATIONS

    upgrade(_url(server, "council_template"), MIGRATIONS)
    yield server
    server.cleanup()


def _url(server: Any, name: str) -> str:
    return str(server.get_uri(name))


def new_database(server: Any) -> str:
    """The URL of a fresh, migrated database on the session's server (a template copy)."""
    name = f"t{next(_numbers)}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE council_template;")
    return _url(server, name)


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh, migrated database of its own for this test."""
    return new_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on each backend: on Postgres, COUNCIL_DATABASE_URL names a fresh database
    (every store the test opens from its settings or the CLI is there), on SQLite it is unset."""
    if request.param == "postgres":
        monkeypatch.setenv("COUNCIL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def store_where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store test keeps its store: the SQLite file, then a Postgres database."""
    if request.param == "sqlite":
        return tmp_path / "c.db"
    return str(request.getfixturevalue("postgres_url"))
