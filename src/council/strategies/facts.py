"""What routing must know of a strategy, declared by the strategy next to its function, so
that no list elsewhere has to be kept in step: how many head calls it makes (the selector's
cost guess), whether the answers it stores are first-round answers (what "sure" means, in
routing/certainty.py), whether asking a few heads first may settle it (early stop), and who
sits on its ballot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from council.config import HeadSpec

if TYPE_CHECKING:
    from council.routing.selector import Policy
    from council.strategies.base import Strategy

Calls = Callable[[int, "Policy"], int]
Members = Callable[[list[HeadSpec], str, int | None], list[HeadSpec]]


def once_each(n: int, policy: Policy) -> int:
    """Every member answers once."""
    return n


def best_n(specs: list[HeadSpec], task_type: str, n: int | None) -> list[HeadSpec]:
    """The top n heads by quality; every head when n is None or covers them all."""
    if n is None or n >= len(specs):
        return list(specs)
    return sorted(specs, key=lambda s: -s.quality)[:n]


@dataclass(frozen=True)
class StrategyFacts:
    """A strategy and what it costs and stores; registered in strategies/__init__.py."""

    run: Strategy
    # head calls with n members, at most (early stop and convergence save some)
    calls: Calls = once_each
    # its stored answers are the heads' first answers to the question itself (debate and moa
    # store revised answers, clone_dispatch other sampling settings)
    first_round: bool = True
    # one count over one ballot: the plan may ask a few heads first and stop if they agree
    early_stop: bool = False
    # which heads sit on an explicitly requested ballot
    members: Members = best_n
