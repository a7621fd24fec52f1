"""The council's side of one exchange: the request checked once, the prompt the heads see
(memories and knowledge merged in), and how the exchange is named and labelled. memory/ only
stores and recalls."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from council.errors import InvalidRequestError, PromptTooLongError
from council.memory.episodic import Recalled
from council.structured.grammar import check_schema
from council.toolcalls.schema import check_tools
from council.types import GenParams, Message, Verdict, as_messages, last_user_text

MAX_STOPS = 4  # as OpenAI
MAX_STOP_CHARS = 64  # each decode step re-reads this much of every row's tail
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # what a torch generator takes, as OpenAI's int64


@dataclass(frozen=True)
class Conversation:
    """Messages that passed `check`: at least one is not blank, and together they fit the
    prompt limit. The server checks a request once and hands this on."""

    messages: list[Message]

    @property
    def question(self) -> str:
        return last_user_text(self.messages)


def check(
    messages: Conversation | str | list[Message] | list[dict[str, Any]],
    max_chars: int,
    max_messages: int | None = None,
) -> Conversation:
    """The one place a request's messages are validated (a Conversation already was)."""
    if isinstance(messages, Conversation):
        return messages
    msgs = as_messages(messages)
    if not msgs or not any(m.content.strip() for m in msgs):
        raise InvalidRequestError(
            "No message to answer: send at least one non-empty message.", param="messages"
        )
    if max_messages is not None and len(msgs) > max_messages:
        raise InvalidRequestError(
            f"The request has {len(msgs)} messages; the limit is {max_messages} "
            "(COUNCIL_MAX_MESSAGES). Drop older turns or raise the limit.",
            param="messages",
        )
    size = sum(
        len(m.content) + sum(len(c.arguments_json) for c in m.tool_calls or ()) for m in msgs
    )
    if size > max_chars:
        raise PromptTooLongError(
            f"The prompt has {size} characters; the limit is {max_chars} "
            f"(COUNCIL_MAX_PROMPT_CHARS). Shorten it or raise the limit."
        )
    for i, m in enumerate(msgs):
        try:  # JSON's "\ud800" decodes to a lone surrogate that no tokenizer takes (a 500)
            m.content.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                f"Message {i} has an unpaired surrogate (\\ud800-\\udfff escape): send text "
                "that is valid Unicode.",
                param="messages",
            ) from None
    return Conversation(msgs)


def check_params(params: GenParams | None, cap: int, setting: str) -> None:
    """The one place a request's sampling settings are validated: max_tokens under the cap
    (`setting` names where the cap is set), the stop strings, the seed."""
    if params is None:
        return
    if params.max_tokens is not None and params.max_tokens > cap:
        raise InvalidRequestError(
            f"max_tokens {params.max_tokens} is over this server's cap of {cap} ({setting}); "
            f"ask for at most {cap}",
            param="max_tokens",
            code="max_tokens_over_cap",
        )
    stops = params.stop or []
    if len(stops) > MAX_STOPS:
        raise InvalidRequestError(
            f"{len(stops)} stop strings; send at most {MAX_STOPS}.", param="stop"
        )
    for s in stops:
        if not s or len(s) > MAX_STOP_CHARS:
            raise InvalidRequestError(
                f"stop string {s[:80]!r} has {len(s)} characters; each must have 1 to "
                f"{MAX_STOP_CHARS}.",
                param="stop",
            )
    if params.tools is not None:
        check_tools(params.tools)
    if params.seed is not None and not SEED_MIN <= params.seed <= SEED_MAX:
        raise InvalidRequestError(
            f"seed {params.seed} is out of range; send an integer from {SEED_MIN} to {SEED_MAX}.",
            param="seed",
        )
    if params.json_schema is not None:  # a schema no head can decode under: 400 before any call
        check_schema(params.json_schema)


def new_exchange_id() -> str:
    return f"ex_{uuid.uuid4().hex}"


def context_block(recalled: list[Recalled]) -> str:
    """The system block that carries facts, past answers and knowledge into the prompt.

    Facts are what the user said (dated, so the newer of two wins); past answers are the
    council's own earlier replies, which may be wrong, so they are labelled as such."""
    parts = []
    facts = sorted((r for r in recalled if r.kind == "fact"), key=lambda r: r.said_at or 0)
    memories = [r for r in recalled if r.kind == "memory"]
    knowledge = [r for r in recalled if r.kind == "knowledge"]
    if facts:
        lines = [f"- ({_day(f.said_at)}) {f.text}" for f in facts]
        parts.append("What the user told you (newest last):\n" + "\n".join(lines))
    if memories:
        parts.append(
            "Your past answers to this user (may be wrong):\n"
            + "\n".join(f"- {m.text}" for m in memories)
        )
    if knowledge:
        lines = [
            f"[{i}] ({k.source}, part {k.position}) {k.text}" for i, k in enumerate(knowledge, 1)
        ]
        parts.append("Knowledge (cite the [number] you use):\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _day(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts or 0))


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
    answered = sum(1 for v in verdict.votes if v.error is None and not v.abstained)
    if answered < 2:
        return None, None
    return verdict.confidence >= threshold, "confidence"
