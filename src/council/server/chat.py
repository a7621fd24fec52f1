"""The one decision behind both chat APIs (/v1/chat/completions and Anthropic's
/v1/messages): the request checked before any work (so a bad one is a 4xx even before a
stream starts), then the council's ballot or one head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from council.council import COUNCIL_ID, OnEvent
from council.exchange import Conversation
from council.server.auth import memory_options
from council.server.council_api import council_of
from council.server.schemas import ChatCompletionRequest
from council.types import Verdict


@dataclass(frozen=True)
class Checked:
    """A chat request that passed every check: its conversation and whose memory it uses."""

    conversation: Conversation
    options: dict[str, Any]


async def check_chat(body: ChatCompletionRequest, request: Request) -> Checked:
    """Messages, model, sampling settings and tools checked; the caller's memory options."""
    council = council_of(request)
    conversation = council.check(body.as_messages())
    head_id = None if body.model == COUNCIL_ID else body.model
    if head_id is not None:
        council.head(head_id)  # 404 for an unknown model before any work
    council.check_params(body.params(), head_id)  # 400s (tools' schemas too) before a stream
    options = await memory_options(request, body)  # whose memory: refused before a stream
    return Checked(conversation, options)


async def decide(
    body: ChatCompletionRequest,
    request: Request,
    checked: Checked,
    on_event: OnEvent | None = None,
) -> Verdict:
    """The council's verdict (model "council") or one head's answer (a head id)."""
    council = council_of(request)
    params = body.params()
    if body.model == COUNCIL_ID:
        return await council.ask(
            checked.conversation,
            strategy=body.strategy,
            num_models=body.num_models,
            task_type=body.task_type,
            params=params,
            on_event=on_event,
            hints=body.route_hints(),
            **checked.options,
        )
    return await council.ask_single(
        checked.conversation, head_id=body.model, params=params, **checked.options
    )
