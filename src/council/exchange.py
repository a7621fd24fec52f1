"""The council's side of one exchange: the request checked once, the prompt the heads see
(memories and knowledge merged in), and how the exchange is named and labelled. memory/ only
stores and recalls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from council.errors import InvalidRequestError, PromptTooLongError
from council.memory.episodic import Recalled
from council.types import Message, Verdict, as_messages, last_user_text


@dataclass(frozen=True)
class Conversation:
    """Messages that passed `check`: at least one is not blank, and together they fit the
    prompt limit. The server checks a request once and hands this on."""

    messages: list[Message]

    @property
    def question(self) -> str:
        return last_user_text(self.messages)


def check(
    messages: Conversation | str | list[Message] | list[dict[str, Any]], max_chars: int
) -> Conversation:
    """The one place a request's messages are validated (a Conversation already was)."""
    if isinstance(messages, Conversation):
        return messages
    msgs = as_messages(messages)
    if not msgs or not any(m.content.strip() for m in msgs):
        raise InvalidRequestError(
            "No message to answer: send at least one non-empty message.", param="messages"
        )
    size = sum(len(m.content) for m in msgs)
    if size > max_chars:
        raise PromptTooLongError(
            f"The prompt has {size} characters; the limit is {max_chars} "
            f"(COUNCIL_MAX_PROMPT_CHARS). Shorten it or raise the limit."
        )
    return Conversation(msgs)


def new_exchange_id() -> str:
    return f"ex_{uuid.uuid4().hex}"


def context_block(recalled: list[Recalled]) -> str:
    """The system block that carries memories and knowledge into the heads' prompt."""
    parts = []
    memories = [r for r in recalled if r.kind == "memory"]
    knowledge = [r for r in recalled if r.kind == "knowledge"]
    if memories:
        parts.append("Relevant past facts:\n" + "\n".join(f"- {m.text}" for m in memories))
    if knowledge:
        lines = [
            f"[{i}] ({k.source}, part {k.position}) {k.text}" for i, k in enumerate(knowledge, 1)
        ]
        parts.append("Knowledge (cite the [number] you use):\n" + "\n".join(lines))
    return "\n\n".join(parts)


def with_context(messages: list[Message], recalled: list[Recalled]) -> list[Message]:
    """The conversation with the context block merged into its system message."""
    block = context_block(recalled)
    if not block:
        return messages
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{block}"), *messages[1:]]
    return [Message("system", block), *messages]


def success_label(
    verdict: Verdict, verified: bool | None, threshold: float
) -> tuple[bool | None, str | None]:
    """(label, source) from what is known now; user feedback later overrides it.

    A verifier that applies decides (`verified`, checked once per verdict by the council);
    otherwise agreement among at least two answering heads (confidence against the threshold);
    a lone head gives no evidence either way.
    """
    if verified is not None:
        return verified, "verifier"
    answered = sum(1 for v in verdict.votes if v.error is None)
    if answered < 2:
        return None, None
    return verdict.confidence >= threshold, "confidence"
