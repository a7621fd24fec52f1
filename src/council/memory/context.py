"""Between the council and its memory: what goes into the prompt, and how an exchange is
labelled and recorded."""

from __future__ import annotations

import uuid

from council.memory.episodic import Recalled
from council.types import Message, Verdict
from council.verify import verify_answer


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
    verdict: Verdict, question: str, threshold: float
) -> tuple[bool | None, str | None]:
    """(label, source) from what is known now; user feedback later overrides it.

    A verifier that applies decides; otherwise agreement among at least two answering heads
    (confidence against the threshold); a lone head gives no evidence either way.
    """
    checked = verify_answer(question, verdict.answer)
    if checked is not None:
        return checked, "verifier"
    answered = sum(1 for v in verdict.votes if v.error is None)
    if answered < 2:
        return None, None
    return verdict.confidence >= threshold, "confidence"
