"""What every strategy works with: the Ballot (what heads said), the Decision (what it made of
it) and the Context (how it may ask heads: through the council, so timeouts, the governor,
metrics and cost apply to every call); and the two stages around a strategy, counting a
ballot and turning a Decision into a Verdict."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from council.ballot.json_vote import extract_json, no_valid_answer
from council.ballot.normalize import Extracted, extract_answer
from council.ballot.vote import Tally, cluster_answers, exact_override, grounded_override, tally
from council.config import HeadSpec, Settings
from council.errors import NoValidAnswerError
from council.strategies.failures import require_answer
from council.strategies.kinds import call_answer, majority_kind
from council.structured.canonical import check_answer
from council.toolcalls.decide import screen
from council.types import Completion, GenParams, Message, Verdict, Vote

if TYPE_CHECKING:
    from council.embeddings import Embedder
    from council.heads.base import Head
    from council.routing.selector import Plan

OnEvent = Callable[[dict[str, Any]], None]
REFUSED = "refused"  # finish_reason of a call the governor did not let through


class Chamber(Protocol):
    """What a strategy may ask of the council: a head by id, a call, a count."""

    def head(self, head_id: str) -> Head: ...

    async def call(
        self, head: Head, msgs: list[Message], params: GenParams | None, n: int = 1
    ) -> list[Completion]: ...

    async def count(
        self, question: str, task: str, specs: list[HeadSpec], completions: list[Completion]
    ) -> Ballot: ...


@dataclass
class Ballot:
    """Everything the heads said, aligned by index."""

    question: str
    task_type: str
    specs: list[HeadSpec]
    completions: list[Completion]
    extracted: list[Extracted | None]
    clusters: list[int | None]
    vectors: np.ndarray | None = None
    # Each head's weight in this domain, learned from outcomes and shrunk towards its
    # catalogue quality (routing/cognitive_map.py learned_weight); absent: the quality.
    learned: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what counting set aside, and why
    # Under a JSON schema: why each answer was not counted (None: it was, or it failed)
    invalid: list[str | None] = field(default_factory=list)

    def weights(self, by_quality: bool) -> list[float]:
        """Per answer: 1 (a vote) or the head's learned weight (`weighted`); 0 for no vote."""
        return [
            (t if by_quality else 1.0) if e is not None else 0.0
            for t, e in zip(self.trust(), self.extracted, strict=True)
        ]

    def trust(self) -> list[float]:
        """Per answer, the head's learned weight (0 for a failure or an abstention): what
        `weighted` counts and what breaks the ties of a plain vote."""
        return [
            self.learned.get(s.id, s.quality) if e is not None else 0.0
            for s, e in zip(self.specs, self.extracted, strict=True)
        ]

    def tally(self, by_quality: bool = False) -> Tally:
        return tally(self.clusters, self.weights(by_quality), self.vectors, self.trust())

    def shown(self, i: int) -> str:
        """An answer as short as a human would quote it."""
        ex = self.extracted[i]
        return ex.display if ex is not None and ex.key else self.completions[i].text[:80]


@dataclass
class Decision:
    """A strategy's outcome. `ballot` is the final round's: its answers become meta.votes."""

    ballot: Ballot
    tally: Tally
    weights: list[float]
    answer_index: int | None
    answer_text: str | None = None  # set when the answer is not one head's text
    notes: list[str] = field(default_factory=list)
    no_winner: bool = False  # e.g. no consensus: nobody's vote "won"
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per-round detail


def count_decision(b: Ballot, by_quality: bool) -> Decision:
    w = b.weights(by_quality)
    t = tally(b.clusters, w, b.vectors, b.trust())
    cs = b.completions
    if o := exact_override(t, [c.exact and c.answered for c in cs], w):
        c = cs[o.index]
        why = f"{c.head} computed it ({c.tool}): outranks {o.outvoted} answers that disagree"
    elif o := grounded_override(t, [c.text for c in cs], [c.grounding for c in cs], w):
        c = cs[o.index]
        why = f"{c.head}'s span {c.text!r}, read from recalled text (similarity {c.grounding:.2f}"
        why += f"), outranks {o.outvoted} answers that do not contain it"
    else:
        return Decision(b, t, w, t.winner_index)
    return Decision(b, o.tally, w, o.index, notes=[why] if o.outvoted else [])


def round_summary(name: str, b: Ballot, **extra: Any) -> dict[str, Any]:
    """One round as meta.rounds shows it: who answered what, and how they grouped."""
    t = b.tally()
    return {
        "round": name,
        "answers": [
            {
                "head": c.head,
                "answer": b.shown(i) if c.answered else None,
                "cluster": b.clusters[i],
                "error": c.error,
            }
            for i, c in enumerate(b.completions)
        ],
        "confidence": round(t.confidence, 4),
        **extra,
    }


