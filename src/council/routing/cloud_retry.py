"""CloudRetry: a fallback chain over providers, walked by the Council. The first provider in
PROVIDER_PRIORITY decides; while its answer is weak (confidence under `escalate_below`, a
verifier rejects it, or every head failed) the next provider decides instead.

The walk yields one Step per provider, planned when it is reached (spend and certainty have
moved by then); the Council runs the step's ballot and reports it with `answered` or
`failed`; the walk ends at the first answer that is not weak."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from council.errors import AbstainedError, HeadsTimedOutError, NoAnswerError, NoValidAnswerError
from council.routing.escalation import Tier
from council.routing.selector import Hints, Plan
from council.types import Verdict

if TYPE_CHECKING:
    from council.routing.router import Router


@dataclass(frozen=True)
class Request:
    """What each provider's plan is made for."""

    strategy: str
    question: str
    task: str
    hints: Hints | None
    num_models: int | None
    max_tokens: int | None


@dataclass(frozen=True)
class Step:
    """One provider's turn: its heads, their plan, and why the previous provider's answer was
    not kept (None on the first provider)."""

    tier: Tier
    plan: Plan
    why: str | None = None


@dataclass
class Attempt:
    """What one provider's ballot gave: its verdict (None when every head failed), whether a
    verifier accepts it, and the entry verdict.escalation shows for it."""

    verdict: Verdict | None
    verified: bool | None
    entry: dict[str, Any]
    why: str | None  # why it is not kept; None: keep it


class CloudRetry:
    def __init__(self, router: Router, tiers: list[Tier], refused: list[str], request: Request):
        self.router = router
        self.tiers = tiers
        self.refused = refused  # heads the governor kept off every ballot, and why
        self.request = request
        self.history: list[Attempt] = []  # every provider tried, in order

    def __iter__(self) -> Iterator[Step]:
        why = None
        for tier in self.tiers:
            if self.history:
                why = self.history[-1].why
                if why is None:
                    return
            yield Step(tier, self.plan(tier), why)

    def plan(self, tier: Tier) -> Plan:
        r = self.request
        plan = self.router.plan(
            r.strategy, r.question, r.task, tier.heads, r.hints, r.num_models, r.max_tokens
        )
        plan.reasons += [f"not on the ballot: {x}" for x in self.refused]
        return plan

    def answered(self, step: Step, verdict: Verdict, verified: bool | None) -> None:
        why = self.router.weakness(verdict, verified)
        entry = {"provider": step.tier.provider, "reason": why}
        self.history.append(Attempt(verdict, verified, entry, why))

    def failed(self, step: Step, exc: NoAnswerError) -> None:
        provider = step.tier.provider
        entry: dict[str, Any] = {"provider": provider, "failed": exc.message}
        if isinstance(exc, AbstainedError):  # no head applied: not an upstream failure
            entry["abstained"] = True
        if isinstance(exc, NoValidAnswerError):  # answers came, none valid under the schema
            entry["invalid"] = True
        if isinstance(exc, HeadsTimedOutError):  # every head was too busy: come back later
            entry["timed_out"] = True
        self.history.append(Attempt(None, None, entry, f"every {provider} head failed"))

    def final(self, started: float) -> tuple[Verdict, bool | None]:
        """The last provider's verdict, carrying what earlier providers said, why they were
        not kept, and what they cost; and the verifier's word on it."""
        last = merge_attempts(self.history, started)
        assert last.verdict is not None
        return last.verdict, last.verified


def merge_attempts(history: list[Attempt], started: float) -> Attempt:
    tried = [a for a in history if a.verdict is not None]
    if not tried:
        failures = (f"{a.entry['provider']}: {a.entry['failed']}" for a in history)
        none_applied = all(a.entry.get("abstained") for a in history)
        invalid = all(a.entry.get("invalid") for a in history)
        busy = all(a.entry.get("timed_out") for a in history)
        kind = AbstainedError if none_applied else NoValidAnswerError if invalid else NoAnswerError
        raise (HeadsTimedOutError if busy else kind)(" / ".join(failures))
    last = tried[-1]
    final = last.verdict
    assert final is not None
    earlier = [a for a in history if a is not last]
    if earlier:
        final.escalated = True
        for a in earlier:
            e, v = a.entry, a.verdict
            if v is not None:
                e.update(answer=v.answer, confidence=v.confidence, strategy=v.strategy,
                         head_calls=v.head_calls, cost_usd=v.cost_usd,
                         votes=[vars(x) for x in v.votes])  # fmt: skip
                final.cost_usd += v.cost_usd
                final.tokens_in += v.tokens_in
                final.tokens_out += v.tokens_out
                final.head_calls += v.head_calls
            final.escalation.append(e)
        steps = [f"{a.entry['provider']} ({a.entry.get('reason') or 'failed'})" for a in earlier]
        to = (final.route or {}).get("provider")
        final.notes.append(f"escalated to {to} after {', '.join(steps)}")
    final.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return last
