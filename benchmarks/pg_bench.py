"""pgvector HNSW (memory/pgvector_index.py) beside FAISS in memory_bench.py's run: the same
stored vectors, queries and ground truth, through PgVectorTable.search, one query at a time.

Rows are bulk-loaded with COPY into a fresh database (the store's own schema, by Alembic), then
the HNSW index is built the way a server builds it (PgVectorTable.open) and timed.
`--database-url` names a Postgres with pgvector; without it a pgserver one is started here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from council.memory.pgvector_index import PgVectorTable
from council.storage import open_db

EF_SWEEP = (40, 64, 128, 256)


class _Adapter:
    """memory_bench.time_queries calls index.search(q, k, allowed_ids=...); ids are 0-based."""

    def __init__(self, table: PgVectorTable):
        self.table = table

    def search(self, query: np.ndarray, k: int, allowed_ids: Any = None) -> list[tuple[int, float]]:
        allowed = None if allowed_ids is None else np.asarray(allowed_ids) + 1
        return [(i - 1, s) for i, s in self.table.search(query, k, allowed)]


def server_url(tmp: Path) -> tuple[str, Any]:
    import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    return server.get_uri(), server


def fresh_database(base_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    from council.db.pg import PgConnection

    admin = PgConnection(base_url)
    admin.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.execute(f"CREATE DATABASE {name}")
    admin.close()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def load(url: str, stored: np.ndarray) -> float:
    store = open_db(url)
    started = time.perf_counter()
    raw = store.db.raw  # type: ignore[attr-defined]
    with raw.cursor().copy(
        "COPY memories (text, role, user_id, created_at, vector, embedding) FROM STDIN"
    ) as copy:
        for i, v in enumerate(stored):
            copy.write_row((f"m{i}", "note", "bench", 0.0, v.tobytes(), v))
    store.close()
    return time.perf_counter() - started


def bench_postgres(
    n: int, stored: np.ndarray, queries: np.ndarray, truth: np.ndarray,
    filters: list[tuple[float, np.ndarray, np.ndarray]], base_url: str, time_queries: Any,
    row: Any, filter_q: int,
) -> list[str]:  # fmt: skip
    url = fresh_database(base_url, f"bench{n}")
    loaded = load(url, stored)
    store = open_db(url)
    store.db.execute("SET maintenance_work_mem = '2GB'")  # the graph built in memory
    started = time.perf_counter()
    table = PgVectorTable(store, "memories", stored.shape[1], "bench")
    build: float | None = time.perf_counter() - started
    rows = [f"{'':>9} (pgvector: COPY of {n:,} rows {loaded:.1f} s)"]
    adapter = _Adapter(table)
    for ef in EF_SWEEP:
        table.ef_search = ef
        timing = time_queries(adapter, queries, truth)
        rows.append(row(n, f"pgvector hnsw M=16 efC=64 ef={ef}", build, timing, len(queries)))
        build = None
    table.ef_search = 128
    for frac, allowed, allowed_truth in filters:
        timing = time_queries(adapter, queries[:filter_q], allowed_truth, allowed)
        label = f"  pgvector ef=128, {frac:.1%} allowed"
        rows.append(row(n, label, None, timing, filter_q))
    store.close()
    return rows
