"""The RAG knowledge store: documents chunked into SQLite, searched through their own index."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from council.config import Settings
from council.embeddings import Embedder
from council.errors import DocumentError
from council.memory.documents import (
    chunk_text,
    file_digest,
    iter_documents,
    normalise,
    read_document,
)
from council.memory.episodic import Recalled, fingerprint
from council.memory.indexed import indexed_table
from council.memory.ownership import knowledge_ids
from council.memory.store import Store
from council.memory.vectors import VectorIndex

_SMALL_TALK = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|ok|okay|bye|good (morning|night|evening)|yes|no)"
    r"\b[\s!.?]*$",
    re.I,
)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0


class Knowledge:
    """Documents you gave the council, cited by source and position when they answer."""

    def __init__(self, settings: Settings, embedder: Embedder, store: Store):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        index = VectorIndex(
            settings.server.data_dir / "knowledge.faiss",
            embedder.dim,
            approx_threshold=settings.memory.approx_threshold,
            fingerprint=fingerprint(embedder),
        )
        self.table = indexed_table(store, "chunks", index)

    def ingest(self, paths: list[Path], owner: str | None = None) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged; bad files are reported, skipped.
        `owner`: None shares them with every user (the CLI, an admin), else that user only."""
        s = self.settings
        report = IngestReport()
        for path, problem in iter_documents(paths):
            if problem is not None:
                report.errors.append((str(path), str(problem)))
                continue
            key = str(path.resolve())
            try:
                digest = file_digest(path)
                known = self.store.document(key)
                if known is not None and known["sha256"] == digest:
                    report.unchanged.append(key)
                    continue
                chunks = chunk_text(
                    read_document(path), s.memory.chunk_size, s.memory.chunk_overlap
                )
            except (DocumentError, OSError) as exc:
                report.errors.append((str(path), str(exc)))
                continue
            if not chunks:
                report.errors.append((str(path), f"{path} has no text to ingest; skipped"))
                continue
            vectors = self.embedder.encode([c.text for c in chunks])
            rows = [(c.position, c.start, c.end, c.text) for c in chunks]
            self.store.replace_document(key, digest, path.stat().st_size, rows, vectors, owner)
            (report.replaced if known is not None else report.added).append(key)
            report.chunks += len(chunks)
        return self._reindex(report)

    def ingest_text(self, name: str, text: str, owner: str | None) -> IngestReport:
        """One document sent as text (the API's upload), kept under `api:@<owner>/<name>` (or
        `api:shared/<name>`) so two users' documents of the same name never replace each other.
        '@' never starts a user name, so a user named "shared" cannot reach the shared ones."""
        key = f"api:@{owner}/{name}" if owner else f"api:shared/{name}"
        report = IngestReport()
        text = normalise(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        known = self.store.document(key)
        if known is not None and known["sha256"] == digest:
            report.unchanged.append(key)
            return report
        s = self.settings
        chunks = chunk_text(text, s.memory.chunk_size, s.memory.chunk_overlap)
        if not chunks:
            raise DocumentError(Path(name), "has no text to ingest; send the document's text")
        vectors = self.embedder.encode([c.text for c in chunks])
        rows = [(c.position, c.start, c.end, c.text) for c in chunks]
        self.store.replace_document(key, digest, len(text.encode()), rows, vectors, owner)
        (report.replaced if known is not None else report.added).append(key)
        report.chunks += len(chunks)
        return self._reindex(report)

    def _reindex(self, report: IngestReport) -> IngestReport:
        if report.replaced:
            self.table.rebuild()  # old chunks' ids must leave the index, not crowd results
        elif report.added:
            self.table.open()  # catches up with the new rows and saves
        return report

    def search(
        self,
        text: str,
        k: int | None = None,
        user: str | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Recalled]:
        """Closest chunks; with `user`, only shared documents and that user's own (`vector`:
        the text's embedding, when the caller has it already)."""
        k = k or self.settings.memory.rag_k
        allowed = knowledge_ids(self.store, user) if user is not None else None
        if vector is None:
            vector = self.embedder.encode([text])[0]
        hits = self.table.search(vector, k, allowed)
        rows = self.store.chunk_rows([i for i, _ in hits])
        return [
            Recalled("knowledge", i, rows[i]["text"], score, rows[i]["source"], rows[i]["position"])
            for i, score in hits
            if i in rows
        ]

    def wants_knowledge(self, question: str, override: bool | None = None) -> bool:
        """The intent check: per-request override, else the configured mode (auto: not small
        talk and at least a few words; relevance is then gated by rag_min_score)."""
        if override is not None:
            return override
        mode = self.settings.memory.rag_mode
        if mode != "auto":
            return mode == "always"
        return len(question.split()) >= 3 and not _SMALL_TALK.match(question)

    def lookup(
        self,
        question: str,
        override: bool | None = None,
        user: str | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Recalled]:
        """Knowledge for a prompt (`vector`: the question's embedding, when recall made it)."""
        if self.table.index.info.count == 0 or not self.wants_knowledge(question, override):
            return []
        hits = self.search(question, user=user, vector=vector)
        if override:
            return hits
        return [h for h in hits if h.score >= self.settings.memory.rag_min_score]
