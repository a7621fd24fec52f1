"""pgvector HNSW (memory/pgvector_index.py) beside FAISS in memory_bench.py's run: the same
stored vectors, queries and ground truth, through PgVectorTable.search, one query at a time.

Each size gets a fresh database with the store's own schema (Alembic). Rows are loaded with
one binary COPY on a connection of our own, then VACUUM ANALYZE (the planner's row count is
what a filtered search widens its beam by), then the HNSW index is built AFTER the load the
way a server builds it (PgVectorTable.open), with the database's maintenance_work_mem and
max_parallel_maintenance_workers raised (--pg-maintenance-mem, --pg-workers). Load, analyze
and build are timed. `--database-url` names a Postgres with pgvector; without it a pgserver
one is started on local disk (--pg-dir, default a temporary directory).

Filtered rows: "ids" is the old recall path (store.memory_ids(user, exclude_session, success)
fetches the user's ids, then PgVectorTable.search(..., allowed) runs `id = ANY(ids)`; the timing
includes fetching the ids); a second row puts `user_id = ?` into the search's own WHERE, which
is what recall does now (memory/episodic.py: PgVectorTable.search(..., where=memory_where(...))).
The plan Postgres chose for each is printed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy.engine import make_url

from council.memory.pgvector_index import _EF_SEARCH, _FILTER_MARGIN, _MAX_EF, PgVectorTable
from council.memory.store import Store
from council.storage import open_db

EF_SWEEP = (40, 64, 128, 256)
# recall's filters (memory/episodic.py): the user's memories outside this session, not failed
RECALL = {"exclude_session": "bench-session", "success": "not_failed"}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _Adapter:
    """memory_bench.time_queries calls index.search(q, k, allowed_ids=...); ids are 0-based."""

    def __init__(self, table: PgVectorTable):
        self.table = table

    def search(self, query: np.ndarray, k: int, allowed_ids: Any = None) -> list[tuple[int, float]]:
        allowed = None if allowed_ids is None else np.asarray(allowed_ids) + 1
        return [(i - 1, s) for i, s in self.table.search(query, k, allowed)]


class _RecallPath:
    """A user's filtered search the way recall made it before memory/filters.py: the store's
    ids, then the index with `id = ANY(ids)`."""

    def __init__(self, store: Store, table: PgVectorTable, user: str):
        self.store, self.table, self.user = store, table, user

    def search(self, query: np.ndarray, k: int, allowed_ids: Any = None) -> list[tuple[int, float]]:
        allowed = self.store.memory_ids(user=self.user, **RECALL)
        return [(i - 1, s) for i, s in self.table.search(query, k, allowed)]


class _UserInSql:
    """The same search with `user_id = ?` in its WHERE (no id list), ef widened the same way."""

    def __init__(
        self, conn: psycopg.Connection[Any], table: PgVectorTable, user: str, share: float
    ):
        self.conn, self.table, self.user = conn, table, user
        # the beam PgVectorTable.search asks for, and past pgvector's limit an exact sort
        wanted = max(table.ef_search, int(_FILTER_MARGIN * 5 / share))
        self.ef, exact = min(wanted, _MAX_EF), wanted > _MAX_EF
        dim = int(table.dim)
        dist = f"embedding::vector({dim}) <=> %s::vector({dim})"
        self.sql = (
            f"SELECT id, 1 - ({dist}) FROM memories WHERE vector_dims(embedding) = {dim} "
            f"AND user_id = %s AND (session_id IS NULL OR session_id != %s) "
            f"AND (success IS NULL OR success = 1) ORDER BY {f'({dist}) + 0' if exact else dist} "
            "LIMIT %s"
        )

    def args(self, query: np.ndarray, k: int) -> tuple[Any, ...]:
        return (query, self.user, RECALL["exclude_session"], query, k)

    def search(self, query: np.ndarray, k: int, allowed_ids: Any = None) -> list[tuple[int, float]]:
        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL hnsw.ef_search = {self.ef}")
            rows = self.conn.execute(self.sql, self.args(query, k)).fetchall()
        return [(int(i) - 1, float(s)) for i, s in rows]

    def plan(self, query: np.ndarray) -> str:
        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL hnsw.ef_search = {self.ef}")
            lines = self.conn.execute("EXPLAIN " + self.sql, self.args(query, 5)).fetchall()
        return _plan_summary([r[0] for r in lines])


class _PostgresCpu:
    """CPU seconds used by the server's processes (the backends are the postmaster's children):
    a query's cost on the server, which the client thread's CPU time does not see."""

    def __init__(self, conn: psycopg.Connection[Any]):
        import psutil

        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        self.postmaster = psutil.Process(int(backend[0]) if backend else 0).parent()

    def seconds(self) -> float:
        total = 0.0
        for p in [self.postmaster, *self.postmaster.children()]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:  # a backend that exited between listing and reading
                continue
        return total

    def timed(self, time_queries: Any, *args: Any) -> tuple[Any, float]:
        """time_queries(*args) and Postgres's mean CPU ms per query over them."""
        before = self.seconds()
        timing = time_queries(*args)
        return timing, (self.seconds() - before) * 1e3 / len(args[1])


def _plan_summary(lines: list[str]) -> str:
    """The plan's scan nodes, e.g. 'Index Scan using memories_hnsw_384'."""
    nodes = [ln.strip().lstrip("-> ").split("  (")[0] for ln in lines]
    keep = [n for n in nodes if ("Scan" in n and ":" not in n) or n in ("Sort", "Limit")]
    return " / ".join(keep) or "?"


