"""The Council: a Head made of heads. One decision reads top to bottom in `ask`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from council.ballot.normalize import Extracted, extract_answer
from council.ballot.tasks import classify_task
from council.ballot.vote import cluster_answers
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
from council.memory.episodic import Memory, Recalled, open_store
from council.memory.rag import Knowledge
from council.memory.store import ANONYMOUS, ExchangeRecord
from council.metrics import Metrics
from council.strategies import Ballot, Decision, Judge, get_strategy, select_members
from council.types import Completion, GenParams, Message, Verdict, Vote, as_messages, last_user_text

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
        self.memory = memory
        self.knowledge = knowledge
        if settings.memory and memory is None and self.embedder is not None:
            store = open_store(settings)
            self.memory = Memory(settings, self.embedder, store)
            self.knowledge = knowledge or Knowledge(settings, self.embedder, store)

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
    ) -> Verdict:
        """Ask the council: recall, choose members, fan out, count, decide, remember.

        record=False keeps internal calls (Agent-0, judges, benchmarks) out of memory.
        """
        started = time.perf_counter()
        msgs = self.check(messages)
        name = strategy or self.settings.strategy
        decide = get_strategy(name)
        question = last_user_text(msgs)
        task = task_type or classify_task(question)
        members = self.members(name, task, num_models)
        user = user or ANONYMOUS
        try:
            recalled = await self.recall(question, user, conversation_id, recall, rag)
            prompt = with_context(msgs, recalled)
            completions = await self.collect(members, prompt, params, on_event)
            ballot = await self.count(question, task, [h.spec for h in members], completions)
            decision = await decide(ballot, self.judge_call(params))
            verdict = self.verdict(name, ballot, decision, started)
        except NoAnswerError:
            self.metrics.observe_failure(name, time.perf_counter() - started)
            raise
        if record:
            await self.remember(msgs, verdict, recalled, user, conversation_id)
        self.metrics.observe_verdict(verdict)
        return verdict

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

    def members(self, strategy: str, task: str, num_models: int | None) -> list[Head]:
        if num_models is not None and num_models < 1:
            raise InvalidRequestError("num_models must be at least 1.", param="num_models")
        specs = select_members(strategy, [h.spec for h in self.enabled], task, num_models)
        if not specs:
            raise InvalidRequestError(
                "No enabled heads to ask; set enabled = true on a head in council.toml."
            )
        return [self.heads[s.id] for s in specs]

    async def collect(
        self,
        members: list[Head],
        msgs: list[Message],
        params: GenParams | None,
        on_event: OnEvent | None = None,
    ) -> list[Completion]:
        """Stage 1: every member answers in parallel; a slow or broken head becomes an error."""

        async def answer(head: Head) -> list[Completion]:
            result = await self.call(head, msgs, params)
            if on_event is not None:  # lets a stream show heads finishing as they do
                c = result[0]
                on_event({"event": "head_done", "head": head.id, "latency_ms": c.latency_ms,
                          "error": c.error})  # fmt: skip
            return result

        results = await asyncio.gather(*(answer(h) for h in members))
        completions = [c for r in results for c in r[:1]]
        if not any(c.ok for c in completions):
            details = "; ".join(f"{c.head}: {c.error}" for c in completions)
            raise NoAnswerError(
                f"All {len(completions)} heads failed ({details}). "
                "Check `council heads` or GET /health for each head's state."
            )
        return completions

    async def call(
        self, head: Head, msgs: list[Message], params: GenParams | None
    ) -> list[Completion]:
        """One head call with its timeout; whatever happens comes back as Completions."""
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(head.complete(msgs, params=params), head.spec.timeout_s)
        except TimeoutError:
            result = head.failed(f"timed out after {head.spec.timeout_s:g}s", started)
        except Exception as exc:  # a Head should not raise; if one does, it still only fails itself
            log.exception("head %s raised", head.id)
            result = head.failed(f"{type(exc).__name__}: {exc}", started)
        for c in result:
            if c.error:
                log.warning("head %s failed: %s", head.id, c.error)
        head.record(result)
        return result

    async def count(
        self, question: str, task: str, specs: list[HeadSpec], completions: list[Completion]
    ) -> Ballot:
        """Stage 2: extract each answer and cluster equal ones (embeddings for free text)."""
        extracted: list[Extracted | None] = [
            extract_answer(c.text) if c.ok else None for c in completions
        ]
        vectors = None
        free = [i for i, e in enumerate(extracted) if e is not None and e.key is None]
        if self.embedder is not None and len(free) > 1:
            enc = await asyncio.to_thread(self.embedder.encode, [completions[i].text for i in free])
            vectors = np.zeros((len(completions), enc.shape[1]), dtype=np.float32)
            vectors[free] = enc
        clusters = cluster_answers(extracted, vectors, self.settings.cluster_threshold)
        return Ballot(question, task, specs, completions, extracted, clusters, vectors)

    def judge_call(self, params: GenParams | None) -> Judge | None:
        judge_id = self.settings.judge
        candidates = self.enabled
        if not candidates:
            return None
        judge = self.head(judge_id) if judge_id else max(candidates, key=lambda h: h.spec.quality)

        async def ask_judge(msgs: list[Message]) -> Completion:
            p = GenParams(temperature=0.0, max_tokens=32)
            return (await self.call(judge, msgs, p))[0]

        return ask_judge

    def verdict(self, strategy: str, b: Ballot, d: Decision, started: float) -> Verdict:
        """Stage 3: the decision as a Verdict with every vote."""
        winner = d.tally.winner
        votes = [
            Vote(
                head=c.head,
                answer=c.text,
                extracted=e.display if e is not None else None,
                cluster=b.clusters[i],
                weight=d.weights[i],
                latency_ms=round(c.latency_ms, 1),
                tokens_in=c.tokens_in,
                tokens_out=c.tokens_out,
                cost_usd=c.cost_usd,
                error=c.error,
                won=winner is not None and b.clusters[i] == winner and d.answer_text is None,
            )
            for i, (c, e) in enumerate(zip(b.completions, b.extracted, strict=True))
        ]
        every = b.completions + d.extra
        if d.answer_text is not None:
            answer = d.answer_text
        else:
            assert d.answer_index is not None
            answer = b.completions[d.answer_index].text
        return Verdict(
            answer=answer,
            votes=votes,
            confidence=d.tally.confidence,
            strategy=strategy,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            cost_usd=sum(c.cost_usd for c in every),
            models_used=[c.head for c in b.completions],
            task_type=b.task_type,
            tokens_in=sum(c.tokens_in for c in every),
            tokens_out=sum(c.tokens_out for c in every),
            notes=d.notes,
        )

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
        recalled = await self.recall(question, user, conversation_id, recall, rag)
        completions = await self.call(head, with_context(msgs, recalled), params)
        c = completions[0]
        if not c.ok:
            self.metrics.observe_failure("single", time.perf_counter() - started)
            raise NoAnswerError(f"Head {head.id} failed: {c.error}")
        ballot = await self.count(question, classify_task(question), [head.spec], [c])
        decision = await get_strategy("vote")(ballot, None)
        verdict = self.verdict("single", ballot, decision, started)
        if record:
            await self.remember(msgs, verdict, recalled, user, conversation_id)
        self.metrics.observe_verdict(verdict)
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
            )
            for v in verdicts
        ]
