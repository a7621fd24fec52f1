"""What "sure" means for each head: its recent self-certainty (mean token log-probability of
its answers) per domain. Personas and models differ in how sure they sound (a step-by-step
persona writes more tokens, each less certain), so one fixed threshold cannot serve them all;
instead a head may settle a question alone when its certainty is within its own top share of
recent answers in that domain (the selector's early stop).

With COUNCIL_REDIS_URL, replicas share one history (`RedisCertaintyHistory`): a Redis list per
(head, domain), newest first, trimmed to HISTORY; without it the history is this process's."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from council.config import Settings
from council.routing import ledger
from council.strategies import REGISTRY

HISTORY = 500  # answers kept per (head, domain)
MIN_SAMPLES = 30  # fewer than this: no threshold yet, early stop falls back to agreement
# First-round answers only: strategies that store revised answers or other sampling settings
# say so (StrategyFacts.first_round); their certainty means something else.
NOT_FIRST_ROUND = tuple(name for name, f in REGISTRY.items() if not f.first_round)
PREFIX = "council:certainty:"
log = logging.getLogger(__name__)


def certainty_history(settings: Settings) -> CertaintyHistory:
    """The history this server keeps: shared through Redis when replicas have one."""
    if settings.deploy.redis_url:
        return RedisCertaintyHistory(settings.deploy.redis_url)
    return CertaintyHistory()


def share_of(seen: list[float], share: float, min_samples: int) -> float | None:
    """The value at or above which `share` of `seen` lies (None under min_samples)."""
    if len(seen) < min_samples:
        return None
    seen = sorted(seen)
    return seen[min(len(seen) - 1, int((1.0 - share) * len(seen)))]


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
            seen = list(self._seen.get((head, domain), ()))
        return share_of(seen, share, self.min_samples)

    def count(self, head: str, domain: str) -> int:
        with self._lock:
            return len(self._seen.get((head, domain), ()))


class RedisCertaintyHistory(CertaintyHistory):
    """The same history in Redis, shared by replicas. Redis down: no threshold (the selector
    falls back to agreement) and answers go unrecorded, logged; a request never fails on it."""

    def __init__(self, url: str, size: int = HISTORY, min_samples: int = MIN_SAMPLES):
        super().__init__(size, min_samples)
        self.url = url

    def _client(self) -> Any:
        from council.shared import redis_client

        return redis_client(self.url)

    @staticmethod
    def _key(head: str, domain: str) -> str:
        return f"{PREFIX}{head}\x1f{domain}"

    def load(self, store: Any) -> int:
        """Relearn from the store only when Redis has no history yet (the first replica)."""
        import redis

        rows = ledger.recent_certainty(store, self.size, NOT_FIRST_ROUND)
        try:
            if not self._client().set(f"{PREFIX}loaded", "1", nx=True):
                return 0
            pipe = self._client().pipeline(transaction=False)
            for head, task, logprob in rows:  # oldest first, as add() sees them
                if logprob is not None:
                    pipe.lpush(self._key(head, task or "general"), repr(float(logprob)))
            for key in {self._key(h, t or "general") for h, t, _ in rows}:
                pipe.ltrim(key, 0, self.size - 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.error("certainty history not loaded into Redis (%s); check COUNCIL_REDIS_URL",
                      exc)  # fmt: skip
            return 0
        return len(rows)

    def add(self, head: str, domain: str, logprob: float | None) -> None:
        import redis

        if logprob is None:
            return
        key = self._key(head, domain)
        try:
            pipe = self._client().pipeline(transaction=True)
            pipe.lpush(key, repr(float(logprob)))
            pipe.ltrim(key, 0, self.size - 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("certainty of %s not recorded in Redis: %s", head, exc)

    def _recent(self, head: str, domain: str) -> list[float]:
        import redis

        try:
            raw = self._client().lrange(self._key(head, domain), 0, self.size - 1)
        except redis.RedisError as exc:
            log.warning("certainty history of %s not read from Redis: %s", head, exc)
            return []
        return [float(v) for v in raw]

    def threshold(self, head: str, domain: str, share: float) -> float | None:
        return share_of(self._recent(head, domain), share, self.min_samples)

    def count(self, head: str, domain: str) -> int:
        return len(self._recent(head, domain))
