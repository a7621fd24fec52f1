"""A store table kept in step with its FAISS index: load, check, catch up or rebuild."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from council.memory.filters import Where
from council.memory.index_files import IndexCorrupt
from council.memory.pgvector_index import PgVectorTable
from council.memory.store import Store
from council.memory.vectors import VectorIndex

log = logging.getLogger(__name__)
SAVE_EVERY = 200  # adds between index saves; the store has every row, a restart catches up


class IndexedTable:
    """The vectors of `memories` or `chunks` in SQLite, searchable through a derived index."""

    def __init__(self, store: Store, table: str, index: VectorIndex):
        self.store = store
        self.table = table
        self.index = index
        self._unsaved = 0
        self._lock = threading.Lock()
        self._order = threading.Lock()  # one store insert + index add at a time (insert)
        self._saver: threading.Thread | None = None
        self.opened_as = self.open()

    def open(self) -> str:
        """Load the index and reconcile it with the store; returns what happened."""
        count, max_id = self.store.table_extent(self.table)
        try:
            info = self.index.load()
        except IndexCorrupt as exc:
            log.warning("%s; rebuilding from %s", exc, self.store.where)
            self.rebuild()
            return "rebuilt (corrupt)"
        if info is None:
            self.rebuild()
            return "built" if count else "empty"
        if info.fingerprint != self.index.fingerprint or info.max_id > max_id or info.count > count:
            # a different embedder, or rows deleted/rolled back under the index
            self.rebuild()
            return "rebuilt (stale)"
        if info.max_id < max_id:
            for ids, vecs in self.store.vectors(self.table, after_id=info.max_id):
                self.index.add(ids, vecs)
            self.index.save()
            return "caught up"
        return "loaded"

    def rebuild(self) -> None:
        parts = list(self.store.vectors(self.table))
        if parts:
            ids = np.concatenate([p[0] for p in parts])
            vecs = np.concatenate([p[1] for p in parts])
        else:
            ids = np.zeros(0, dtype=np.int64)
            vecs = np.zeros((0, self.index.dim), dtype=np.float32)
        self.index.rebuild(ids, vecs)
        self.index.save()

    def insert(self, write: Callable[[], int | None], vector: np.ndarray) -> int | None:
        """Run `write` (a store insert that returns its new row's id, or None) and index the
        row's vector, one writer at a time: the index takes ids only in increasing order,
        and two writers could otherwise add theirs the other way round."""
        with self._order:
            row_id = write()
            if row_id is not None:
                self.add([row_id], vector[None, :])
        return row_id

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        self.index.add(np.asarray(ids, dtype=np.int64), vectors)
        with self._lock:
            self._unsaved += len(ids)
            due = self._unsaved >= SAVE_EVERY
            if due:
                self._unsaved = 0
        if due:
            self._save_in_background()

    def _save_in_background(self) -> None:
        """A save takes seconds at 1M vectors: keep it off the request path, one at a time.
        Losing it costs nothing but a catch-up from SQLite at the next start."""
        with self._lock:
            if self._saver is not None and self._saver.is_alive():
                return
            self._saver = threading.Thread(target=self.index.save, name="index-save", daemon=True)
            self._saver.start()

    def search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        where: Where | None = None,
    ) -> list[tuple[int, float]]:
        """(id, cosine) best first, among `allowed` ids, or the rows matching `where`."""
        if where is not None:
            allowed = self.store.ids_where(self.table, *where)
        if allowed is not None and len(allowed) == 0:
            return []
        return self.index.search(vector, k, allowed)

    def save(self) -> None:
        saver = self._saver
        if saver is not None:
            saver.join()
        self.index.save()


def indexed_table(store: Store, table: str, index: VectorIndex) -> IndexedTable | PgVectorTable:
    """FAISS beside SQLite; pgvector's HNSW inside Postgres (memory/pgvector_index.py)."""
    if store.postgres:
        return PgVectorTable(store, table, index.dim, index.fingerprint)
    return IndexedTable(store, table, index)
