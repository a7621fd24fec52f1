"""Which proposals may vote, and which kind wins: a call whose function or arguments do not
fit the tools is excluded (its head's proposal stays on the ballot with the reason), as is
text under tool_choice required or a named function, and a call under none. Under auto, the
kind (a call or a text answer) most heads proposed wins; a tie goes to text, as answering
does nothing in the world that calling a function might."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from council.toolcalls.schema import call_problem
from council.types import Completion, Tools

INVALID = "invalid"  # finish_reason of a proposal that was excluded from the vote
CALL, TEXT = "call", "text"


def screen(completions: list[Completion], tools: Tools | None) -> list[Completion]:
    """The completions with each unfit proposal turned into an error (no vote)."""
    if tools is None or not tools.functions:
        return completions
    return [_screened(c, tools) for c in completions]


def _screened(c: Completion, tools: Tools) -> Completion:
    if not c.answered:
        return c
    why = problem(c, tools)
    if why is None:
        return c
    return replace(c, error=f"proposal excluded: {why}", finish_reason=INVALID)


def problem(c: Completion, tools: Tools) -> str | None:
    if c.tool_calls:
        if tools.choice == "none":
            return "tool_choice is none, but the head proposed a call"
        if not tools.parallel and len(c.tool_calls) > 1:
            return f"parallel_tool_calls is false, but the head proposed {len(c.tool_calls)} calls"
        for call in c.tool_calls:
            why = call_problem(call, tools)
            if why is not None:
                return why
        return None
    if tools.calls_only:
        return f"tool_choice {tools.choice!r} asks for a call, but the head answered text"
    return None


def kind_of(c: Completion) -> str:
    return CALL if c.tool_calls else TEXT


def winning_kind(kinds: Sequence[str | None], weights: Sequence[float]) -> str | None:
    """The kind with the most weight among the votes (None: no votes); ties go to text."""
    call = sum(w for k, w in zip(kinds, weights, strict=True) if k == CALL)
    text = sum(w for k, w in zip(kinds, weights, strict=True) if k == TEXT)
    if call == 0 and text == 0:
        return None
    return CALL if call > text else TEXT
