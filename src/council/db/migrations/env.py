"""Alembic's entry: council/db/upgrade.py hands it a connection; it runs the pending revisions."""

from __future__ import annotations

from alembic import context

from council.db.tables import metadata

# `embedding` (pgvector, Postgres only) is made by 0002_pgvector, not by the tables.

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters a table by copying it; Alembic's batch mode does that
    compare_type=True,
    include_object=lambda obj, name, kind, *_: not (kind == "column" and name == "embedding"),
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and find nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
    context.run_migrations()
