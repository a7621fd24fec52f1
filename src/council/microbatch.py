"""Concurrent encodes as one: the texts of callers that arrive within a few ms of each other
(or while the model is busy with the last batch) go to the model in one call, which costs less
CPU per text than a call each (MiniLM on one core: ~24 ms of CPU for a question alone, 6-8 ms
each in a batch of 8-16). A request's recall and its record, and every concurrent request's,
share the embedder this way; each caller gets back exactly its own rows."""

from __future__ import annotations

import os
import queue
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
    """One worker thread calls `encode` on the texts of every caller gathered within
    `window_s` of the first (up to `max_texts`); each caller blocks for its own rows. A caller
    with `max_texts` or more is a batch already and is encoded at once, in its own thread."""

    def __init__(self, encode: Encode, window_s: float, max_texts: int = 32):
        self.encode = encode
        self.window_s = window_s
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._pid: int | None = None  # the process whose worker serves the queue

    def __call__(self, texts: list[str]) -> np.ndarray:
        if len(texts) >= self.max_texts:
            return self.encode(texts)
        job = _Job(list(texts))
        self._queue().put(job)
        return job.done.result()

    def _queue(self) -> queue.SimpleQueue[_Job]:
        """The queue, with its worker started in this process (a forked child has none)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._jobs = os.getpid(), queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._jobs,), name="embed-batch",
                                 daemon=True).start()  # fmt: skip
            return self._jobs

    def _serve(self, jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            self._run(self._gather(jobs))

    def _gather(self, jobs: queue.SimpleQueue[_Job]) -> list[_Job]:
        """The first waiting job and those that arrive within the window, up to max_texts."""
        batch = [jobs.get()]
        count = len(batch[0].texts)
        deadline = time.monotonic() + self.window_s
        while count < self.max_texts:
            wait = deadline - time.monotonic()
            try:
                job = jobs.get(timeout=wait) if wait > 0 else jobs.get_nowait()
            except queue.Empty:
                break
            batch.append(job)
            count += len(job.texts)
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
