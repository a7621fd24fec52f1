"""`debate` (rounds in which heads see the others' answers and revise, stopping once they
agree, then a vote) and `clone_dispatch` (one head sampled N times, then a vote)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from council.prompts import load_prompt
from council.strategies.base import (
    Ballot,
    Context,
    Decision,
    count_decision,
    round_summary,
)
from council.strategies.facts import StrategyFacts
from council.strategies.failures import require_answer
from council.types import Completion, GenParams, Message

if TYPE_CHECKING:
    from council.heads.base import Head


def converged(b: Ballot) -> bool:
    """Every head that answered is in one cluster (and at least two answered)."""
    t = b.tally()
    return sum(c.answered for c in b.completions) >= 2 and t.unanimous


async def debate(ctx: Context) -> Decision:
    """Heads see each other's answers and revise for up to R rounds, then vote."""
    b = await ctx.ballot()
    rounds = [round_summary("answers", b)]
    heads = {h.id: h for h in ctx.members}
    notes: list[str] = []
    for r in range(1, ctx.settings.routing.debate_rounds + 1):
        if converged(b):
            notes.append(f"debate converged after {'the answers' if r == 1 else f'round {r - 1}'}")
            break
        previous = b.completions
        active = [(i, c) for i, c in enumerate(previous) if c.answered]
        revised = await asyncio.gather(
            *(_revise(ctx, heads[c.head], r, previous, i, notes) for i, c in active)
        )
        b = await ctx.count([b.specs[i] for i, _ in active], list(revised))
        rounds.append(round_summary(f"round {r}", b))
    else:
        if converged(b):
            notes.append(f"debate converged in round {ctx.settings.routing.debate_rounds}")
        else:
            notes.append(
                f"debate did not converge in {ctx.settings.routing.debate_rounds} rounds; vote"
            )
    d = count_decision(b, by_quality=False)
    d.rounds, d.notes = rounds, notes
    return d


DEBATE = StrategyFacts(
    debate, calls=lambda n, policy: n * (policy.debate_rounds + 1), first_round=False
)


async def _revise(
    ctx: Context, head: Head, r: int, previous: list[Completion], i: int, notes: list[str]
) -> Completion:
    """Head i sees the others' latest answers after its own, and answers again."""
    mine = previous[i]
    others = "\n\n".join(
        f"Response {k + 1}: {c.text.strip()}"
        for k, c in enumerate(c for j, c in enumerate(previous) if j != i and c.answered)
    )
    msgs = [
        *ctx.messages,
        Message("assistant", mine.text),
        Message("user", load_prompt("debate")["revise_user"].format(others=others)),
    ]
    [c, *_] = await ctx.call(head, msgs, ctx.params)
    if ctx.on_event is not None:
        ctx.on_event({"event": "head_done", "head": head.id, "round": r,
                      "latency_ms": c.latency_ms, "error": c.error})  # fmt: skip
    if not c.answered:  # a head that fails to revise keeps its last answer, and the note says so
        notes.append(f"round {r}: {head.id} failed to revise ({c.error}); kept its answer")
        return mine
    return c


async def clone_dispatch(ctx: Context) -> Decision:
    """One head sampled several times (self-consistency), then a majority vote."""
    s = ctx.settings
    head = ctx.best(s.routing.clone_head)
    params = ctx.params or GenParams()
    notes = []
    if not (params.temperature or head.spec.temperature):
        # Greedy samples are identical: the vote would be one answer counted N times.
        params = replace(params, temperature=s.routing.clone_temperature)
        notes.append(f"sampled at temperature {s.routing.clone_temperature:g} (the head is greedy)")
    if params.seed is None and head.spec.seed is None:
        # Seeded by the question (samples k get seed + k): the same question, the same samples.
        params = replace(params, seed=ctx.rng.randrange(2**31))
    completions = await ctx.call(head, ctx.messages, params, s.routing.clone_samples)
    require_answer(completions)
    if ctx.on_event is not None:
        first = completions[0]
        ctx.on_event({"event": "head_done", "head": head.id, "samples": len(completions),
                      "latency_ms": first.latency_ms, "error": first.error})  # fmt: skip
    b = await ctx.count([head.spec] * len(completions), completions)
    d = count_decision(b, by_quality=False)
    d.rounds = [round_summary("samples", b)]
    d.notes = [f"{len(completions)} samples of {head.id}", *notes]
    return d


CLONE_DISPATCH = StrategyFacts(
    clone_dispatch, calls=lambda n, policy: policy.clone_samples, first_round=False
)
