"""The Council: a Head made of heads. One decision reads top to bottom in `ask`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from council.routing.escalation import Tier
from council.routing.selector import Hints, Plan
from council.routing.tasks import classify_task
from council.config import HeadSpec, Settings
from council.embeddings import Embedder, make_embedder
from council.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NoAnswerError,
    PromptTooLongError,
)
from council.heads import Head, build_heads, make_context
from council.memory.context import new_exchange_id, success_label, with_context
from council.memory.episodic import Memory, Recalled
from council.memory.rag import Knowledge
from council.memory.store import ANONYMOUS, ExchangeRecord
from council.metrics import Metrics
from council.routing.cloud_retry import CloudRetry
from council.routing.router import Router
from council.storage import open_store
from council.strategies import Ballot, Context, get_strategy
from council.strategies.base import REFUSED, count_ballot, to_verdict
from council.strategies.simple import vote
from council.types import (
    Completion,
    GenParams,
    Message,
    Verdict,
    as_messages,
    last_user_text,
    mean_logprob,
)

log = logging.getLogger(__name__)
COUNCIL_ID = "council"
OnEvent = Callable[[dict[str, Any]], None]


class Council(Head):
    """Fans a conversation out to its heads and decides by a named strategy."""

    def __init__(
        self,
        settings: Settings,
        heads: list[Head] | None = None,
        *,
        embedder: Embedder | None = None,
        metrics: Metrics | None = None,
        memory: Memory | None = None,
        knowledge: Knowledge | None = None,
    ):
        super().__init__(HeadSpec(id=COUNCIL_ID, kind="council", model=COUNCIL_ID))
        self.settings = settings
        self.ctx = make_context(settings) if heads is None else None
        self.heads: dict[str, Head] = {
            h.id: h for h in (heads if heads is not None else build_heads(settings, self.ctx))
        }
        self.embedder = embedder if embedder is not None else make_embedder(settings.embedder)
        self.metrics = metrics or Metrics()
        self.router = Router(settings)  # the governor applies its saved switches to settings
        self.governor = self.router.governor
        self.metrics.spend_today.set_function(self.governor.ledger.today)
        self.metrics.budget.set_function(lambda: self.settings.daily_budget_usd or -1.0)
        self.memory = memory
        self.knowledge = knowledge
        # Called with every head call's result (the deployer's canary watches these).
        self.observers: list[Callable[[Head, list[Message], list[Completion]], None]] = []
        if settings.memory and memory is None and self.embedder is not None:
            store = open_store(settings)
            self.memory = Memory(settings, self.embedder, store)
            self.knowledge = knowledge or Knowledge(settings, self.embedder, store)
        if self.memory is not None:
            self.router.certainty.load(self.memory.store)

    # the heads ------------------------------------------------------------------------
    @property
    def enabled(self) -> list[Head]:
        return [h for h in self.heads.values() if h.spec.enabled]

    def head(self, head_id: str) -> Head:
        try:
            return self.heads[head_id]
        except KeyError:
            known = ", ".join([COUNCIL_ID, *self.heads])
            raise ModelNotFoundError(f"Unknown model {head_id!r}. Known: {known}") from None

    def fastest(self) -> Head:
        if self.settings.hybrid_head:
            return self.head(self.settings.hybrid_head)
        if not self.enabled:
            raise InvalidRequestError("No enabled heads; enable one in council.toml ([[heads]]).")
        return max(self.enabled, key=lambda h: (h.spec.speed, h.spec.quality))

    async def start(self) -> None:
        """Load every enabled head (local weights, connections) before serving."""
        results = await asyncio.gather(*(h.start() for h in self.enabled), return_exceptions=True)
        for h, r in zip(self.enabled, results, strict=True):
            if isinstance(r, Exception):
                log.error("head %s failed to start: %s", h.id, r)

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self.heads.values()))
        if self.ctx is not None:
            self.ctx.pool.close()
        if self.memory is not None:
            self.memory.close()
            self.memory.store.close()

    # one decision ---------------------------------------------------------------------
    async def ask(
        self,
        messages: str | list[Message] | list[dict[str, Any]],
        *,
        strategy: str | None = None,
        num_models: int | None = None,
        task_type: str | None = None,
        params: GenParams | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        recall: bool | None = None,
        rag: bool | None = None,
        on_event: OnEvent | None = None,
        record: bool = True,
        hints: Hints | None = None,
    ) -> Verdict:
        """Ask the council: recall, route, fan out, count, decide, escalate, remember.

        strategy "auto" lets the selector pick strategy and tier; hints steer it.
        record=False keeps internal calls (Agent-0, judges, benchmarks) out of memory.
        """
        started = time.perf_counter()
        msgs = self.check(messages)
        name = strategy or self.settings.strategy
        get_strategy(name)  # an unknown name fails before any work
        if num_models is not None and num_models < 1:
            raise InvalidRequestError("num_models must be at least 1.", param="num_models")
        question = last_user_text(msgs)
        task = task_type or classify_task(question)
        user = user or ANONYMOUS
        self.governor.refresh()
        try:
            recalled = await self.recall(question, user, conversation_id, recall, rag)
            prompt = with_context(msgs, recalled)
            verdict = await self.escalate(
                name, question, task, prompt, params, num_models, hints, on_event, started
            )
        except NoAnswerError:
            self.metrics.observe_failure(name, time.perf_counter() - started)
            raise
        if record:
            await self.remember(msgs, verdict, recalled, user, conversation_id)
        self.metrics.observe_verdict(verdict, cloud=verdict.route is not None
                                     and bool(verdict.route.get("cloud")))  # fmt: skip
        return verdict

    async def escalate(
        self,
        name: str,
        question: str,
        task: str,
        prompt: list[Message],
        params: GenParams | None,
        num_models: int | None,
        hints: Hints | None,
        on_event: OnEvent | None,
        started: float,
    ) -> Verdict:
        """Stages 1-4 per provider, first to last in PROVIDER_PRIORITY while the answer is weak."""
        tiers, refused = self.router.tiers([h.spec for h in self.enabled])
        if not tiers:
            why = f" The governor refuses: {'; '.join(refused)}." if refused else ""
            raise InvalidRequestError(
                "No enabled heads to ask; set enabled = true on a head in council.toml." + why
            )
        max_tokens = params.max_tokens if params else None

        def plan_for(tier: Tier) -> Plan:
            plan = self.router.plan(name, question, task, tier.heads, hints, num_models, max_tokens)
            plan.reasons += [f"not on the ballot: {r}" for r in refused]
            return plan

        async def decide(plan: Plan, tier: Tier) -> Verdict:
            return await self.decide(plan, tier, question, task, prompt, params, on_event)

        retry = CloudRetry(self.router, self.metrics)
        return await retry.run(tiers, question, plan_for, decide, on_event, started)

    async def decide(
        self,
        plan: Plan,
        tier: Tier,
        question: str,
        task: str,
        prompt: list[Message],
        params: GenParams | None,
        on_event: OnEvent | None,
    ) -> Verdict:
        """Stages 1-3 on one provider's ballot: the plan's strategy asks, counts and decides."""
        started = time.perf_counter()
        members = [self.heads[i] for i in plan.heads]
        if not members:
            raise InvalidRequestError(
                "No enabled heads to ask; set enabled = true on a head in council.toml."
            )
        ctx = Context(
            question, task, prompt, members, self.settings, params, self.call, self.count,
            head_of=self.head, judge=self.judge(members), plan=plan, on_event=on_event,
            on_answers=partial(self.router.learn, task),
        )  # fmt: skip
        decision = await get_strategy(plan.strategy)(ctx)
        v = to_verdict(plan.strategy, decision, ctx, started)
        v.chosen_model = plan.chosen_model
        v.route = {**plan.to_dict(), "provider": tier.provider, "cloud": tier.cloud}
        if ctx.skipped:
            self.metrics.early_stops.inc()
        return v

    async def recall(
        self,
        question: str,
        user: str,
        conversation_id: str | None,
        recall: bool | None,
        rag: bool | None,
    ) -> list[Recalled]:
        """Stage 0: this user's relevant past exchanges and knowledge snippets."""
        found: list[Recalled] = []
        if self.memory is not None and recall is not False:
            found += await asyncio.to_thread(
                self.memory.recall, question, user=user, session=conversation_id
            )
        if self.knowledge is not None and rag is not False:
            found += await asyncio.to_thread(self.knowledge.lookup, question, rag)
        return found

    async def remember(
        self,
        msgs: list[Message],
        verdict: Verdict,
        recalled: list[Recalled],
        user: str,
        conversation_id: str | None,
    ) -> None:
        """Last stage: label the exchange and store it durably before anyone sees the reply."""
        verdict.recalled = [r.to_dict() for r in recalled]
        if self.memory is None:
            return
        question = last_user_text(msgs)
        verdict.success, verdict.label_source = success_label(
            verdict, question, self.settings.success_threshold
        )
        verdict.exchange_id = new_exchange_id()
        record = ExchangeRecord(
            id=verdict.exchange_id,
            user_id=user,
            messages=msgs,
            verdict=verdict,
            conversation_id=conversation_id,
            role="single" if verdict.strategy == "single" else "council",
            success=verdict.success,
            label_source=verdict.label_source,
            recalled=verdict.recalled,
        )
        await asyncio.to_thread(self.memory.record, record)

    def check(self, messages: str | list[Message] | list[dict[str, Any]]) -> list[Message]:
        msgs = as_messages(messages)
        if not msgs or not any(m.content.strip() for m in msgs):
            raise InvalidRequestError(
                "No message to answer: send at least one non-empty message.", param="messages"
            )
        size = sum(len(m.content) for m in msgs)
        if size > self.settings.max_prompt_chars:
            raise PromptTooLongError(
                f"The prompt has {size} characters; the limit is {self.settings.max_prompt_chars} "
                f"(COUNCIL_MAX_PROMPT_CHARS). Shorten it or raise the limit."
            )
        return msgs

    async def call(
        self, head: Head, msgs: list[Message], params: GenParams | None, n: int = 1
    ) -> list[Completion]:
        """One head call with its timeout, under the governor; whatever happens comes back as
        Completions. Every head call (ballots, judges, rounds, learning jobs) passes here."""
        started = time.perf_counter()
        refusal = self.governor.refusal(head.spec)
        if refusal is not None:
            log.warning("head %s: %s", head.id, refusal)
            kind = "local_only" if "local_only" in refusal else "budget"
            self.metrics.refusals.labels(head.id, kind).inc()
            return [replace(c, finish_reason=REFUSED) for c in head.failed(refusal, started, n)]
        try:
            result = await asyncio.wait_for(
                head.complete(msgs, n=n, params=params), head.spec.timeout_s
            )
        except TimeoutError:
            result = head.failed(f"timed out after {head.spec.timeout_s:g}s", started, n)
        except Exception as exc:  # a Head should not raise; if one does, it still only fails itself
            log.exception("head %s raised", head.id)
            result = head.failed(f"{type(exc).__name__}: {exc}", started, n)
        for c in result:
            if c.error:
                log.warning("head %s failed: %s", head.id, c.error)
        head.record(result)
        self.governor.record(head.spec, msgs, result)
        self.metrics.observe_call(head.spec, result)
        for observe in self.observers:
            try:
                observe(head, msgs, result)
            except Exception:  # an observer never fails a call
                log.exception("call observer failed")
        return result

    async def count(
        self, question: str, task: str, specs: list[HeadSpec], completions: list[Completion]
    ) -> Ballot:
        """Stage 2: extract each answer and cluster equal ones (embeddings for free text)."""
        threshold = self.settings.cluster_threshold
        return await count_ballot(self.embedder, threshold, question, task, specs, completions)

    def judge(self, members: list[Head]) -> Head | None:
        """best_of_n's judge: the configured one, else the best head of this ballot's provider."""
        if self.settings.judge:
            return self.head(self.settings.judge)
        provider = {h.spec.provider for h in members}
        pool = [h for h in self.enabled if h.spec.provider in provider] or members
        return max(pool, key=lambda h: h.spec.quality) if pool else None

    async def ask_single(
        self,
        messages: str | list[Message] | list[dict[str, Any]],
        *,
        head_id: str | None = None,
        params: GenParams | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        recall: bool | None = None,
        rag: bool | None = None,
        record: bool = True,
    ) -> Verdict:
        """One head, no ballot: the /hybrid fast path and `model=<head id>` on /v1."""
        started = time.perf_counter()
        msgs = self.check(messages)
        head = self.head(head_id) if head_id else self.fastest()
        user = user or ANONYMOUS
        question = last_user_text(msgs)
        self.governor.refresh()
        recalled = await self.recall(question, user, conversation_id, recall, rag)
        task = classify_task(question)
        ctx = Context(question, task, with_context(msgs, recalled), [head], self.settings,
                      params, self.call, self.count)  # fmt: skip
        try:
            decision = await vote(ctx)
        except NoAnswerError:
            self.metrics.observe_failure("single", time.perf_counter() - started)
            raise NoAnswerError(f"Head {head.id} failed: {ctx.calls[0].error}") from None
        verdict = to_verdict("single", decision, ctx, started)
        verdict.chosen_model = head.id
        if record:
            await self.remember(msgs, verdict, recalled, user, conversation_id)
        self.metrics.observe_verdict(verdict, cloud=head.spec.is_cloud)
        return verdict

    # the Council is itself a Head ------------------------------------------------------
    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        started = time.perf_counter()
        try:
            verdicts = await asyncio.gather(*(self.ask(messages, params=params) for _ in range(n)))
        except Exception as exc:
            return self.failed(f"{type(exc).__name__}: {exc}", started, n)
        return [
            Completion(
                head=self.id,
                text=v.answer,
                latency_ms=v.latency_ms,
                tokens_in=v.tokens_in,
                tokens_out=v.tokens_out,
                cost_usd=v.cost_usd,
                logprob=mean_logprob(v.answer_logprobs),
                token_logprobs=v.answer_logprobs,
            )
            for v in verdicts
        ]
