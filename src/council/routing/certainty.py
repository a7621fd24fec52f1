"""What "sure" means for each head: its recent self-certainty (mean token log-probability of
its answers) per domain. Personas and models differ in how sure they sound (a step-by-step
persona writes more tokens, each less certain), so one fixed threshold cannot serve them all;
instead a head may settle a question alone when its certainty is within its own top share of
recent answers in that domain (the selector's early stop)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from council.routing import ledger
from council.strategies import REGISTRY

HISTORY = 500  # answers kept per (head, domain)
MIN_SAMPLES = 30  # fewer than this: no threshold yet, early stop falls back to agreement
# First-round answers only: strategies that store revised answers or other sampling settings
# say so (StrategyFacts.first_round); their certainty means something else.
NOT_FIRST_ROUND = tuple(name for name, f in REGISTRY.items() if not f.first_round)


class CertaintyHistory:
    def __init__(self, size: int = HISTORY, min_samples: int = MIN_SAMPLES):
        self.size = size
        self.min_samples = min_samples
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def load(self, store: Any) -> int:
        """Relearn from the stored votes (the newest HISTORY per head and domain), so a
        restart does not forget what "sure" means; returns how many answers were read."""
        rows = ledger.recent_certainty(store, self.size, NOT_FIRST_ROUND)
        for head, task, logprob in rows:
            self.add(head, task or "general", logprob)
        return len(rows)

    def add(self, head: str, domain: str, logprob: float | None) -> None:
        if logprob is None:
            return
        with self._lock:
            self._seen.setdefault((head, domain), deque(maxlen=self.size)).append(logprob)

    def threshold(self, head: str, domain: str, share: float) -> float | None:
        """The certainty at or above which `share` of this head's recent answers in the
        domain lie (None until it has answered MIN_SAMPLES questions there)."""
        with self._lock:
            seen = sorted(self._seen.get((head, domain), ()))
        if len(seen) < self.min_samples:
            return None
        return seen[min(len(seen) - 1, int((1.0 - share) * len(seen)))]

    def count(self, head: str, domain: str) -> int:
        with self._lock:
            return len(self._seen.get((head, domain), ()))
