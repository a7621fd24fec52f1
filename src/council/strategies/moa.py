"""`moa`: mixture of agents. Layer 1 answers the question; each later layer's proposers see
the previous layer's answers and write improved ones; an aggregator writes the final answer
from the last layer (Wang et al. 2024, "Mixture-of-Agents")."""

from __future__ import annotations

from council.prompts import load_prompt
from council.strategies.base import Context, Decision, count_decision, round_summary
from council.strategies.facts import StrategyFacts
from council.types import Completion, GenParams, Message


def with_system(messages: list[Message], text: str) -> list[Message]:
    """The conversation with `text` merged into (or put before) its system message."""
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{text}"), *messages[1:]]
    return [Message("system", text), *messages]


def responses_block(completions: list[Completion]) -> str:
    return "\n\n".join(
        f"{k + 1}. {c.text.strip()}" for k, c in enumerate(c for c in completions if c.answered)
    )


async def moa(ctx: Context) -> Decision:
    """Layers of proposers refine each other's answers; an aggregator writes the answer."""
    s = ctx.settings
    proposers = ctx.members
    if s.routing.moa_proposers is not None and s.routing.moa_proposers < len(proposers):
        best = sorted(proposers, key=lambda h: -h.spec.quality)[: s.routing.moa_proposers]
        proposers = [h for h in ctx.members if h in best]
    ctx.members = proposers
    b = await ctx.ballot()
    rounds = [round_summary("layer 1", b)]
    tpl = load_prompt("moa")
    layer_heads = proposers  # aligned with b.completions
    for layer in range(2, s.routing.moa_layers + 1):
        msgs = with_system(
            ctx.messages, tpl["propose_system"].format(responses=responses_block(b.completions))
        )
        layer_heads = [h for h, c in zip(layer_heads, b.completions, strict=True) if c.answered]
        b = await ctx.count([h.spec for h in layer_heads], await ctx.collect(layer_heads, msgs))
        rounds.append(round_summary(f"layer {layer}", b))
    d = count_decision(b, by_quality=False)
    d.rounds = rounds
    aggregator = ctx.best(s.routing.moa_aggregator)
    msgs = with_system(
        ctx.messages, tpl["aggregate_system"].format(responses=responses_block(b.completions))
    )
    params = GenParams(temperature=0.0, max_tokens=ctx.params.max_tokens if ctx.params else None)
    params.json_schema = ctx.schema  # a synthesis under the schema too: the reply must validate
    [c, *_] = await ctx.call(aggregator, msgs, params)
    d.rounds.append({"round": "aggregator", "head": aggregator.id, "error": c.error})
    if c.ok and c.text.strip():
        d.answer_text = c.text.strip()
        d.notes.append(
            f"aggregator {aggregator.id} wrote the answer from {s.routing.moa_layers} layer(s) of "
            f"{len(proposers)} proposers"
        )
    else:
        d.notes.append(
            f"aggregator {aggregator.id} failed ({c.error or 'an empty answer'}); "
            "majority vote over the last layer"
        )
    return d


# every layer's proposers, then the aggregator
MOA = StrategyFacts(moa, calls=lambda n, policy: n * policy.moa_layers + 1, first_round=False)
