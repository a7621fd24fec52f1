"""StrategySelector: for each prompt, a strategy and a model tier (the small "courier" heads or
the large "master" heads), chosen from the task type, the prompt's length, the predicted tokens
and cost, per-request hints, the governor's budget and the cognitive map's confidence for the
domain. Pure: it returns a Plan that carries its reasons; the Council carries the plan out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from council.config import HeadSpec
from council.strategies import REGISTRY

Tier = Literal["small", "large"]
ALIASES: dict[str, str] = {"small": "courier", "large": "master"}
CHARS_PER_TOKEN = 4  # a rough English average; the plan only needs the order of magnitude
# Typical answer lengths by task type, capped by the request's or heads' max_tokens.
ANSWER_TOKENS = {"math": 48, "general": 128, "reasoning": 160, "creative": 200, "code": 256}


@dataclass(frozen=True)
class Hints:
    """What a request may ask of the router (all optional)."""

    strategy: str | None = None  # an explicit strategy is honoured; None or "auto" lets it pick
    tier: Tier | None = None
    max_cost_usd: float | None = None  # per request, on top of the daily budget
    num_models: int | None = None  # at most this many heads on the ballot


@dataclass(frozen=True)
class Policy:
    """The selector's thresholds (from Settings; the defaults are the shipped behaviour)."""

    early_stop_k: int = 2
    early_stop_confidence: float = 1.0
    # The first head settles a question alone when its self-certainty (Completion.logprob)
    # is within its own top share of recent answers in the domain (routing/certainty.py);
    # None: only agreement of the first k heads stops early.
    early_stop_alone_share: float | None = 0.7
    low_confidence: float = 0.45  # below: the domain is weak here, bring more deliberation
    high_confidence: float = 0.85  # at or above: one courier answer is usually enough
    long_prompt_tokens: int = 1500  # long code/reasoning prompts go to the master tier
    debate_rounds: int = 2
    moa_layers: int = 2
    clone_samples: int = 5


@dataclass
class Plan:
    """How one question will be decided, and why."""

    strategy: str
    tier: Tier | None  # None: an explicit strategy over every tier's heads
    task_type: str
    heads: list[str]  # members, in catalogue order (ties between equal trust break by it)
    early_stop: int | None = None  # ask `first` first; the rest only when they are not enough
    first: list[str] = field(default_factory=list)  # in trust order
    stop_confidence: float = 1.0  # the first heads agree at least this much: stop
    stop_logprob: float | None = None  # the first head is at least this sure: stop
    predicted_tokens: int = 0
    predicted_calls: int = 0
    predicted_cost_usd: float = 0.0
    domain_confidence: float | None = None
    requested: str = "auto"
    reasons: list[str] = field(default_factory=list)
    # each member's weight in this domain, learned from outcomes (cognitive_map.head_weights):
    # what `weighted` counts and what breaks a plain vote's ties
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def chosen_model(self) -> str:
        if self.tier is not None:
            return ALIASES[self.tier]
        return "council"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chosen_model": self.chosen_model}

    def asked_first(self, members: Sequence[HeadSpec]) -> list[str]:
        """Whom early stop asks first: the plan's `first`, else the cheapest `early_stop`."""
        return self.first or [s.id for s in cheapest_first(members)[: self.early_stop]]


def cheapest_first(specs: Sequence[HeadSpec]) -> list[HeadSpec]:
    """Price first (what early stop saves), then speed, then quality."""
    return sorted(specs, key=lambda s: (s.cost_in_per_1k + s.cost_out_per_1k, -s.speed, -s.quality))


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def calls_for(strategy: str, n: int, policy: Policy) -> int:
    """Head calls a strategy makes with n members, at most (early stop and convergence save),
    as the strategy declares it (StrategyFacts.calls)."""
    facts = REGISTRY.get(strategy)
    return facts.calls(n, policy) if facts is not None else n


