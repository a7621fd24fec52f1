"""pgvector: memories and chunks get an `embedding vector` beside the float32 blob (Postgres only)

The column has no fixed dimension (embedders differ); memory/pgvector_index.py builds the
HNSW cosine index on `embedding::vector(dim)` for the embedder in use. SQLite keeps the blob
and its FAISS index: this revision changes nothing there.

Revision ID: 0002_pgvector
Revises: 0001_baseline
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_pgvector"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("memories", "chunks")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN embedding vector")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN embedding")
