"""Strategies: how a ballot of completions becomes one decision.

Each strategy is an async function (it may ask a judge) over a Ballot, returning a Decision.
The counting itself is pure (ballot/); this module only wires judges in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from council.ballot.normalize import Extracted
from council.ballot.rank import parse_best, render_candidates
from council.ballot.tasks import pick_heads
from council.ballot.vote import Tally, tally
from council.config import HeadSpec
from council.errors import UnknownStrategyError
from council.prompts import load_prompt
from council.types import Completion, Message


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

    def weights(self, by_quality: bool) -> list[float]:
        return [
            (s.quality if by_quality else 1.0) if c.ok else 0.0
            for s, c in zip(self.specs, self.completions, strict=True)
        ]


@dataclass
class Decision:
    tally: Tally
    weights: list[float]
    answer_index: int | None
    answer_text: str | None = None  # set when the answer is not one head's text
    notes: list[str] = field(default_factory=list)
    extra: list[Completion] = field(default_factory=list)  # judge calls, for cost/latency


Judge = Callable[[list[Message]], Awaitable[Completion]]
Strategy = Callable[[Ballot, Judge | None], Awaitable[Decision]]


def _count(b: Ballot, by_quality: bool) -> Decision:
    w = b.weights(by_quality)
    t = tally(b.clusters, w, b.vectors)
    return Decision(t, w, t.winner_index)


async def vote(b: Ballot, judge: Judge | None) -> Decision:
    """Majority over normalised answers; one head, one vote."""
    return _count(b, by_quality=False)


async def weighted(b: Ballot, judge: Judge | None) -> Decision:
    """Each head's vote weighs its catalogue quality score."""
    return _count(b, by_quality=True)


async def specialization(b: Ballot, judge: Judge | None) -> Decision:
    """The task's specialists were chosen as members; they vote weighted by quality."""
    d = _count(b, by_quality=True)
    d.notes.append(f"specialists for {b.task_type}: {', '.join(s.id for s in b.specs)}")
    return d


async def consensus(b: Ballot, judge: Judge | None) -> Decision:
    """Answer only if every head that answered agrees; otherwise say so, with low confidence."""
    d = _count(b, by_quality=False)
    if d.tally.unanimous:
        return d
    distinct = sorted(d.tally.weights, key=lambda c: -d.tally.weights[c])
    lines = []
    for c in distinct:
        i = next(k for k, ck in enumerate(b.clusters) if ck == c)
        ex = b.extracted[i]
        shown = ex.display if ex is not None else b.completions[i].text[:80]
        lines.append(f"- {shown} ({int(d.tally.weights[c])} of {int(sum(d.weights))})")
    d.answer_text = "The council did not reach consensus. Answers given:\n" + "\n".join(lines)
    d.answer_index = None
    d.notes.append("no consensus")
    return d


async def best_of_n(b: Ballot, judge: Judge | None) -> Decision:
    """A judge head picks the best of the distinct answers; falls back to the vote."""
    d = _count(b, by_quality=False)
    if judge is None or len(d.tally.weights) < 2:
        d.notes.append("best_of_n: answers agree, no judging needed" if judge else "no judge")
        return d
    reps = [d.tally.winner_index] + [_rep(b, d, c) for c in d.tally.weights if c != d.tally.winner]
    candidates = [b.completions[i].text for i in reps if i is not None]
    tpl = load_prompt("judge")
    prompt = tpl["user"].format(question=b.question, candidates=render_candidates(candidates))
    verdict = await judge([Message("system", tpl["system"]), Message("user", prompt)])
    d.extra.append(verdict)
    pick = parse_best(verdict.text, len(candidates)) if verdict.ok else None
    if pick is None:
        why = verdict.error or f"unreadable judgement {verdict.text[:60]!r}"
        d.notes.append(f"judge {verdict.head} failed ({why}); fell back to majority vote")
        return d
    chosen = reps[pick]
    assert chosen is not None
    d.answer_index = chosen
    c = b.clusters[chosen]
    share = d.tally.weights[c] / sum(d.tally.weights.values()) if c is not None else 0.0
    d.tally = Tally(d.tally.clusters, d.tally.weights, c, chosen, share)
    d.notes.append(f"judge {verdict.head} picked response {chosen + 1} of the ballot")
    return d


def _rep(b: Ballot, d: Decision, cluster: int) -> int:
    members = [i for i, c in enumerate(b.clusters) if c == cluster]
    return max(members, key=lambda i: (d.weights[i], -i))


STRATEGIES: dict[str, Strategy] = {
    "vote": vote,
    "weighted": weighted,
    "consensus": consensus,
    "best_of_n": best_of_n,
    "specialization": specialization,
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(
            f"Unknown strategy {name!r}. Known: {', '.join(STRATEGIES)}"
        ) from None


def select_members(
    strategy: str, specs: list[HeadSpec], task_type: str, n: int | None
) -> list[HeadSpec]:
    """Which heads sit on this ballot: specialists for `specialization`, else the top n."""
    if strategy == "specialization":
        return pick_heads(specs, task_type, n)
    if n is None or n >= len(specs):
        return list(specs)
    return sorted(specs, key=lambda s: -s.quality)[:n]
