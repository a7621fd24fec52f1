"""FAISS index over the store's ids: derived data, rebuilt from SQLite whenever in doubt.

Exact (flat) below `approx_threshold` vectors, HNSW from there on. When `add()` crosses the
threshold the graph is built in a background thread from a snapshot while searches keep using
the flat index; adds made meanwhile are replayed into the graph before it is swapped in.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from council.memory.faiss_views import (
    FLAT,
    HNSW,
    ids_of,
    kind_of,
    omp_threads,
    selector,
    vectors_of,
)
from council.memory.index_files import read_files, write_files
from council.memory.rwlock import RWLock

log = logging.getLogger(__name__)

# Allowed sets this small are scored exactly from their stored vectors: a gather plus a matvec
# (0.4 ms for 1k of 1M) beats walking a graph where almost every node is filtered out.
_EXACT_MAX = 4096
# Filtered HNSW: efSearch is scaled so the walk meets as many allowed nodes as an unfiltered one
# with a 10% filter (recall@5 0.99 at 100k; 5%: 0.91 and 2%: 0.80 unscaled), at most 8x.
_FILTER_RATE = 0.1
_MAX_EF_BOOST = 8.0
# The background build copies new rows and adds them outside the lock until fewer than this
# remain, so the final replay under the write lock (which blocks searches) stays short.
_CATCH_UP = 1024
# ...for at most this many rounds: a bulk loader adding faster than the graph inserts would
# otherwise be chased forever (request-path adds, at embedding speed, never are).
_CATCH_UP_ROUNDS = 8
# Adds this big are bulk loads, not requests: they may use the build threads.
_BULK_ADD = 1024
# Big adds to HNSW go in slices this size, so no search waits more than ~0.1 s behind one.
_HNSW_SLICE = 256


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds; `max_id` tells the store where to resume adding."""

    count: int
    max_id: int
    dim: int
    kind: str
    fingerprint: str


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
    if k < len(scores):
        keep = np.argpartition(-scores, k - 1)[:k]
        scores, ids = scores[keep], ids[keep]
    order = np.lexsort((ids, -scores))
    return [(int(ids[i]), float(scores[i])) for i in order]


