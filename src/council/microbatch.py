"""Concurrent encodes as one: the texts of callers that arrive within a few ms of each other
(or while the model is busy with the last batch) go to the model in one call, which costs less
CPU per text than a call each (MiniLM on one core: ~24 ms of CPU for a question alone, 6-8 ms
each in a batch of 8-16). A request's recall and its record, and every concurrent request's,
share the embedder this way; each caller gets back exactly its own rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class _Job:
    texts: list[str]
    done: Future[np.ndarray] = field(default_factory=Future)


class MicroBatcher:
    """Callers take turns at the model; whoever's turn it is encodes every text waiting then
    (up to `max_texts`, after `window_s` for more to arrive), in its own thread, and each caller
    gets its own rows. A caller with `max_texts` or more is a batch already, encoded at once.

    The encoding runs in a caller's thread, not a worker of its own: torch ran several times
    slower per text in a dedicated thread inside the server (thread CPU 90-250 ms for a question
    against 20-30 ms in asyncio's pool threads), for a reason not found."""

    def __init__(self, encode: Encode, window_s: float, max_texts: int = 32):
        self.encode = encode
        self.window_s = window_s
        self.max_texts = max_texts
        self._lock = threading.Lock()  # guards _waiting
        self._turn = threading.Lock()  # held by the caller encoding a batch
        self._waiting: list[_Job] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        if len(texts) >= self.max_texts:
            return self.encode(texts)
        job = _Job(list(texts))
        with self._lock:
            self._waiting.append(job)
        with self._turn:
            if not job.done.done() and self.window_s > 0:  # let others join this batch
                time.sleep(self.window_s)
            while not job.done.done():  # no one took it along: encode what waits, oldest first
                self._run(self._take())
        return job.done.result()

    def _take(self) -> list[_Job]:
        """The waiting jobs, oldest first, up to max_texts (at least one)."""
        with self._lock:
            count, end = 0, 0
            while end < len(self._waiting) and (end == 0 or count < self.max_texts):
                count += len(self._waiting[end].texts)
                end += 1
            batch, self._waiting = self._waiting[:end], self._waiting[end:]
        return batch

    def _run(self, batch: list[_Job]) -> None:
        try:
            vectors = self.encode([t for job in batch for t in job.texts])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].done.set_exception(exc)
            else:  # only the caller whose texts fail sees the error
                for job in batch:
                    self._run([job])
            return
        start = 0
        for job in batch:
            job.done.set_result(vectors[start : start + len(job.texts)])
            start += len(job.texts)
