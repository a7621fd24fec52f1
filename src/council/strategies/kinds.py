"""Calls and text on one ballot: a call's vote key, and which kind of answer may vote."""

from __future__ import annotations

from council.ballot.normalize import Extracted
from council.toolcalls.canonical import display, proposal_key
from council.toolcalls.decide import kind_of, winning_kind
from council.types import Completion


def call_answer(c: Completion) -> Extracted:
    """Proposed calls as the vote compares them: their canonical form is the key."""
    calls = c.tool_calls or []
    return Extracted("call", proposal_key(calls), display(calls))


def majority_kind(completions: list[Completion], extracted: list[Extracted | None]) -> list[str]:
    """Calls and text on one ballot (tool_choice auto): the kind most heads proposed wins,
    and the other kind's proposals lose their vote (they stay on the ballot). In place."""
    pairs = zip(completions, extracted, strict=True)
    kinds = [kind_of(c) if e is not None else None for c, e in pairs]
    if len({k for k in kinds if k is not None}) < 2:
        return []
    won = winning_kind(kinds, [1.0] * len(kinds))
    lost = [i for i, k in enumerate(kinds) if k is not None and k != won]
    for i in lost:
        extracted[i] = None
    who = ", ".join(completions[i].head for i in lost)
    return [f"most heads proposed {'a tool call' if won == 'call' else 'text'}; not counted: {who}"]
