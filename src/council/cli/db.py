"""`council db upgrade|copy`: the store's migrations, and moving a SQLite store to Postgres."""

from __future__ import annotations

from typing import Annotated

import typer

from council.cli.common import ConfigOpt, out, settings_from

group = typer.Typer(help="The store's database: migrate it, copy it.", no_args_is_help=True)


@group.command()
def upgrade(config: ConfigOpt = None) -> None:
    """Run the pending migrations on the store (COUNCIL_DATABASE_URL, or the SQLite file).

    Example: COUNCIL_DATABASE_URL=postgresql://council@db/council council db upgrade
    """
    from council.db.engine import shown
    from council.db.upgrade import upgrade as run
    from council.storage import MIGRATIONS, database_url

    url = database_url(settings_from(config))
    at = run(url, MIGRATIONS)
    out.print(f"{shown(url)} is at revision {', '.join(at)}")


@group.command()
def copy(
    to: Annotated[str, typer.Option(help="The Postgres to copy into: postgresql://...")],
    config: ConfigOpt = None,
) -> None:
    """Copy this data dir's SQLite store into an empty Postgres, then check row counts and a
    sample of vectors.

    Example: council db copy --to postgresql://council:secret@db:5432/council
    """
    from council.db.copy import copy_store
    from council.db.engine import sqlite_url
    from council.storage import MIGRATIONS, database_path

    settings = settings_from(config)
    report = copy_store(sqlite_url(database_path(settings)), to, MIGRATIONS)
    for table, rows in report.rows.items():
        out.print(f"{table}: {rows} rows")
    out.print(f"checked {report.vectors_checked} vectors: identical. Now set COUNCIL_DATABASE_URL.")
