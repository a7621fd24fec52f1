"""The Router: which heads may sit (governor), in which provider order (PROVIDER_PRIORITY),
with which plan (the StrategySelector fed the budget and the cognitive map), and when an
answer is weak enough for CloudRetry to take it to the next provider. It returns plans; the
Council runs them."""

from __future__ import annotations

from dataclasses import replace

from council.config import HeadSpec, Settings
from council.errors import InvalidRequestError
from council.routing.certainty import certainty_history
from council.routing.cloud_retry import CloudRetry, Request
from council.routing.cognitive_map import CognitiveMap
from council.routing.escalation import Tier, escalation_reason, provider_tiers
from council.routing.governor import Governor
from council.routing.selector import Hints, Plan, Policy, StrategySelector
from council.strategies import AUTO, select_members
from council.types import Completion, Verdict


def policy_of(settings: Settings) -> Policy:
    return Policy(
        early_stop_k=settings.routing.early_stop_k,
        early_stop_confidence=settings.routing.early_stop_confidence,
        early_stop_alone_share=settings.routing.early_stop_alone_share,
        debate_rounds=settings.routing.debate_rounds,
        moa_layers=settings.routing.moa_layers,
        clone_samples=settings.routing.clone_samples,
    )


class Router:
    def __init__(self, settings: Settings, governor: Governor | None = None):
        self.settings = settings
        self.governor = governor or Governor(settings)
        self.map = CognitiveMap(settings.server.data_dir)
        self.certainty = certainty_history(settings)
        self.selector = StrategySelector(policy_of(settings))

    def tiers(self, specs: list[HeadSpec]) -> tuple[list[Tier], list[str]]:
        """The providers' ballots in priority order, and which heads the governor kept off."""
        allowed, refused = self.governor.allowed(specs)
        return provider_tiers(allowed, self.settings.routing.provider_priority), refused

    def retry(self, request: Request, specs: list[HeadSpec]) -> CloudRetry:
        """The walk over the providers' ballots for one question, each planned when reached."""
        tiers, refused = self.tiers(specs)
        if not tiers:
            why = f" The governor refuses: {'; '.join(refused)}." if refused else ""
            raise InvalidRequestError(
                "No enabled heads to ask; set enabled = true on a head in council.toml." + why
            )
        return CloudRetry(self, tiers, refused, request)

    def plan(
        self,
        strategy: str,
        question: str,
        task: str,
        specs: list[HeadSpec],
        hints: Hints | None,
        num_models: int | None,
        max_tokens: int | None,
    ) -> Plan:
        plan = self._plan(strategy, question, task, specs, hints, num_models, max_tokens)
        plan.weights = self.map.head_weights(task, [s for s in specs if s.id in plan.heads])
        return plan

    def _plan(
        self,
        strategy: str,
        question: str,
        task: str,
        specs: list[HeadSpec],
        hints: Hints | None,
        num_models: int | None,
        max_tokens: int | None,
    ) -> Plan:
        if strategy == AUTO:
            h = replace(hints or Hints(), num_models=num_models)
            share = self.selector.policy.early_stop_alone_share
            sure_at = {}
            if share is not None:
                for spec in specs:
                    at = self.certainty.threshold(spec.id, task, share)
                    if at is not None:
                        sure_at[spec.id] = at
            return self.selector.choose(
                question,
                task,
                specs,
                hints=h,
                budget_usd=self.governor.remaining(),
                confidence=self.map.confidence(task),
                max_tokens=max_tokens,
                head_scores=self.map.head_scores(task),
                sure_at=sure_at,
            )
        members = select_members(strategy, specs, task, num_models)
        return self.selector.explicit(strategy, task, members, question)

    def learn(self, task: str, completions: list[Completion]) -> None:
        """Remember how sure each head sounded on a first-round answer in this domain."""
        for c in completions:
            if c.answered:
                self.certainty.add(c.head, task, c.logprob)

    def weakness(self, verdict: Verdict, verified: bool | None) -> str | None:
        """Why CloudRetry should try the next provider, or None to keep this answer;
        `verified`: the verifier's word on it (None: no verifier applies)."""
        s = self.settings
        return escalation_reason(
            verdict.confidence,
            verified,
            below=s.routing.escalate_below,
            on_verifier=s.routing.escalate_on_verifier,
        )


def reason_kind(reason: str) -> str:
    """A low-cardinality label for swarm_cloud_retry_total."""
    if reason.startswith("verifier"):
        return "verifier"
    if reason.startswith("confidence"):
        return "low_confidence"
    return "failed"
