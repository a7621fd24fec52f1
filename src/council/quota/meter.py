"""The counters behind the limits, in the `limits` library's storage: memory in one process,
Redis (settings.deploy.redis_url) when replicas must share them.

Requests per minute are a moving window (`MovingWindowRateLimiter`). The daily budgets are
plain counters per user and UTC day, incremented after each head call: a limit that is raised
or lowered applies to what was already spent today (a `limits` item keys its counter by its
amount, which would restart the count).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

USD_SCALE = 1_000_000  # the counters are integers: spend is counted in micro-dollars
KEEP_S = 2 * 86_400  # a day's counter outlives its day, whatever the clocks' skew


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def until_midnight(ts: float) -> float:
    """Seconds until the next UTC day, when the daily budgets start again."""
    return 86_400 - ts % 86_400


class Meter:
    """Counts requests and spend per user; `url` None keeps the counters in this process."""

    def __init__(self, url: str | None = None, clock: Callable[[], float] = time.time):
        options = {"key_prefix": "council:quota"} if url else {}
        # a sync URL gives a sync storage (storage_from_string also types the async ones)
        self.storage = storage_from_string(url or "memory://", wrap_exceptions=True, **options)
        self.window = MovingWindowRateLimiter(self.storage)
        self.clock = clock
        self.backend = "redis" if url else "memory"

    def take_request(self, user: str, rpm: int) -> float | None:
        """Count one request in the user's minute; None when it fits, else the seconds until
        the oldest one leaves the window."""
        item = RateLimitItemPerMinute(rpm)
        if self.window.hit(item, "rpm", user):
            return None
        stats = self.window.get_window_stats(item, "rpm", user)
        return max(1.0, stats.reset_time - self.clock())

    def spent(self, user: str, what: str) -> int:
        """Today's count of `what` ("tokens" or "micro_usd") for this user."""
        count: int = self.storage.get(self._key(user, what))  # type: ignore[assignment]
        return count

    def add(self, user: str, what: str, amount: int) -> None:
        if amount > 0:
            self.storage.incr(self._key(user, what), KEEP_S, amount=amount)

    def _key(self, user: str, what: str) -> str:
        return f"day/{utc_day(self.clock())}/{what}/{user}"
