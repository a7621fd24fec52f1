"""Which head extracts facts, and how it is asked (through the council's one call path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from council.facts.extract import AskHead
from council.heads.base import Head
from council.types import Completion, GenParams, Message

CallHead = Callable[[Head, list[Message], GenParams | None], Awaitable[list[Completion]]]
PARAMS = GenParams(temperature=0.0, max_tokens=128)


def pick_head(
    setting: str | None, enabled: list[Head], lookup: Callable[[str], Head]
) -> Head | None:
    """memory.fact_head: a head id, "none" (rules and the verbatim fallback only), or "auto"
    (None too): the fastest local head."""
    if setting is not None and setting != "auto":
        return None if setting == "none" else lookup(setting)
    local = [h for h in enabled if not h.spec.is_cloud]
    return max(local, key=lambda h: (h.spec.speed, h.spec.quality)) if local else None


def asker(head: Head | None, call: CallHead) -> AskHead | None:
    """`head` asked through `call` (Council.call: timeout, governor, metrics); a failed call
    answers None, and the facts fall back to rules."""
    if head is None:
        return None
    chosen = head

    async def ask(msgs: list[Message]) -> str | None:
        [c] = await call(chosen, msgs, PARAMS)
        return None if c.error else c.text

    return ask