class StrategySelector:
    """Picks a Plan per prompt. `choose` is deterministic: same inputs, same plan."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or Policy()

    def choose(
        self,
        prompt: str,
        task_type: str,
        heads: Sequence[HeadSpec],
        *,
        hints: Hints | None = None,
        budget_usd: float | None = None,
        confidence: float | None = None,
        max_tokens: int | None = None,
        head_scores: dict[str, float] | None = None,
        sure_at: dict[str, float] | None = None,
    ) -> Plan:
        """heads: the enabled heads the governor allows on the first provider's ballot;
        budget_usd: what is left to spend today (None: no cap); confidence: the cognitive
        map's for this task type (None: no map yet); head_scores: the map's live accuracy
        of heads in this domain (who is asked first when stopping early); sure_at: per
        head, the certainty of its top `early_stop_alone_share` of recent answers here."""
        hints = hints or Hints()
        reasons: list[str] = []
        p_in = estimate_tokens(prompt)
        tier = self._tier(task_type, p_in, heads, hints, confidence, reasons)
        members = [h for h in heads if h.tier == tier]  # catalogue order: it breaks ties
        if hints.num_models is not None and hints.num_models < len(members):
            best = sorted(members, key=lambda s: -s.quality)[: hints.num_models]
            members = [h for h in members if h in best]
            reasons.append(f"num_models={hints.num_models}: the best {len(members)} heads")
        strategy = self._strategy(task_type, len(members), hints, confidence, reasons)
        plan = Plan(strategy, tier, task_type, [h.id for h in members])
        plan.domain_confidence = confidence
        self._predict(plan, members, p_in, max_tokens)
        self._fit_budget(plan, members, heads, hints, budget_usd, reasons, p_in, max_tokens)
        self._early_stop(plan, heads, confidence, head_scores or {}, sure_at or {}, reasons)
        plan.reasons = reasons
        return plan

    def explicit(
        self, strategy: str, task_type: str, heads: Sequence[HeadSpec], prompt: str
    ) -> Plan:
        """A requested strategy: every allowed head of the provider sits, as before routing."""
        tiers = {h.tier for h in heads}
        plan = Plan(
            strategy,
            tiers.pop() if len(tiers) == 1 else None,
            task_type,
            [h.id for h in heads],
            requested=strategy,
            reasons=[f"strategy {strategy!r} requested"],
        )
        self._predict(plan, list(heads), estimate_tokens(prompt), None)
        return plan

    # the decisions, each appending its reason ----------------------------------------
    def _tier(
        self,
        task: str,
        p_in: int,
        heads: Sequence[HeadSpec],
        hints: Hints,
        confidence: float | None,
        reasons: list[str],
    ) -> Tier:
        have = {h.tier for h in heads}
        if hints.tier is not None:
            if hints.tier in have:
                reasons.append(f"tier {hints.tier} ({ALIASES[hints.tier]}) requested")
                return hints.tier
            reasons.append(f"tier {hints.tier} requested but no such head is enabled")
        want: Tier = "small"
        low = confidence is not None and confidence < self.policy.low_confidence
        if low:
            want = "large"
            why = f"the map's confidence for {task} is {confidence:.2f} < "
            reasons.append(why + f"{self.policy.low_confidence:g}: master")
        elif task in ("code", "reasoning") and p_in > self.policy.long_prompt_tokens:
            want = "large"
            reasons.append(f"long {task} prompt (~{p_in} tokens): master")
        if want not in have:
            other: Tier = "small" if want == "large" else "large"
            if want == "large" and hints.tier is None:
                reasons.append("no large heads enabled: courier")
            return other if other in have else want
        if want == "small":
            reasons.append(f"{task} prompt of ~{p_in} tokens: courier")
        return want

    def _strategy(
        self,
        task: str,
        n: int,
        hints: Hints,
        confidence: float | None,
        reasons: list[str],
    ) -> str:
        if hints.strategy not in (None, "auto"):
            reasons.append(f"strategy {hints.strategy!r} requested")
            return str(hints.strategy)
        if n <= 1:
            reasons.append("one head: sample it several times and vote (clone_dispatch)")
            return "clone_dispatch"
        low = confidence is not None and confidence < self.policy.low_confidence
        if task == "code":
            reasons.append("code rarely matches token for token: a judge picks (best_of_n)")
            return "best_of_n"
        if task == "creative":
            reasons.append("free text does not cluster: peers rank, a chairman writes (rank)")
            return "rank"
        if task == "reasoning" and low:
            reasons.append("weak domain for reasoning: heads debate and revise (debate)")
            return "debate"
        reasons.append(f"{task} answers cluster well: majority vote")
        return "vote"

    def _predict(
        self,
        plan: Plan,
        members: Sequence[HeadSpec],
        p_in: int,
        max_tokens: int | None,
    ) -> None:
        n = len(members)
        cap = max_tokens or max((h.max_tokens for h in members), default=256)
        out = min(cap, ANSWER_TOKENS.get(plan.task_type, 128))
        plan.predicted_tokens = p_in + out
        plan.predicted_calls = calls_for(plan.strategy, n, self.policy)
        per_call = sum(h.cost(p_in, out) for h in members) / n if n else 0.0
        plan.predicted_cost_usd = per_call * plan.predicted_calls

    def _fit_budget(
        self,
        plan: Plan,
        members: Sequence[HeadSpec],
        heads: Sequence[HeadSpec],
        hints: Hints,
        budget_usd: float | None,
        reasons: list[str],
        p_in: int,
        max_tokens: int | None,
    ) -> None:
        caps = [c for c in (budget_usd, hints.max_cost_usd) if c is not None]
        if not caps or plan.predicted_cost_usd <= min(caps):
            return
        cap = min(caps)
        reasons.append(f"predicted ${plan.predicted_cost_usd:.4f} exceeds ${cap:.4f} left")
        if plan.strategy != "vote" and hints.strategy in (None, "auto"):
            plan.strategy = "vote"
            reasons.append("over budget: plain vote (fewest calls)")
            self._predict(plan, members, p_in, max_tokens)
        if plan.predicted_cost_usd > cap and plan.tier == "large" and hints.tier is None:
            small = [h for h in heads if h.tier == "small"]
            if small:
                plan.tier, plan.heads = "small", [h.id for h in small]
                reasons.append("over budget: courier")
                self._predict(plan, small, p_in, max_tokens)

    def _early_stop(
        self,
        plan: Plan,
        heads: Sequence[HeadSpec],
        confidence: float | None,
        scores: dict[str, float],
        sure_at: dict[str, float],
        reasons: list[str],
    ) -> None:
        facts = REGISTRY.get(plan.strategy)
        if facts is None or not facts.early_stop:
            return
        p = self.policy
        members = [h for h in heads if h.id in plan.heads]
        order = trust_order(members, scores)
        if scores and order[0].id in scores:
            reasons.append(
                f"{order[0].id} first: the best live accuracy in {plan.task_type} "
                f"({scores[order[0].id]:.2f})"
            )
        k, sure = p.early_stop_k, None
        if confidence is not None and confidence >= p.high_confidence:
            k = 1
            reasons.append(f"the map's confidence {confidence:.2f} is high: one head first")
        elif p.early_stop_alone_share is not None and order[0].id in sure_at:
            k, sure = 1, sure_at[order[0].id]
        elif p.early_stop_alone_share is not None and order[0].reports_logprobs:
            reasons.append(f"{order[0].id} has too little history to know when it is sure")
        if len(members) <= k:
            return
        plan.early_stop, plan.first = k, [h.id for h in order[:k]]
        plan.stop_confidence, plan.stop_logprob = p.early_stop_confidence, sure
        if sure is not None:
            reasons.append(
                f"early stop: {plan.first[0]} alone if it is as sure as its top "
                f"{p.early_stop_alone_share:.0%} of answers in {plan.task_type} (mean token "
                f"logprob >= {sure:.3f}), else the rest vote too"
            )
        else:
            reasons.append(
                f"early stop: {', '.join(plan.first)} first, the rest only if they disagree "
                f"(confidence < {p.early_stop_confidence:g})"
            )


def trust_order(members: Sequence[HeadSpec], scores: dict[str, float]) -> list[HeadSpec]:
    """Who to ask first: the best live accuracy in the domain (the cognitive map's head
    scores), then the unscored heads cheapest first."""
    scored = sorted((h for h in members if h.id in scores), key=lambda h: -scores[h.id])
    return scored + cheapest_first([h for h in members if h.id not in scores])
