"""`rank`: peer ranking, then chairman synthesis (after karpathy/llm-council's three stages).

1. every member answers (the ballot);
2. every member that answered reviews the others' answers, anonymised and shuffled for it,
   never its own, and ends with a FINAL RANKING; aggregate = mean rank;
3. a chairman writes the final answer from the ranked answers; if it fails, the top-ranked
   answer stands and the verdict says so.
"""

from __future__ import annotations

import asyncio

from council.ballot.rank import label
from council.ballot.ranking import (
    Layout,
    Review,
    Standing,
    aggregate,
    layout,
    parse_ranking,
    render_for_review,
)
from council.ballot.vote import Tally
from council.prompts import load_prompt
from council.strategies.base import Ballot, Context, Decision, count_decision, round_summary
from council.strategies.facts import StrategyFacts
from council.types import GenParams, Message


async def rank(ctx: Context) -> Decision:
    """Heads rank each other's anonymised answers; a chairman writes the final answer."""
    b = await ctx.ballot()
    d = count_decision(b, by_quality=False)
    d.rounds.append(round_summary("answers", b))
    answered = [i for i, c in enumerate(b.completions) if c.answered]
    if len(answered) < 2:
        d.notes.append("rank: fewer than two answers, nothing to rank; majority vote")
        return d
    reviews = await collect_reviews(ctx, b, answered)
    # Ties in mean rank go to the answer more heads gave, then ballot order.
    weight = {i: d.tally.weights[c] for i, c in enumerate(b.clusters) if c is not None}
    by_weight = sorted(answered, key=lambda i: -weight[i])
    standings = aggregate(by_weight, reviews)
    d.rounds.append(_reviews_round(b, reviews, standings))
    for r in reviews:
        if not r.ok:
            d.notes.append(f"review by {r.reviewer} unreadable ({r.problem}); not counted")
    if not any(r.ok for r in reviews):
        d.notes.append("rank: no review could be read; majority vote")
        return d
    top = standings[0].index
    winner = b.clusters[top]
    share = d.tally.weights[winner] / sum(d.tally.weights.values()) if winner is not None else 0.0
    d.tally = Tally(d.tally.clusters, d.tally.weights, winner, top, share)
    d.answer_index = top
    chair = ctx.best(ctx.settings.routing.chairman)
    tpl = load_prompt("rank")
    ranked = "\n\n".join(
        f"Answer {k + 1} (mean rank {s.mean_rank:.2f}):\n{b.completions[s.index].text.strip()}"
        for k, s in enumerate(standings)
        if s.mean_rank is not None
    )
    msgs = [
        Message("system", tpl["chairman_system"]),
        Message("user", tpl["chairman_user"].format(question=b.question, ranked=ranked)),
    ]
    params = GenParams(temperature=0.0, max_tokens=ctx.params.max_tokens if ctx.params else None)
    params.json_schema = ctx.schema  # a synthesis under the schema too: the reply must validate
    [c, *_] = await ctx.call(chair, msgs, params)
    d.rounds.append({"round": "chairman", "head": chair.id, "error": c.error})
    if c.ok and c.text.strip():
        d.answer_text = c.text.strip()
        d.notes.append(f"chairman {chair.id} synthesised the answer from {len(standings)} ranked")
    else:
        why = c.error or "an empty answer"
        d.notes.append(
            f"chairman {chair.id} failed ({why}); answered with the top-ranked response "
            f"({b.completions[top].head}, mean rank {standings[0].mean_rank:.2f})"
        )
    return d


# the answers, a review by each, the chairman
RANK = StrategyFacts(rank, calls=lambda n, policy: 2 * n + 1 if n > 1 else 1)


async def collect_reviews(ctx: Context, b: Ballot, answered: list[int]) -> list[Review]:
    """Every head that answered reviews the others in parallel (local heads batch)."""
    rng = ctx.rng
    layouts = [layout(i, answered, rng) for i in answered]
    heads = {h.id: h for h in ctx.members}
    tpl = load_prompt("rank")
    answers = [c.text for c in b.completions]
    params = GenParams(temperature=0.0, max_tokens=ctx.settings.routing.rank_max_tokens)

    async def review(shown: Layout) -> Review:
        reviewer = heads[b.completions[shown.reviewer].head]
        labels = ", ".join(label(k) for k in range(len(shown.order)))
        user = tpl["review_user"].format(
            question=b.question, responses=render_for_review(answers, shown), labels=labels
        )
        msgs = [Message("system", tpl["review_system"]), Message("user", user)]
        [c, *_] = await ctx.call(reviewer, msgs, params)
        if not c.ok:
            return Review(reviewer.id, None, f"review failed: {c.error}", shown.order)
        return parse_ranking(c.text, shown, reviewer.id)

    return list(await asyncio.gather(*(review(x) for x in layouts)))


def _reviews_round(b: Ballot, reviews: list[Review], standings: list[Standing]) -> dict:
    head = [c.head for c in b.completions]
    return {
        "round": "reviews",
        "reviews": [
            {
                "reviewer": r.reviewer,
                "shown": [head[i] for i in r.shown],
                "ranking": None
                if r.ranks is None
                else [head[i] for i in sorted(r.ranks, key=lambda i: r.ranks[i])],  # type: ignore[index]
                "readable": r.ok,
                "problem": r.problem,
                "text": r.text[:300],
            }
            for r in reviews
        ],
        "standings": [
            {"head": head[s.index], "mean_rank": s.mean_rank, "reviews": s.reviews}
            for s in standings
        ],
    }
