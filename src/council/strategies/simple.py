"""One-round strategies: every member answers once, then a count (and maybe one judge)."""

from __future__ import annotations

from council.ballot.rank import parse_best, render_candidates
from council.ballot.vote import Tally
from council.prompts import load_prompt
from council.routing.tasks import pick_heads
from council.strategies.base import Context, Decision, count_decision
from council.strategies.facts import StrategyFacts
from council.types import GenParams, Message


async def vote(ctx: Context) -> Decision:
    """Majority over normalised answers; one head, one vote."""
    return count_decision(await ctx.ballot(), by_quality=False)


VOTE = StrategyFacts(vote, early_stop=True)


async def weighted(ctx: Context) -> Decision:
    """Each head's vote weighs its catalogue quality score."""
    return count_decision(await ctx.ballot(), by_quality=True)


WEIGHTED = StrategyFacts(weighted, early_stop=True)


async def specialization(ctx: Context) -> Decision:
    """The task's specialists were chosen as members; they vote weighted by quality."""
    b = await ctx.ballot()
    d = count_decision(b, by_quality=True)
    d.notes.append(f"specialists for {b.task_type}: {', '.join(s.id for s in b.specs)}")
    return d


SPECIALIZATION = StrategyFacts(specialization, members=pick_heads)


async def consensus(ctx: Context) -> Decision:
    """Answer only if every head that answered agrees; otherwise say so, with low confidence."""
    b = await ctx.ballot()
    d = count_decision(b, by_quality=False)
    if d.tally.unanimous:
        return d
    distinct = sorted(d.tally.weights, key=lambda c: -d.tally.weights[c])
    lines = []
    for c in distinct:
        i = next(k for k, ck in enumerate(b.clusters) if ck == c)
        lines.append(f"- {b.shown(i)} ({int(d.tally.weights[c])} of {int(sum(d.weights))})")
    d.answer_text = "The council did not reach consensus. Answers given:\n" + "\n".join(lines)
    d.answer_index = None
    d.no_winner = True
    d.notes.append("no consensus")
    return d


CONSENSUS = StrategyFacts(consensus)


async def best_of_n(ctx: Context) -> Decision:
    """A judge head picks the best of the distinct answers; falls back to the vote."""
    b = await ctx.ballot()
    d = count_decision(b, by_quality=False)
    judge = ctx.judge
    if judge is None or len(d.tally.weights) < 2:
        d.notes.append("best_of_n: answers agree, no judging needed" if judge else "no judge")
        return d
    reps = [d.tally.winner_index] + [_rep(d, c) for c in d.tally.weights if c != d.tally.winner]
    candidates = [b.completions[i].text for i in reps if i is not None]
    tpl = load_prompt("judge")
    prompt = tpl["user"].format(question=b.question, candidates=render_candidates(candidates))
    [verdict, *_] = await ctx.call(
        judge,
        [Message("system", tpl["system"]), Message("user", prompt)],
        GenParams(temperature=0.0, max_tokens=32),
    )
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


BEST_OF_N = StrategyFacts(best_of_n, calls=lambda n, policy: n + 1)  # and the judge


def _rep(d: Decision, cluster: int) -> int:
    members = [i for i, c in enumerate(d.ballot.clusters) if c == cluster]
    return max(members, key=lambda i: (d.weights[i], -i))


async def auto(ctx: Context) -> Decision:
    """The selector picks strategy and tier per prompt (task, length, budget, cognitive map)."""
    # The council resolves "auto" into a plan before any head is asked; reaching this means
    # a caller used the registry directly, where a plain vote is the honest fallback.
    d = await vote(ctx)
    d.notes.append("auto called without a plan: majority vote")
    return d


AUTO_WITHOUT_PLAN = StrategyFacts(auto)
