"""Postgres's vector index: pgvector HNSW (cosine) over the store's `embedding` column, behind
the interface IndexedTable gives FAISS (open, add, search, rebuild, save, index.info).

Nothing here is derived or per process: the store writes `embedding` in the same transaction
as the row (memory/store.py), so a memory told through one replica is found through another in
the next request, and there is no file to load, save or rebuild. The index is an expression
index on `embedding::vector(dim)` (the column has no fixed dimension; embedders differ), partial
to rows of that dimension, made once per table and dimension.
"""

from __future__ import annotations

import numpy as np

from council.memory.store import Store
from council.memory.vectors import IndexInfo

KIND = "pgvector-hnsw"
# Filtered walks meet allowed rows at the filter's rate: widen the beam like vectors.py does.
_EF_SEARCH = 40
_MAX_EF = 1000


class PgVectorTable:
    """The vectors of `memories` or `chunks` in Postgres, searched by pgvector's HNSW."""

    def __init__(self, store: Store, table: str, dim: int, fingerprint: str):
        assert table in ("memories", "chunks") and store.postgres
        self.store, self.table, self.dim, self.fingerprint = store, table, dim, fingerprint
        self.index = self  # IndexedTable callers read `table.index.info`
        self.ef_search = _EF_SEARCH  # HNSW beam of an unfiltered search (pgvector's default)
        self.opened_as = self.open()

    def _vec(self) -> str:
        return f"embedding::vector({int(self.dim)})"

    def open(self) -> str:
        name = f"{self.table}_hnsw_{int(self.dim)}"
        with self.store.tx() as db:
            db.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {self.table} USING hnsw "
                f"(({self._vec()}) vector_cosine_ops) WHERE vector_dims(embedding) = {self.dim}"
            )
        return "loaded"

    @property
    def info(self) -> IndexInfo:
        count, max_id = self.store.query(
            f"SELECT COUNT(*), COALESCE(MAX(id), -1) FROM {self.table} "
            f"WHERE vector_dims(embedding) = {int(self.dim)}"
        )[0]
        return IndexInfo(int(count), int(max_id), self.dim, KIND, self.fingerprint)

    def search(
        self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(id, cosine) best first, among `allowed` ids if given (the caller's user filter)."""
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        q = np.asarray(vector, dtype=np.float32)
        where = f"vector_dims(embedding) = {int(self.dim)}"
        args: list[object] = [q]
        ef = self.ef_search
        if allowed is not None:
            where += " AND id = ANY(?)"
            args.append(np.asarray(allowed, dtype=np.int64).tolist())
            total = max(1, self._estimated_rows())
            ef = int(min(_MAX_EF, max(ef, k) * max(1.0, 0.1 * total / len(allowed))))
        args += [q, k]
        dist = f"{self._vec()} <=> ?::vector({int(self.dim)})"
        with self.store.tx() as db:
            db.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            rows = db.execute(
                f"SELECT id, 1 - ({dist}) FROM {self.table} WHERE {where} ORDER BY {dist} LIMIT ?",
                args,
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _estimated_rows(self) -> int:
        """The planner's row estimate: O(1), where COUNT(*) would scan the table per search."""
        rows = self.store.query("SELECT reltuples FROM pg_class WHERE relname = ?", (self.table,))
        return int(rows[0][0]) if rows and rows[0][0] > 0 else 0

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """Nothing to do: the store wrote the embeddings with their rows."""

    def rebuild(self) -> None:
        """Nothing derived to rebuild: the index follows the table."""

    def save(self) -> None:
        """Nothing to save: Postgres keeps the index durable."""
