"""Limits per key: admit a request (requests per minute, the daily token and USD budgets) and
charge every head call it causes to the caller.

The caller is `council.users.caller.current()`, which the server binds per request; asyncio
tasks and `asyncio.to_thread` copy it, so the judges, rounds and escalations a request starts
are charged to it too. Work with no caller (learning jobs, the canary's probes) is not charged.
A user's keys share the user's limits; the key name in messages and metrics is the user's name.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from limits.errors import StorageError

from council.config import Settings
from council.errors import RateLimitError
from council.memory.store import Store
from council.metrics import Metrics
from council.quota import ledger
from council.quota.ledger import UNLIMITED, Override
from council.quota.meter import USD_SCALE, Meter, until_midnight, utc_day
from council.types import Completion, Message
from council.users.caller import Caller, current

if TYPE_CHECKING:
    from council.council import Council
    from council.heads import Head

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """One user's limits in force; None: unlimited."""

    rpm: int | None = None
    tokens_per_day: int | None = None
    usd_per_day: float | None = None


def in_force(default: Any, override: Any) -> Any:
    if override is None:
        return default
    return None if override == UNLIMITED else override


class Quota:
    """The limits of every key, their counters (`Meter`) and the usage records (`ledger`)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        meter: Meter | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.meter = meter or Meter(settings.deploy.redis_url, clock)
        self.clock = clock

    def attach(self, council: Council) -> Quota:
        """Charge every head call of this council to the caller of the request in flight."""
        council.observers.append(self.charge)
        return self

    # limits ----------------------------------------------------------------------------
    def limits(self, user: str) -> Limits:
        d, o = self.settings.limits, ledger.override(self.store, user)
        return Limits(
            rpm=in_force(d.rpm, o.rpm),
            tokens_per_day=in_force(d.tokens_per_day, o.tokens_per_day),
            usd_per_day=in_force(d.usd_per_day, o.usd_per_day),
        )

    def set_limits(self, user: str, new: Override) -> Limits:
        """Store the user's overrides (None keeps the default, UNLIMITED lifts it)."""
        ledger.set_override(self.store, user, new)
        return self.limits(user)

    # before a request --------------------------------------------------------------------
    def admit(self, caller: Caller) -> None:
        """Count one request, or raise RateLimitError naming the limit it is over. The daily
        budgets refuse once spent; the request that crosses one is allowed to finish."""
        name = caller.name
        try:
            refusal = self._refusal(name, self.limits(name))
        except StorageError as exc:  # the counters' store (Redis) is down: serve unmetered
            log.error("limits for key %r not checked: %s; check COUNCIL_REDIS_URL", name,
                      exc.storage_error)  # fmt: skip
            refusal = None
        day = utc_day(self.clock())
        ledger.count_request(self.store, day, name, rejected=refusal is not None)
        if refusal is not None:
            self.metrics.key_rejections.labels(name, refusal.limit).inc()
            raise refusal
        self.metrics.key_requests.labels(name).inc()

    def _refusal(self, name: str, lim: Limits) -> RateLimitError | None:
        now = self.clock()
        if lim.tokens_per_day is not None:
            spent = self.meter.spent(name, "tokens")
            if spent >= lim.tokens_per_day:
                return RateLimitError(
                    f"Token limit: {lim.tokens_per_day:,} tokens per day for key {name!r} "
                    f"({spent:,} used today); retry in {until_midnight(now):.0f} s (midnight "
                    f"UTC) or ask an admin to raise it (council users limits {name} "
                    "--tokens-per-day N)",
                    retry_after=math.ceil(until_midnight(now)),
                    limit="tokens_per_day",
                    code="tokens_per_day_exceeded",
                )
        if lim.usd_per_day is not None:
            spent_usd = self.meter.spent(name, "micro_usd") / USD_SCALE
            if spent_usd >= lim.usd_per_day:
                return RateLimitError(
                    f"Spend limit: ${lim.usd_per_day:g} per day for key {name!r} "
                    f"(${spent_usd:.4f} spent today); retry in {until_midnight(now):.0f} s "
                    f"(midnight UTC) or ask an admin to raise it (council users limits {name} "
                    "--usd-per-day N)",
                    retry_after=math.ceil(until_midnight(now)),
                    limit="usd_per_day",
                    code="usd_per_day_exceeded",
                )
        if lim.rpm is not None:  # last: a request refused for its budget takes no slot
            wait = self.meter.take_request(name, lim.rpm)
            if wait is not None:
                return RateLimitError(
                    f"Rate limit: {lim.rpm} requests per minute for key {name!r}; retry in "
                    f"{math.ceil(wait)} s or ask an admin to raise it (council users limits {name} "
                    "--rpm N)",
                    retry_after=math.ceil(wait),
                    limit="rpm",
                )
        return None

    # after each head call ----------------------------------------------------------------
    def charge(self, head: Head, msgs: list[Message], completions: list[Completion]) -> None:
        """A Council observer: book this call's tokens and cost on the caller's key."""
        caller = current()
        if caller is None or not caller.metered:  # internal work, single-user mode, admin token
            return
        name = caller.name
        tokens_in = sum(c.tokens_in for c in completions)
        tokens_out = sum(c.tokens_out for c in completions)
        cost = sum(c.cost_usd for c in completions)
        self.meter.add(name, "tokens", tokens_in + tokens_out)
        self.meter.add(name, "micro_usd", math.ceil(cost * USD_SCALE))
        day = utc_day(self.clock())
        ledger.charge(self.store, day, name, head.id, len(completions), tokens_in, tokens_out,
                      cost)  # fmt: skip
        self.metrics.key_tokens.labels(name, head.id).inc(tokens_in + tokens_out)
        self.metrics.key_cost.labels(name, head.id).inc(cost)

    # reports ---------------------------------------------------------------------------
    def usage(self, user: str | None = None, days: int = 1) -> dict[str, Any]:
        """Usage per key and per head over the last `days` UTC days (today included), with
        each key's limits in force; `user` None: every key."""
        since = utc_day(self.clock() - (days - 1) * 86_400)
        rows = ledger.usage(self.store, since, user)
        if user is not None and user not in rows:  # a key that asked nothing yet
            rows[user] = {"user": user, "requests": 0, "rejected": 0, "heads": {}}
        keys = []
        for name, found in sorted(rows.items()):
            heads = [{"head": h, **row} for h, row in found["heads"].items()]
            tokens_in = sum(h["tokens_in"] for h in heads)
            tokens_out = sum(h["tokens_out"] for h in heads)
            keys.append({
                "key": name,
                "requests": found["requests"],
                "rejected": found["rejected"],
                "calls": sum(h["calls"] for h in heads),
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "tokens": tokens_in + tokens_out,
                "cost_usd": round(sum(h["cost_usd"] for h in heads), 6),
                "heads": heads,
                "limits": asdict(self.limits(name)),
            })  # fmt: skip
        return {"since": since, "days": days, "keys": keys}
