"""Tool heads: answers from deterministic tools, not from a model.

A tool head is a Head made of a Tool (composition, as the Council is a Head made of heads).
The tool looks at the conversation and either answers, saying what it ran, or abstains: it
does not apply to this question. An abstention comes back as a Completion with
finish_reason "abstain" and no error: the ballot counts it as neither a vote nor a failure
(strategies/base.py `count_ballot`), so a tool that does not apply never lowers agreement.

    [[heads]]
    id = "calculator"
    kind = "tool"
    tool = "calculator"      # calculator | reader | dates | units  (TOOLS below)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from council.config import HeadSpec
from council.errors import ConfigError
from council.heads.base import Head
from council.types import Completion, GenParams, Message

if TYPE_CHECKING:
    from council.heads import HeadContext


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool made of a question: `text` is its answer (None: it abstains) and `ran`
    what it did, or why it did not apply."""

    text: str | None
    ran: str
    grounding: float | None = None  # a span read from recalled text: how well it matched


class Tool(Protocol):
    """A deterministic answerer; `answer` may block (the head runs it in a thread).
    `exact`: its answers are computed from the question alone, so they are right whenever it
    answers (the reader's are not: they are read from whatever was recalled)."""

    exact: bool

    def answer(self, messages: list[Message]) -> ToolAnswer: ...


def _calculator(ctx: HeadContext | None) -> Tool:
    from council.heads.calculator import Calculator

    return Calculator()


def _reader(ctx: HeadContext | None) -> Tool:
    from council.heads.reader import Reader

    return Reader(ctx.embedder() if ctx is not None else None)


def _dates(ctx: HeadContext | None) -> Tool:
    from council.heads.dates import Dates

    return Dates()


def _units(ctx: HeadContext | None) -> Tool:
    from council.heads.units import Units

    return Units()


TOOLS = {"calculator": _calculator, "reader": _reader, "dates": _dates, "units": _units}


class ToolHead(Head):
    """A head whose answers come from a tool; it never fails on a question it cannot read."""

    def __init__(self, spec: HeadSpec, ctx: HeadContext | None = None):
        super().__init__(spec, ctx)
        try:
            make = TOOLS[spec.tool or ""]
        except KeyError:
            raise ConfigError(
                f"Head {spec.id!r} has kind 'tool' but tool = {spec.tool!r}; set tool to one "
                f"of: {', '.join(TOOLS)}"
            ) from None
        self.tool = make(ctx)
        self.state.status = "ready"  # nothing to load

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        started = time.perf_counter()
        try:
            found = await asyncio.to_thread(self.tool.answer, messages)
        except Exception as exc:  # a tool bug fails this head's answer, loudly, not the ballot
            return self.failed(f"{self.spec.tool} failed: {type(exc).__name__}: {exc}", started, n)
        if found.text is None:
            return self.abstained(found.ran, started, n)
        ms = (time.perf_counter() - started) * 1000
        # Deterministic: n samples are n copies of the one answer.
        exact = getattr(self.tool, "exact", False)
        return [
            Completion(
                self.id, found.text, ms, tool=found.ran, grounding=found.grounding, exact=exact
            )
            for _ in range(n)
        ]