class VectorIndex:
    """Inner-product index keyed by store ids: flat when small, HNSW when large.

    `info.fingerprint` names the data held: the constructor's after rebuild(), the file's after
    load(); the caller compares it with its embedder and rebuilds on a mismatch.
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        approx_threshold: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        fingerprint: str = "",
        search_threads: int = 1,
        build_threads: int = 2,
    ):
        if dim <= 0 or approx_threshold <= 0:
            raise ValueError(f"dim ({dim}) and approx_threshold ({approx_threshold}) must be > 0")
        self.path = Path(path)
        self.sidecar = self.path.with_name(self.path.name + ".json")
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.fingerprint = fingerprint
        self.search_threads = search_threads
        self.build_threads = build_threads
        self._exact_max = _EXACT_MAX
        self._lock = RWLock()  # guards _index/_kind/_fingerprint and every FAISS call on them
        self._maint = threading.Lock()  # one replacement at a time: rebuild, load, upgrade
        self._index: Any = self._new(FLAT)
        self._kind = FLAT
        self._fingerprint = fingerprint
        self._upgrade: threading.Thread | None = None
        self._upgrade_error: Exception | None = None
        self._save_lock = threading.Lock()  # saves share one tmp name
        self._adding = threading.Lock()  # one add() at a time, so its slices stay in id order

    # -- reading ----------------------------------------------------------------------------

    @property
    def info(self) -> IndexInfo:
        with self._lock.read():
            return self._info()

    def search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(id, cosine) best first; `allowed_ids` restricts results to those ids."""
        q = np.ascontiguousarray(query, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), got {q.shape}")
        q = q.reshape(1, self.dim)
        if k <= 0:
            return []
        with omp_threads(self.search_threads), self._lock.read():
            index, n = self._index, self._index.ntotal
            if allowed_ids is None:
                return self._search(index, q, min(k, n)) if n else []
            allowed = np.asarray(allowed_ids, dtype=np.int64).reshape(-1)
            if np.any(allowed[1:] <= allowed[:-1]):  # SQLite's ORDER BY id skips the sort
                allowed = np.unique(allowed)
            allowed = allowed[np.searchsorted(allowed, 0) :]  # stored ids are >= 0
            if len(allowed) <= self._exact_max:
                return self._exact(index, q, k, self._rows(index, allowed))
            # A graph walk meets allowed nodes at the filter's rate; widen the beam to match.
            boost = min(_MAX_EF_BOOST, max(1.0, _FILTER_RATE * n / len(allowed)))
            want = min(k, len(allowed))
            hits = self._search(index, q, want, selector(allowed, n), boost)
            if len(hits) < want:
                # Some allowed ids may not be indexed; if more are, the walk dead-ended in
                # the filter: score them all exactly (slow for huge sets, but never short).
                rows = self._rows(index, allowed)
                if len(hits) < min(k, len(rows)):
                    return self._exact(index, q, k, rows)
            return hits

    def _search(
        self, index: Any, q: np.ndarray, k: int, sel: Any = None, boost: float = 1.0
    ) -> list[tuple[int, float]]:
        # Fresh params per call: IndexIDMap swaps its translated selector into them in place.
        params: Any
        if self._kind == HNSW:
            # faiss's bundled __init__.pyi is partial and lacks this class.
            ef = int(max(self.ef_search, k) * boost)
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
        scores, labels = index.search(q, k, params=params)
        return [(int(i), float(s)) for s, i in zip(scores[0], labels[0], strict=True) if i != -1]

    def _exact(
        self, index: Any, q: np.ndarray, k: int, rows: np.ndarray
    ) -> list[tuple[int, float]]:
        scores = vectors_of(index)[rows] @ q[0]
        return _top(scores, ids_of(index)[rows], k)

    @staticmethod
    def _rows(index: Any, allowed: np.ndarray) -> np.ndarray:
        """Rows holding `allowed` (sorted, unique) ids; ids are kept increasing, so bisect."""
        ids = ids_of(index)
        rows = np.searchsorted(ids, allowed)
        found = rows < len(ids)
        rows, allowed = rows[found], allowed[found]
        return rows[ids[rows] == allowed]

    def _info(self) -> IndexInfo:
        n = self._index.ntotal
        max_id = int(ids_of(self._index)[-1]) if n else -1
        return IndexInfo(n, max_id, self.dim, self._kind, self._fingerprint)

    # -- writing ----------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append vectors whose ids are increasing and past `info.max_id`."""
        ids, vectors = self._checked(ids, vectors)
        threads = self.build_threads if len(ids) >= _BULK_ADD else self.search_threads
        with self._adding, omp_threads(threads):
            done = 0
            while done < len(ids):
                with self._lock.write():
                    last = int(ids_of(self._index)[-1]) if self._index.ntotal else -1
                    if ids[done] <= last:
                        raise ValueError(
                            f"add() needs ids past the index's max_id {last} (got {ids[done]}); "
                            "add only rows newer than info.max_id, or rebuild() everything."
                        )
                    # HNSW inserts (~0.3 ms each) hold the write lock, which stalls searches:
                    # a bulk catch-up goes in slices so searches get in between.
                    step = len(ids) if self._kind == FLAT else _HNSW_SLICE
                    end = min(len(ids), done + step)
                    self._index.add_with_ids(vectors[done:end], ids[done:end])
                    self._maybe_upgrade()
                done = end

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace everything; builds HNSW right here when there are enough vectors."""
        ids, vectors = self._checked(ids, vectors)
        kind = HNSW if len(ids) >= self.approx_threshold else FLAT
        with self._maint:
            with self._lock.read():
                source, start = self._index, self._index.ntotal
            target = self._new(kind)
            started = time.perf_counter()
            with omp_threads(self.build_threads):
                target.add_with_ids(vectors, ids)
            log.info("Built %s index of %d vectors in %.1f s", kind, len(ids), _since(started))
            # Adds that raced this rebuild went to the old index; keep those past our ids.
            last = int(ids[-1]) if len(ids) else -1
            self._swap(source, target, start, kind, self.fingerprint, after_id=last)

    def _maybe_upgrade(self) -> None:
        """Start the background HNSW build if due; the caller holds the write lock."""
        due = self._kind == FLAT and self._index.ntotal >= self.approx_threshold
        if due and not (self._upgrade and self._upgrade.is_alive()):
            self._upgrade_error = None
            self._upgrade = threading.Thread(
                target=self._upgrade_in_background, name="faiss-hnsw-build", daemon=True
            )
            self._upgrade.start()

    def _upgrade_in_background(self) -> None:
        try:
            with self._maint:
                with self._lock.read():
                    source, kind = self._index, self._kind
                    if kind != FLAT or source.ntotal < self.approx_threshold:
                        return  # a rebuild or load got here first
                started = time.perf_counter()
                self._swap(source, self._new(HNSW), 0, HNSW, None, after_id=-1)
                log.info("Background HNSW build for %s took %.1f s", self.path, _since(started))
        except Exception as exc:
            # Searches stay correct (exact) on the flat index; surface it, never hide it.
            self._upgrade_error = exc
            log.exception(
                "Background HNSW build for %s failed; searches stay exact (flat). "
                "Call rebuild() to retry.",
                self.path,
            )

    def _swap(
        self, source: Any, target: Any, done: int, kind: str, fp: str | None, after_id: int
    ) -> None:
        """Replay `source` rows from `done` into `target`, then make `target` the index.

        Rows are copied out under the read lock and added outside it (adds and searches go
        on) until the remainder is small, then the rest is replayed under the write lock.
        Copying out of the flat index costs one transient copy of the snapshot; keeping our
        own copy of every vector instead would cost a permanent second one (1.5 GB at 1M).
        """
        with omp_threads(self.build_threads):
            for _ in range(_CATCH_UP_ROUNDS):
                with self._lock.read():
                    n = source.ntotal
                    if n - done < _CATCH_UP:
                        break
                    ids, vecs = ids_of(source)[done:n].copy(), vectors_of(source)[done:n].copy()
                self._add_after(target, ids, vecs, after_id)
                del ids, vecs
                done = n
            with self._lock.write():
                n = source.ntotal
                self._add_after(
                    target, ids_of(source)[done:n], vectors_of(source)[done:n], after_id
                )
                self._index, self._kind = target, kind
                if fp is not None:
                    self._fingerprint = fp
                self._maybe_upgrade()

    @staticmethod
    def _add_after(target: Any, ids: np.ndarray, vecs: np.ndarray, after_id: int) -> None:
        keep = ids > after_id
        if keep.any():
            target.add_with_ids(np.ascontiguousarray(vecs[keep]), np.ascontiguousarray(ids[keep]))

    def wait_upgrade(self, timeout: float | None = None) -> bool:
        """Wait for a background HNSW build; False on timeout. Re-raises a failed build."""
        thread = self._upgrade
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        error = self._upgrade_error
        if error is not None:
            raise RuntimeError(f"Background HNSW build for {self.path} failed: {error}") from error
        return True

    def _new(self, kind: str) -> Any:
        inner: Any
        if kind == HNSW:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def _checked(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers (the store's row ids), got {ids.dtype}")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # no copy if already so
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(ids):
            raise ValueError(
                f"vectors must have shape ({len(ids)}, {self.dim}) to match ids, "
                f"got {vectors.shape}"
            )
        if len(ids) and (ids[0] < 0 or np.any(ids[1:] <= ids[:-1])):
            raise ValueError("ids must be >= 0 and strictly increasing (SELECT ... ORDER BY id)")
        norms = np.einsum("ij,ij->i", vectors, vectors)
        if np.any(np.abs(norms - 1) > 1e-3):
            raise ValueError(
                "vectors must be unit-normalised (Embedder.encode returns them so); "
                "divide each by its np.linalg.norm first"
            )
        return ids, vectors

    # -- persistence ------------------------------------------------------------------------

    def save(self) -> None:
        """Write the index and its JSON sidecar atomically (tmp files, fsync, os.replace)."""
        tmp_index = self.path.with_name(self.path.name + ".tmp")
        tmp_sidecar = self.sidecar.with_name(self.sidecar.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._save_lock:
            try:
                self._save(tmp_index, tmp_sidecar)
            finally:  # after a failed write (disk full) leave no half-written tmp files
                tmp_index.unlink(missing_ok=True)
                tmp_sidecar.unlink(missing_ok=True)

    def _save(self, tmp_index: Path, tmp_sidecar: Path) -> None:
        # Under the read lock: searches go on, adds wait (HNSW adds rewrite neighbour lists).
        with self._lock.read():
            faiss.write_index(self._index, str(tmp_index))
            meta = asdict(self._info())
        write_files(tmp_index, tmp_sidecar, meta, self.path, self.sidecar)

    def load(self) -> IndexInfo | None:
        """Load the saved index; None if there is none, IndexCorrupt if it can't be trusted."""
        if not self.path.exists():
            return None
        index, meta = read_files(self.path, self.sidecar, self.dim)
        with self._maint, self._lock.write():
            self._index, self._kind = index, str(kind_of(index))
            self._fingerprint = str(meta["fingerprint"])
            self._maybe_upgrade()  # saved mid-upgrade: finish it in the background
            return self._info()


def _since(started: float) -> float:
    return time.perf_counter() - started
