"""Episodic memory: every exchange remembered, recalled by meaning (the seed's FaissMemory).

memory.add("The user's dog is called Rex", {"role": "note", "user": "ana"})
memory.query("What is my dog's name?", k=3, filters={"user": "ana", "success": True})
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from council.config import Settings
from council.embeddings import Embedder
from council.memory.filters import memory_where
from council.memory.indexed import indexed_table
from council.memory.store import ANONYMOUS, ExchangeRecord, Store
from council.memory.vectors import VectorIndex

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(since: float | str | None) -> float | None:
    """A timestamp, or a window like '24h' / '7d' counted back from now."""
    if since is None or isinstance(since, (int, float)):
        return since
    m = _SINCE.match(since.strip())
    if not m:
        raise ValueError(f"since={since!r}: use a timestamp or a window like 30m, 24h, 7d")
    return time.time() - float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Recalled:
    """One memory or knowledge snippet that went into a prompt."""

    kind: str  # memory (a past answer) | fact | knowledge
    id: int
    text: str
    score: float
    source: str | None = None  # exchange id, or document path
    position: int | None = None  # chunk position within its document
    said_at: float | None = None  # a fact: when the user said it

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def fingerprint(embedder: Embedder) -> str:
    return f"{embedder.source}:{embedder.dim}"


class Memory:
    """Exchanges and notes in SQLite, searchable through a FAISS index derived from them."""

    def __init__(self, settings: Settings, embedder: Embedder, store: Store):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        index = VectorIndex(
            settings.server.data_dir / "memories.faiss",
            embedder.dim,
            approx_threshold=settings.memory.approx_threshold,
            fingerprint=fingerprint(embedder),
        )
        self.table = indexed_table(self.store, "memories", index)

    # the seed API --------------------------------------------------------------------
    def add(self, text: str, meta: dict[str, Any] | None = None) -> int:
        """Remember a piece of text; meta may carry role, user, session, success, ts."""
        meta = dict(meta or {})
        vector = self.embedder.encode([text])[0]
        role, user = meta.pop("role", "note"), meta.pop("user", ANONYMOUS)
        session, success = meta.pop("session", None), meta.pop("success", None)
        created_at = meta.pop("ts", None)
        mid = self.table.insert(
            lambda: self.store.add_memory(
                text, vector, role=role, user=user, session=session, success=success,
                created_at=created_at, meta=meta,
            ),
            vector,
        )  # fmt: skip
        assert mid is not None
        return mid

    def query(
        self,
        text: str,
        k: int = 3,
        filters: dict[str, Any] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """Top-k memories by meaning, filtered on user, session, role, success, since
        (`vector`: the text's embedding, when the caller has it already)."""
        f = dict(filters or {})
        if "since" in f:
            f["since"] = parse_since(f["since"])
        if vector is None:
            vector = self.embedder.encode([text])[0]
        hits = self.table.search(vector, k, where=memory_where(**f) if f else None)
        rows = self.store.memory_rows([i for i, _ in hits])
        return [{**rows[i], "score": s} for i, s in hits if i in rows]

    # the council's use ---------------------------------------------------------------
    def recall(
        self, question: str, *, user: str, session: str | None, vector: np.ndarray | None = None
    ) -> list[Recalled]:
        """Relevant past exchanges of this user (never another's), not known to be wrong."""
        s = self.settings
        if s.memory.recall_k <= 0:
            return []
        found = self.query(
            question,
            k=s.memory.recall_k,
            filters={"user": user, "exclude_session": session, "success": "not_failed"},
            vector=vector,
        )
        return [
            Recalled("memory", r["id"], r["text"], r["score"], r["exchange_id"])
            for r in found
            if r["score"] >= s.memory.recall_min_score
        ]

    def record(
        self, rec: ExchangeRecord, also: Callable[[sqlite3.Connection], None] | None = None
    ) -> None:
        """Store the exchange durably and index it for recall (`also`: more in that commit)."""
        question = next((m.content for m in reversed(rec.messages) if m.role == "user"), "")
        text = f"Q: {question}\nA: {rec.verdict.answer}"
        vector = self.embedder.encode([text])[0]
        self.table.insert(lambda: self.store.record(rec, memory=(text, vector), also=also), vector)

    def close(self) -> None:
        self.table.save()