def server_url(tmp: Path, pg_dir: Path | None = None) -> tuple[str, Any]:
    """A pgserver Postgres on local disk, with room for a bulk load between checkpoints."""
    import pgserver

    server = pgserver.get_server(pg_dir or tmp / "pg", cleanup_mode="stop")
    server.psql("ALTER SYSTEM SET max_wal_size = '8GB';")
    server.psql("SELECT pg_reload_conf();")
    return server.get_uri(), server


def fresh_database(base_url: str, name: str, maintenance_mem: str, workers: int) -> str:
    """An empty database whose sessions build indexes with the given memory and workers."""
    with psycopg.connect(_dsn(base_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        # per database, so every connection the store opens (pooled or not) builds with them
        admin.execute(f"ALTER DATABASE {name} SET maintenance_work_mem = '{maintenance_mem}'")
        admin.execute(f"ALTER DATABASE {name} SET max_parallel_maintenance_workers = {workers}")
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _report_build_progress(url: str, done: threading.Event, every: float = 30.0) -> None:
    """Print the index build's progress (pg_stat_progress_create_index) until `done`: a build
    stopped before it ends still says how far it got, and when."""
    began = time.perf_counter()
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        while not done.wait(every):
            got = conn.execute(
                "SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total "
                "FROM pg_stat_progress_create_index"
            ).fetchone()
            if got:
                phase, tuples, total, blocks, blocks_total = got
                print(f"{'':>9} (HNSW build at {time.perf_counter() - began:.0f} s: {phase}, "
                      f"tuples {tuples:,}/{total:,}, blocks {blocks:,}/{blocks_total:,})",
                      flush=True)  # fmt: skip


def load(url: str, stored: np.ndarray, users: np.ndarray) -> tuple[float, float]:
    """Binary COPY of every row, then VACUUM ANALYZE; (copy s, vacuum analyze s)."""
    open_db(url).close()  # the store's schema, migrated
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        register_vector(conn)
        types: dict[str, str] = dict(
            conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_name = 'memories'"
            ).fetchall()
        )
        columns = ("text", "role", "user_id", "created_at", "vector", "embedding")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            sql = f"COPY memories ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            with cur.copy(sql) as copy:
                copy.set_types([types[c] for c in columns])
                for i, v in enumerate(stored):
                    copy.write_row((f"m{i}", "note", users[i], 0.0, v.tobytes(), v))
        copied = time.perf_counter() - started
        print(f"{'':>9} (COPY of {len(stored):,} rows took {copied:.0f} s)", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE memories")
        return copied, time.perf_counter() - started


def bench_postgres(
    n: int, stored: np.ndarray, queries: np.ndarray, truth: np.ndarray,
    filters: list[tuple[float, np.ndarray, np.ndarray, str]], users: np.ndarray, base_url: str,
    time_queries: Any, row: Any, filter_q: int, maintenance_mem: str, workers: int,
) -> list[str]:  # fmt: skip
    url = fresh_database(base_url, f"bench{n}", maintenance_mem, workers)
    copied, analyzed = load(url, stored, users)
    store = open_db(url)
    started = time.perf_counter()
    done = threading.Event()
    threading.Thread(target=_report_build_progress, args=(url, done), daemon=True).start()
    table = PgVectorTable(store, "memories", stored.shape[1], "bench")
    done.set()
    build: float | None = time.perf_counter() - started
    size = store.query(f"SELECT pg_relation_size('memories_hnsw_{stored.shape[1]}')")[0][0]
    rows = [
        f"{'':>9} (pgvector: binary COPY of {n:,} rows {copied:.1f} s, VACUUM ANALYZE "
        f"{analyzed:.1f} s, HNSW build {build:.1f} s with maintenance_work_mem {maintenance_mem}"
        f" and {workers} parallel worker(s); index {size / 2**20:,.0f} MB)"
    ]
    rows.append(
        f"{'':>9} (pgvector rows: cpu p99 is the client thread's; 'pg' is the Postgres "
        "processes' CPU per query, a mean: the server's cost, robust to a busy machine)"
    )
    adapter = _Adapter(table)
    # never prepared: a generic plan of `user_id = $1` (one plan for every user) walks the HNSW
    # index even for a user with 50 rows, where the user's own plan sorts their rows exactly
    with psycopg.connect(_dsn(url), autocommit=True, prepare_threshold=None) as conn:
        register_vector(conn)
        pg_cpu = _PostgresCpu(conn)
        for ef in EF_SWEEP:
            table.ef_search = ef
            timing, cpu = pg_cpu.timed(time_queries, adapter, queries, truth)
            label = f"pgvector hnsw M=16 efC=64 ef={ef}"
            rows.append(row(n, label, build, timing, len(queries)) + f"  pg {cpu:.2f} ms")
            build = None
        table.ef_search = _EF_SEARCH  # the server's; filtered searches widen it
        for frac, _allowed, allowed_truth, user in filters:
            recall_path = _RecallPath(store, table, user)
            timing, cpu = pg_cpu.timed(time_queries, recall_path, queries[:filter_q], allowed_truth)
            label = f"  pgvector recall path, {frac:.1%} user"
            rows.append(row(n, label, None, timing, filter_q) + f"  pg {cpu:.2f} ms")
            in_sql = _UserInSql(conn, table, user, frac)
            timing, cpu = pg_cpu.timed(time_queries, in_sql, queries[:filter_q], allowed_truth)
            label = f"  pgvector user_id in WHERE, {frac:.1%}"
            rows.append(row(n, label, None, timing, filter_q) + f"  pg {cpu:.2f} ms")
            rows.append(f"{'':>9}     plan (ef {in_sql.ef}): {in_sql.plan(queries[0])}")
    store.close()
    return rows
