"""Strategies: how the members' answers become one decision.

A strategy is an async function over a Context (the question, the members, and `ctx.call`,
which asks a head through the council) returning a Decision. Counting and ranking are pure
functions in ballot/, routing policy is in routing/; strategies only sequence the calls.

Each strategy declares its facts (StrategyFacts: cost shape, first-round answers, early stop,
members) next to its function; adding one touches its module and one line of REGISTRY.
"""

from __future__ import annotations

from council.config import HeadSpec
from council.errors import UnknownStrategyError
from council.strategies import debate, moa, rank, simple
from council.strategies.base import Ballot, Context, Decision, Strategy, count_decision
from council.strategies.facts import StrategyFacts

REGISTRY: dict[str, StrategyFacts] = {
    "vote": simple.VOTE,
    "weighted": simple.WEIGHTED,
    "consensus": simple.CONSENSUS,
    "best_of_n": simple.BEST_OF_N,
    "specialization": simple.SPECIALIZATION,
    "rank": rank.RANK,
    "moa": moa.MOA,
    "debate": debate.DEBATE,
    "clone_dispatch": debate.CLONE_DISPATCH,
    "auto": simple.AUTO_WITHOUT_PLAN,
}
STRATEGIES: dict[str, Strategy] = {name: facts.run for name, facts in REGISTRY.items()}
AUTO = "auto"


def facts_of(name: str) -> StrategyFacts:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownStrategyError(
            f"Unknown strategy {name!r}. Known: {', '.join(REGISTRY)}"
        ) from None


def get_strategy(name: str) -> Strategy:
    return facts_of(name).run


def select_members(
    strategy: str, specs: list[HeadSpec], task_type: str, n: int | None
) -> list[HeadSpec]:
    """Which heads sit on this ballot: the strategy's choice (specialists for
    `specialization`, else the top n by quality)."""
    return facts_of(strategy).members(specs, task_type, n)


__all__ = [
    "AUTO",
    "REGISTRY",
    "STRATEGIES",
    "Ballot",
    "Context",
    "Decision",
    "Strategy",
    "StrategyFacts",
    "count_decision",
    "facts_of",
    "get_strategy",
    "select_members",
]