@dataclass
class Context:
    """One question's worth of access to heads, for a strategy. Every completion obtained
    through it is kept in `calls`, so cost, tokens and head calls add up in the verdict."""

    question: str
    task_type: str
    messages: list[Message]  # the conversation as heads see it (memory context included)
    members: list[Head]
    settings: Settings
    params: GenParams | None
    council: Chamber
    judge: Head | None = None
    plan: Plan | None = None
    on_event: OnEvent | None = None  # a stream's progress events (heads finishing)
    calls: list[Completion] = field(default_factory=list)
    # every first-round answer to the question itself (the router learns from them)
    answers: list[Completion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # members early stop did not ask

    @property
    def rng(self) -> random.Random:
        """Seeded by the question: the same question shuffles the same way (reproducible)."""
        digest = hashlib.sha256(self.question.encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    async def call(
        self, head: Head, msgs: list[Message], params: GenParams | None = None, n: int = 1
    ) -> list[Completion]:
        result = await self.council.call(head, msgs, params, n)
        self.calls.extend(c for c in result if c.finish_reason != REFUSED)  # never sent: free
        return result

    async def collect(
        self,
        heads: list[Head],
        msgs: list[Message] | None = None,
        params: GenParams | None = None,
        *,
        require: bool = True,
    ) -> list[Completion]:
        """Every head answers in parallel (local heads batch); one completion per head."""

        async def answer(head: Head) -> Completion:
            [c, *_] = await self.call(head, msgs or self.messages, params or self.params)
            if self.on_event is not None:  # a stream shows heads finishing as they do
                self.on_event({"event": "head_done", "head": head.id,
                               "latency_ms": c.latency_ms, "error": c.error})  # fmt: skip
            return c

        completions = list(await asyncio.gather(*(answer(h) for h in heads)))
        # A call that does not fit the tools (or text where a call was required) is no vote.
        completions = screen(completions, (params or self.params or GenParams()).tools)
        if require:
            require_answer(completions)
        return completions

    @property
    def schema(self) -> dict[str, Any] | None:
        return self.params.json_schema if self.params is not None else None

    async def count(
        self, specs: list[HeadSpec], completions: list[Completion], final: bool = True
    ) -> Ballot:
        """Extract and cluster the answers; under a schema only valid JSON votes, and a final
        ballot with none raises NoValidAnswerError (422, or the next provider is asked)."""
        if self.schema is None:
            b = await self.council.count(self.question, self.task_type, specs, completions)
        else:  # JSON compares by canonical value: no embeddings needed
            j = extract_json(completions, self.schema)
            clusters = cluster_answers(j.extracted)
            b = Ballot(self.question, self.task_type, specs, completions, j.extracted, clusters,
                       invalid=j.invalid)  # fmt: skip
            if final and any(c.answered for c in completions) and b.tally().winner is None:
                raise NoValidAnswerError(no_valid_answer(completions, j.invalid))
        if self.plan is not None:
            b.learned = dict(self.plan.weights)
        return b

    async def ballot(self) -> Ballot:
        """Stages 1-2 over the members. With an early-stop plan the plan's first heads go
        first (cheapest first when it names none), and the rest are asked only when those
        do not agree with the plan's confidence, or the lone first head is not sure enough."""
        heads, plan = self.members, self.plan
        k = plan.early_stop if plan is not None else None
        if plan is None or not k or len(heads) <= k:
            return await self.count([h.spec for h in heads], self.seen(await self.collect(heads)))
        chosen = plan.asked_first([h.spec for h in heads])
        # Ballots keep the members' order: ties then break as they would without early stop.
        early = [h for h in heads if h.id in chosen]
        rest = [h for h in heads if h.id not in chosen]
        first = self.seen(await self.collect(early, require=False))
        b = await self.count([h.spec for h in early], first, final=False)
        why = enough(plan, b) if all(c.ok for c in first) else None
        if why is not None:
            self.skipped = [h.id for h in rest]
            self.notes.append(f"early stop: {why}; {', '.join(self.skipped)} not asked")
            return b
        answers = dict(zip([h.id for h in early], first, strict=True))
        later = self.seen(await self.collect(rest, require=False))
        answers |= zip([h.id for h in rest], later, strict=True)
        every = [answers[h.id] for h in heads]
        require_answer(every)
        return await self.count([h.spec for h in heads], every)

    def seen(self, completions: list[Completion]) -> list[Completion]:
        self.answers.extend(completions)
        return completions

    def best(self, head_id: str | None, among: list[Head] | None = None) -> Head:
        """The head a setting names, else the highest-quality one among `among` (members)."""
        if head_id is not None:
            return self.council.head(head_id)
        return max(among or self.members, key=lambda h: h.spec.quality)


def enough(plan: Plan, b: Ballot) -> str | None:
    """Why the first heads' ballot settles the question (None: ask the rest)."""
    t = b.tally()
    n = len(b.completions)
    if t.winner is None:  # no answer counted (none valid under the schema): ask the rest
        return None
    if plan.stop_logprob is None or n > 1:
        if t.confidence >= plan.stop_confidence:
            who = ", ".join(c.head for c in b.completions)
            did = "answered" if n == 1 else "agreed"
            return f"{who} {did} (confidence {t.confidence:.2f})"
        return None
    [c] = b.completions
    if c.logprob is not None and c.logprob >= plan.stop_logprob:
        return f"{c.head} was sure (mean token logprob {c.logprob:.3f} >= {plan.stop_logprob:.3f})"
    return None


async def count_ballot(
    embedder: Embedder | None,
    threshold: float,
    question: str,
    task: str,
    specs: list[HeadSpec],
    completions: list[Completion],
) -> Ballot:
    """Extract each answer and cluster equal ones (embeddings for free text)."""
    # The one place a completion becomes a vote: a failed head and a tool head that abstained
    # get no answer here, so neither joins a cluster, weighs, nor lowers the winner's share.
    extracted: list[Extracted | None] = [
        (call_answer(c) if c.tool_calls else extract_answer(c.text)) if c.answered else None
        for c in completions
    ]
    notes = majority_kind(completions, extracted)
    vectors = None
    free = [i for i, e in enumerate(extracted) if e is not None and e.key is None]
    if embedder is not None and len(free) > 1:
        enc = await asyncio.to_thread(embedder.encode, [completions[i].text for i in free])
        vectors = np.zeros((len(completions), enc.shape[1]), dtype=np.float32)
        vectors[free] = enc
    clusters = cluster_answers(extracted, vectors, threshold)
    return Ballot(question, task, specs, completions, extracted, clusters, vectors, notes=notes)


def to_verdict(strategy: str, d: Decision, ctx: Context, started: float) -> Verdict:
    """The decision as a Verdict: the final round's votes, every call's cost and tokens."""
    b, winner = d.ballot, d.tally.winner
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
            adapter=c.adapter,
            logprob=None if c.logprob is None else round(c.logprob, 4),
            won=winner is not None and b.clusters[i] == winner and not d.no_winner,
            abstained=c.abstained,
            tool_calls=[t.to_openai() for t in c.tool_calls] if c.tool_calls else None,
            invalid=b.invalid[i] if b.invalid else None,
        )
        for i, (c, e) in enumerate(zip(b.completions, b.extracted, strict=True))
    ]
    token_logprobs, finish_reason, tool_calls, stop_sequence = None, "stop", None, None
    if d.answer_text is not None:
        answer = d.answer_text
    else:
        assert d.answer_index is not None
        answer = b.completions[d.answer_index].text
        token_logprobs = b.completions[d.answer_index].token_logprobs
        finish_reason = b.completions[d.answer_index].finish_reason
        tool_calls = b.completions[d.answer_index].tool_calls
        stop_sequence = b.completions[d.answer_index].stop_sequence
        if tool_calls:  # the winning proposal is a call: the reply calls it
            finish_reason, token_logprobs = "tool_calls", None
    if ctx.schema is not None and not tool_calls:  # the reply validates (a synthesis too)
        require_valid(answer, ctx.schema, b)
    return Verdict(
        answer=answer,
        votes=votes,
        confidence=d.tally.confidence,
        strategy=strategy,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        cost_usd=sum(c.cost_usd for c in ctx.calls),
        models_used=list(dict.fromkeys(c.head for c in b.completions)),
        task_type=b.task_type,
        tokens_in=sum(c.tokens_in for c in ctx.calls),
        tokens_out=sum(c.tokens_out for c in ctx.calls),
        notes=[*ctx.notes, *b.notes, *d.notes, *tool_notes(b.completions)],
        head_calls=len(ctx.calls),
        rounds=d.rounds,
        answer_logprobs=token_logprobs,
        finish_reason=finish_reason,
        tool_calls=tool_calls,
        stop_sequence=stop_sequence,
    )


def require_valid(answer: str, schema: dict[str, Any], b: Ballot) -> None:
    checked = check_answer(answer, schema)
    if checked.invalid is not None:
        reasons = [*(b.invalid or [None] * len(b.completions))]
        raise NoValidAnswerError(
            f"The decided answer is not valid under the schema ({checked.invalid}). "
            + no_valid_answer(b.completions, reasons)
        )


def tool_notes(completions: list[Completion]) -> list[str]:
    """What each tool head ran (its expression, the sentence it read), or why it abstained."""
    done = {True: "abstained", False: "answered"}
    return [f"{c.head} {done[c.abstained]}: {c.tool}" for c in completions if c.tool is not None]


Strategy = Callable[[Context], Awaitable[Decision]]
