"""Strategies: how the members' answers become one decision.

A strategy is an async function over a Context (the question, the members, and `ctx.call`,
which asks a head through the council) returning a Decision. Counting, ranking and routing
rules are pure functions in ballot/; strategies only sequence the calls.
"""

from __future__ import annotations

from council.routing.tasks import pick_heads
from council.config import HeadSpec
from council.errors import UnknownStrategyError
from council.strategies.base import Ballot, Context, Decision, Strategy, count_decision
from council.strategies.debate import clone_dispatch, debate
from council.strategies.moa import moa
from council.strategies.rank import rank
from council.strategies.simple import auto, best_of_n, consensus, specialization, vote, weighted

STRATEGIES: dict[str, Strategy] = {
    "vote": vote,
    "weighted": weighted,
    "consensus": consensus,
    "best_of_n": best_of_n,
    "specialization": specialization,
    "rank": rank,
    "moa": moa,
    "debate": debate,
    "clone_dispatch": clone_dispatch,
    "auto": auto,
}
AUTO = "auto"


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


__all__ = [
    "AUTO",
    "STRATEGIES",
    "Ballot",
    "Context",
    "Decision",
    "Strategy",
    "count_decision",
    "get_strategy",
    "select_members",
]
