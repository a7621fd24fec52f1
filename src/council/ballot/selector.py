"""StrategySelector: for each prompt, a strategy and a model tier (the small "courier" heads or
the large "master" heads), chosen from the task type, the prompt's length, the predicted tokens
and cost, per-request hints, the governor's budget and the cognitive map's confidence for the
domain. Pure: it returns a Plan that carries its reasons; the Council carries the plan out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from council.config import HeadSpec

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
    heads: list[str]  # members, in catalogue order (the order that breaks ties)
    early_stop: int | None = None  # ask the cheapest this many first; the rest on disagreement
    stop_confidence: float = 1.0
    predicted_tokens: int = 0
    predicted_calls: int = 0
    predicted_cost_usd: float = 0.0
    domain_confidence: float | None = None
    requested: str = "auto"
    reasons: list[str] = field(default_factory=list)

    @property
    def chosen_model(self) -> str:
        if self.tier is not None:
            return ALIASES[self.tier]
        return "council"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chosen_model": self.chosen_model}


def cheapest_first(specs: Sequence[HeadSpec]) -> list[HeadSpec]:
    """Price first (what early stop saves), then speed, then quality."""
    return sorted(specs, key=lambda s: (s.cost_in_per_1k + s.cost_out_per_1k, -s.speed, -s.quality))


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def calls_for(strategy: str, n: int, policy: Policy) -> int:
    """Head calls a strategy makes with n members, at most (early stop and convergence save)."""
    return {
        "best_of_n": n + 1,
        "rank": 2 * n + 1 if n > 1 else 1,
        "moa": n * policy.moa_layers + 1,
        "debate": n * (policy.debate_rounds + 1),
        "clone_dispatch": policy.clone_samples,
    }.get(strategy, n)


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
    ) -> Plan:
        """heads: the enabled heads the governor allows on the first provider's ballot;
        budget_usd: what is left to spend today (None: no cap); confidence: the cognitive
        map's for this task type (None: no map yet)."""
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
        self._early_stop(plan, confidence, reasons)
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

    def _early_stop(self, plan: Plan, confidence: float | None, reasons: list[str]) -> None:
        if plan.strategy not in ("vote", "weighted"):
            return
        k = self.policy.early_stop_k
        if confidence is not None and confidence >= self.policy.high_confidence:
            k = 1
            reasons.append(f"the map's confidence {confidence:.2f} is high: one head first")
        if len(plan.heads) > k:
            plan.early_stop, plan.stop_confidence = k, self.policy.early_stop_confidence
            reasons.append(
                f"early stop: the {k} cheapest first, the rest only if they disagree "
                f"(confidence < {self.policy.early_stop_confidence:g})"
            )
