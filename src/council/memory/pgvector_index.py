"""Postgres's vector index: pgvector HNSW (cosine) over the store's `embedding` column, behind
the interface IndexedTable gives FAISS (open, add, search, rebuild, save, index.info).

Nothing here is derived or per process: the store writes `embedding` in the same transaction
as the row (memory/store.py), so a memory told through one replica is found through another in
the next request, and there is no file to load, save or rebuild. The index is an expression
index on `embedding::vector(dim)` (the column has no fixed dimension; embedders differ), partial
to rows of that dimension, made once per table and dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from council.memory.filters import Where
from council.memory.store import Store
from council.memory.vectors import IndexInfo

KIND = "pgvector-hnsw"
# The HNSW beam of an unfiltered search, as FAISS's (memory/vectors.py). pgvector's default
# 40 found 0.86 of the true top 5 among 1M vectors; 128 finds 0.973 for ~2.4 ms more of
# Postgres's CPU per query (benchmarks/memory_bench.py --backend postgres --sizes 1000000).
_EF_SEARCH = 128
_MAX_EF = 1000  # pgvector's limit on hnsw.ef_search
# pgvector (before 0.8's iterative scans) filters AFTER the walk: of the ef_search rows it
# returns, a filter passing a share s keeps ~ef*s. Ask for this many times k/s, so the k
# nearest allowed rows are among them (benchmarks/pg_bench.py: ef 40 at s = 10% kept recall@5
# at 0.72); past _MAX_EF the allowed rows are searched exactly (few enough to sort).
_FILTER_MARGIN = 4


class PgVectorTable:
    """The vectors of `memories` or `chunks` in Postgres, searched by pgvector's HNSW."""

    def __init__(self, store: Store, table: str, dim: int, fingerprint: str):
        assert table in ("memories", "chunks") and store.postgres
        self.store, self.table, self.dim, self.fingerprint = store, table, dim, fingerprint
        self.index = self  # IndexedTable callers read `table.index.info`
        self.ef_search = _EF_SEARCH  # HNSW beam of an unfiltered search
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
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        where: Where | None = None,
    ) -> list[tuple[int, float]]:
        """(id, cosine) best first, among `allowed` ids, or the rows matching `where` (recall's
        filters, run inside pgvector's query: no id list leaves or enters Postgres)."""
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        q = np.asarray(vector, dtype=np.float32)
        sql_where = f"vector_dims(embedding) = {int(self.dim)}"
        args: list[object] = [q]
        ef, exact = max(self.ef_search, k), False
        matching = None  # rows the filter lets through
        if allowed is not None:
            sql_where += " AND id = ANY(?)"
            args.append(np.asarray(allowed, dtype=np.int64).tolist())
            matching = len(allowed)
        elif where is not None:
            cond, cargs = where
            count = f"SELECT COUNT(*) FROM {self.table} WHERE {cond}"
            matching = int(self.store.query(count, cargs)[0][0])
            if not matching:
                return []
            sql_where += f" AND ({cond})"
            args += cargs
        if matching is not None:
            share = matching / max(matching, self._estimated_rows())
            ef = max(ef, int(_FILTER_MARGIN * k / share))
            exact = ef > _MAX_EF
        args += [q, k]
        dist = f"{self._vec()} <=> ?::vector({int(self.dim)})"
        # `+ 0`: an order the HNSW index cannot give, so Postgres sorts the allowed rows
        order = f"({dist}) + 0" if exact else dist
        sql = (f"SELECT id, 1 - ({dist}) FROM {self.table} WHERE {sql_where} "
               f"ORDER BY {order} LIMIT ?")  # fmt: skip
        with self.store.tx() as db:
            db.execute(f"SET LOCAL hnsw.ef_search = {min(ef, _MAX_EF)}")
            rows = db.execute(sql, args).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _estimated_rows(self) -> int:
        """The planner's row estimate: O(1), where COUNT(*) would scan the table per search."""
        rows = self.store.query("SELECT reltuples FROM pg_class WHERE relname = ?", (self.table,))
        return int(rows[0][0]) if rows and rows[0][0] > 0 else 0

    def insert(self, write: Callable[[], int | None], vector: np.ndarray) -> int | None:
        """Run `write` (a store insert); Postgres indexes the row's vector in that insert."""
        return write()

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """Nothing to do: the store wrote the embeddings with their rows."""

    def rebuild(self) -> None:
        """Nothing derived to rebuild: the index follows the table."""

    def save(self) -> None:
        """Nothing to save: Postgres keeps the index durable."""
