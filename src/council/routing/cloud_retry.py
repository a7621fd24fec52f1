"""CloudRetry: a fallback chain over providers. The first provider in PROVIDER_PRIORITY
decides; while its answer is weak (confidence under `escalate_below`, a verifier rejects it,
or every head failed) the next provider decides instead. Streams see an `escalate` event."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from council.errors import NoAnswerError
from council.metrics import Metrics
from council.routing.escalation import Tier
from council.routing.router import Router, reason_kind
from council.routing.selector import Plan
from council.types import Verdict

OnEvent = Callable[[dict[str, Any]], None]
History = list[tuple[Verdict | None, dict[str, Any]]]


class CloudRetry:
    def __init__(self, router: Router, metrics: Metrics):
        self.router = router
        self.metrics = metrics

    async def run(
        self,
        tiers: list[Tier],
        question: str,
        plan_for: Callable[[Tier], Plan],
        decide: Callable[[Plan, Tier], Awaitable[Verdict]],
        on_event: OnEvent | None,
        started: float,
    ) -> Verdict:
        history: History = []  # every provider tried, in order
        reason = None
        for k, tier in enumerate(tiers):
            if k > 0:
                assert reason is not None
                self.metrics.cloud_retry.labels(tier.provider, reason_kind(reason)).inc()
                if on_event is not None:
                    on_event({"event": "escalate", "provider": tier.provider, "reason": reason})
            try:
                v = await decide(plan_for(tier), tier)
            except NoAnswerError as exc:
                reason = f"every {tier.provider} head failed"
                history.append((None, {"provider": tier.provider, "failed": exc.message}))
                continue
            reason = self.router.weakness(question, v)
            history.append((v, {"provider": tier.provider, "reason": reason}))
            if reason is None:
                break
        return merge_attempts(history, started)


def merge_attempts(history: History, started: float) -> Verdict:
    """The last provider's verdict, carrying what earlier providers said, why they were not
    kept, and what they cost."""
    tried = [v for v, _ in history if v is not None]
    if not tried:
        raise NoAnswerError(" / ".join(f"{e['provider']}: {e['failed']}" for _, e in history))
    final = tried[-1]
    earlier = [(v, e) for v, e in history if v is not final]
    if earlier:
        final.escalated = True
        for v, e in earlier:
            if v is not None:
                e.update(answer=v.answer, confidence=v.confidence, strategy=v.strategy,
                         head_calls=v.head_calls, cost_usd=v.cost_usd,
                         votes=[vars(x) for x in v.votes])  # fmt: skip
                final.cost_usd += v.cost_usd
                final.tokens_in += v.tokens_in
                final.tokens_out += v.tokens_out
                final.head_calls += v.head_calls
            final.escalation.append(e)
        steps = [f"{e['provider']} ({e.get('reason') or 'failed'})" for _, e in earlier]
        to = (final.route or {}).get("provider")
        final.notes.append(f"escalated to {to} after {', '.join(steps)}")
    final.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return final
