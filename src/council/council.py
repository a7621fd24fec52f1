"""The Council: a Head made of heads. One decision reads top to bottom in `ask`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from council.config import HeadSpec, Settings
from council.embeddings import Embedder, make_embedder
from council.errors import InvalidRequestError, ModelNotFoundError, NoAnswerError, OverloadedError
from council.exchange import (
    Conversation,
    check,
    check_params,
    new_exchange_id,
    success_label,
    with_context,
)
from council.facts.asker import asker, pick_head
from council.facts.facts import Facts
from council.facts.ledger import enqueue
from council.heads import Head, build_heads, make_context
from council.heads.admission import reserve
from council.memory.episodic import Memory, Recalled
from council.memory.rag import Knowledge
from council.memory.store import ANONYMOUS, ExchangeRecord
from council.metrics import Metrics
from council.routing.cloud_retry import CloudRetry, Request, Step
from council.routing.router import Router, reason_kind
from council.routing.selector import Hints
from council.routing.tasks import classify_task
from council.storage import open_store
from council.strategies import Ballot, Context, get_strategy
from council.strategies.base import REFUSED, count_ballot, to_verdict
from council.strategies.failures import single_failure
from council.strategies.simple import vote
from council.toolcalls.offer import tool_strategy, with_tools
from council.types import Completion, GenParams, Message, Verdict
from council.verify import verify_answer

log = logging.getLogger(__name__)
COUNCIL_ID = "council"
OnEvent = Callable[[dict[str, Any]], None]
Incoming = Conversation | str | list[Message] | list[dict[str, Any]]  # what ask() accepts


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
        m = settings.memory
        self.embedder = embedder or make_embedder(m.embedder, batch_ms=m.embed_batch_ms)
        self.metrics = metrics or Metrics()
        self.router = Router(settings)  # the governor applies its saved switches to settings
        self.governor = self.router.governor
        self.metrics.spend_today.set_function(self.governor.ledger.today)
        self.metrics.budget.set_function(lambda: self.settings.routing.daily_budget_usd or -1.0)
        self.memory, self.knowledge = memory, knowledge
        self.observers: list[Callable[[Head, list[Message], list[Completion]], None]] = []  # canary
        if settings.memory.enabled and memory is None and self.embedder is not None:
            store = open_store(settings)
            self.memory = Memory(settings, self.embedder, store)
            self.knowledge = knowledge or Knowledge(settings, self.embedder, store)
        self.facts: Facts | None = None
        if self.memory is not None:
            self.router.certainty.load(self.memory.store)
            if m.facts:
                ask = asker(pick_head(m.fact_head, self.enabled, self.head), self.call)
                self.facts = Facts(self.memory.store, self.memory.embedder, ask, m)

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
        if self.settings.heads.hybrid_head:
            return self.head(self.settings.heads.hybrid_head)
        if not self.enabled:
            raise InvalidRequestError("No enabled heads; enable one in council.toml ([[heads]]).")
        return max(self.enabled, key=lambda h: (h.spec.speed, h.spec.quality))

    async def start(self) -> None:
        """Load every enabled head before serving; start the fact worker (pending jobs first)."""
        results = await asyncio.gather(*(h.start() for h in self.enabled), return_exceptions=True)
        for h, r in zip(self.enabled, results, strict=True):
            if isinstance(r, Exception):
                log.error("head %s failed to start: %s", h.id, r)
        if self.facts is not None:
            self.facts.start()

    async def close(self) -> None:
        if self.facts is not None:
            await self.facts.stop()
        await asyncio.gather(*(h.close() for h in self.heads.values()))
        if self.ctx is not None:
            self.ctx.pool.close()
        if self.memory is not None:
            self.memory.close()
            self.memory.store.close()

    # one decision ---------------------------------------------------------------------
    async def ask(
        self,
        messages: Incoming,
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
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Verdict:
        """Ask the council: recall, plan, ballot, escalate while weak, remember.

        strategy "auto" lets the selector pick strategy and tier; hints steer it. tools and
        tool_choice (OpenAI's) let heads propose calls: the majority call is verdict.tool_calls.
        record=False keeps internal calls (Agent-0, judges, benchmarks) out of memory.
        """
        started = time.perf_counter()
        conversation = self.check(messages)
        self.check_params(params := with_tools(params, tools, tool_choice))
        name = strategy or self.settings.routing.strategy
        get_strategy(name)  # an unknown name fails before any work
        if num_models is not None and num_models < 1:
            raise InvalidRequestError("num_models must be at least 1.", param="num_models")
        question = conversation.question
        task = task_type or classify_task(question)
        user = user or ANONYMOUS
        self.governor.refresh()
        try:
            recalled = await self.recall(question, user, conversation_id, recall, rag)
            prompt = with_context(conversation.messages, recalled)
            max_tokens = params.max_tokens if params else None
            request = Request(name, question, task, hints, num_models, max_tokens)
            retry = self.plan(request)
            for step in retry:  # one provider at a time, while its answer is weak
                self.escalate(step, on_event)
                try:
                    verdict = await self.ballot(step, question, task, prompt, params, on_event)
                except NoAnswerError as exc:
                    retry.failed(step, exc)
                    continue
                retry.answered(step, verdict, verify_answer(question, verdict.answer))
            verdict, verified = retry.final(started)
        except NoAnswerError:
            self.metrics.observe_failure(name, time.perf_counter() - started)
            raise
        if record:
            await self.remember(conversation, verdict, verified, recalled, user, conversation_id)
        self.metrics.observe_verdict(verdict, cloud=verdict.route is not None
                                     and bool(verdict.route.get("cloud")))  # fmt: skip
        return verdict

    async def recall(
        self,
        question: str,
        user: str,
        conversation_id: str | None,
        recall: bool | None,
        rag: bool | None,
    ) -> list[Recalled]:
        """Stage 0: this user's facts, relevant past answers, and the knowledge they may read."""
        found: list[Recalled] = []
        vector = None  # the question's embedding: one for facts, past answers and knowledge
        if self.memory is not None and recall is not False:
            vector = (await asyncio.to_thread(self.memory.embedder.encode, [question]))[0]
            if self.facts is not None:
                found += await asyncio.to_thread(self.facts.recall, question, user, vector)
            found += await asyncio.to_thread(self.memory.recall, question, user=user,
                                             session=conversation_id, vector=vector)  # fmt: skip
        if self.knowledge is not None and rag is not False:
            found += await asyncio.to_thread(self.knowledge.lookup, question, rag, user, vector)
        return found

    def plan(self, request: Request) -> CloudRetry:
        """Stage 1: the router's plans, one per provider in PROVIDER_PRIORITY order."""
        return self.router.retry(request, [h.spec for h in self.enabled])

    async def ballot(
        self,
        step: Step,
        question: str,
        task: str,
        prompt: list[Message],
        params: GenParams | None,
        on_event: OnEvent | None,
    ) -> Verdict:
        """Stages 2-3 on one provider's ballot: the plan's strategy asks, counts and decides."""
        started = time.perf_counter()
        plan, tier = step.plan, step.tier
        members = [self.heads[i] for i in plan.heads]
        if not members:
            raise InvalidRequestError(
                "No enabled heads to ask; set enabled = true on a head in council.toml."
            )
        ctx = Context(question, task, prompt, members, self.settings, params, self,
                      judge=self.judge(members), plan=plan, on_event=on_event)  # fmt: skip
        demand = Counter(q for h in members if (q := h.queue()) is not None)
        name, ctx.notes = tool_strategy(plan.strategy, params)  # tool calls are voted on
        try:  # queued whole or refused whole (503), never half run
            with reserve(demand):
                decision = await get_strategy(name)(ctx)
        finally:  # the router learns how sure each head sounded on its first answer
            self.router.learn(task, ctx.answers)
        v = to_verdict(name, decision, ctx, started)
        v.chosen_model = plan.chosen_model
        v.route = {**plan.to_dict(), "provider": tier.provider, "cloud": tier.cloud}
        if ctx.skipped:
            self.metrics.early_stops.inc()
        return v

    def escalate(self, step: Step, on_event: OnEvent | None) -> None:
        """Stage 4: the last provider's answer was weak; say so before the next one is asked."""
        if step.why is None:
            return
        self.metrics.cloud_retry.labels(step.tier.provider, reason_kind(step.why)).inc()
        if on_event is not None:
            on_event({"event": "escalate", "provider": step.tier.provider, "reason": step.why})

    async def remember(
        self,
        conversation: Conversation,
        verdict: Verdict,
        verified: bool | None,
        recalled: list[Recalled],
        user: str,
        conversation_id: str | None,
    ) -> None:
        """Last stage: label the exchange and store it durably before anyone sees the reply,
        with the job that extracts the user's facts from it (whatever its label)."""
        verdict.recalled = [r.to_dict() for r in recalled]
        if self.memory is None:
            return
        verdict.success, verdict.label_source = success_label(
            verdict, verified, self.settings.routing.success_threshold
        )
        verdict.exchange_id = new_exchange_id()
        record = ExchangeRecord(
            id=verdict.exchange_id,
            user_id=user,
            messages=conversation.messages,
            verdict=verdict,
            conversation_id=conversation_id,
            role="single" if verdict.strategy == "single" else "council",
            success=verdict.success,
            label_source=verdict.label_source,
            recalled=verdict.recalled,
        )
        job = (lambda db: enqueue(db, record)) if self.facts is not None else None
        await asyncio.to_thread(self.memory.record, record, job)
        if self.facts is not None:
            self.facts.wake()

    def check(self, messages: Incoming) -> Conversation:
        """The request's messages, validated once (a Conversation passes as it is)."""
        server = self.settings.server
        return check(messages, server.max_prompt_chars, server.max_messages)

    def check_params(self, params: GenParams | None, head_id: str | None = None) -> None:
        """max_tokens under the cap (one head's own, or the server's), stop strings, seed."""
        head = self.head(head_id) if head_id else None
        if head is not None and head.spec.max_tokens_cap is not None:
            cap, setting = head.spec.max_tokens_cap, f"max_tokens_cap of head {head.id!r}"
        else:
            cap, setting = self.settings.heads.max_tokens_cap, "COUNCIL_MAX_TOKENS_CAP"
        check_params(params, cap, setting)

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
        except OverloadedError:  # not admitted: the request answers 503, no head failed
            raise
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
        threshold = self.settings.routing.cluster_threshold
        return await count_ballot(self.embedder, threshold, question, task, specs, completions)

    def judge(self, members: list[Head]) -> Head | None:
        """best_of_n's judge: the configured one, else the best head of this ballot's provider."""
        if self.settings.routing.judge:
            return self.head(self.settings.routing.judge)
        provider = {h.spec.provider for h in members}
        pool = [h for h in self.enabled if h.spec.provider in provider] or members
        return max(pool, key=lambda h: h.spec.quality) if pool else None

    async def ask_single(
        self,
        messages: Incoming,
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
        conversation = self.check(messages)
        head = self.head(head_id) if head_id else self.fastest()
        self.check_params(params, head.id)
        user = user or ANONYMOUS
        question = conversation.question
        self.governor.refresh()
        recalled = await self.recall(question, user, conversation_id, recall, rag)
        task = classify_task(question)
        ctx = Context(question, task, with_context(conversation.messages, recalled), [head],
                      self.settings, params, self)  # fmt: skip
        try:
            decision = await vote(ctx)
        except NoAnswerError as exc:
            self.metrics.observe_failure("single", time.perf_counter() - started)
            raise single_failure(head.id, exc, ctx.calls) from None
        verdict = to_verdict("single", decision, ctx, started)
        verdict.chosen_model = head.id
        if record:
            verified = verify_answer(question, verdict.answer)
            await self.remember(conversation, verdict, verified, recalled, user, conversation_id)
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
        return [v.as_completion(self.id) for v in verdicts]
