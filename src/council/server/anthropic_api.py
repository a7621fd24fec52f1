"""Anthropic's Messages API (POST /v1/messages), served by the same council as
/v1/chat/completions: the request is mapped onto it (anthropic_schemas.py), decided the same
way, and answered in Anthropic's shape, plain or as its stream of events. Errors on these
routes come in Anthropic's shape (server/errors.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from council.council import COUNCIL_ID
from council.errors import CouncilError, InvalidRequestError
from council.exchange import Conversation
from council.server.anthropic_schemas import MessagesBody, MessagesRequest, stop_reason, usage
from council.server.auth import memory_options
from council.server.council_api import council_of
from council.server.errors import anthropic_body
from council.server.openai_api import STREAM_PIECE, _decide
from council.server.schemas import ChatCompletionRequest, meta_of
from council.types import Verdict

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["anthropic"])


def _message(mid: str, model: str, v: Verdict | None) -> dict[str, Any]:
    """A Message object; before the verdict (a stream's message_start) it has no content."""
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if v is None else [{"type": "text", "text": v.answer}],
        "stop_reason": None if v is None else stop_reason(v),
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0} if v is None else usage(v),
    }


@router.post("/messages", response_model=None)
async def messages(body: MessagesRequest, request: Request) -> dict[str, Any] | StreamingResponse:
    """Anthropic Messages: model "council" (the ballot) or a head id; `stream: true` sends
    Anthropic's event stream. Tools are not supported yet (a 400 says so)."""
    chat = body.as_chat()
    # Checked here, as /v1/chat/completions does, so a bad request is a 4xx before a stream.
    council = council_of(request)
    conversation = council.check(chat.as_messages())
    head_id = None if chat.model == COUNCIL_ID else chat.model
    if head_id is not None:
        council.head(head_id)
    council.check_params(chat.params(), head_id)
    options = await memory_options(request, chat)
    mid = f"msg_{uuid.uuid4().hex[:24]}"
    if chat.stream:
        return StreamingResponse(
            _stream(chat, request, conversation, options, mid),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    v = await _decide(chat, request, conversation, options)
    return {**_message(mid, chat.model, v), "council": meta_of(v)}


def _event(obj: dict[str, Any]) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


async def _stream(
    chat: ChatCompletionRequest,
    request: Request,
    conversation: Conversation,
    options: dict[str, Any],
    mid: str,
) -> AsyncIterator[str]:
    """message_start, content_block_start, ping (again on each council event while the heads
    answer), text deltas, content_block_stop, message_delta (stop_reason, usage), message_stop."""
    yield _event({"type": "message_start", "message": _message(mid, chat.model, None)})
    text_block = {"type": "text", "text": ""}
    yield _event({"type": "content_block_start", "index": 0, "content_block": text_block})
    yield _event({"type": "ping"})
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(_decide(chat, request, conversation, options, events.put_nowait))
    try:
        while not task.done():  # keep the connection alive while the heads answer
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield _event({"type": "ping"})
            else:
                getter.cancel()
        v = task.result()
    except CouncilError as exc:  # headers are sent: report in-band, as Anthropic does
        yield _event(anthropic_body(exc.message, exc.status_code))
        return
    finally:
        if not task.done():  # the client went away: do not leave the ballot running orphaned
            task.cancel()
    for i in range(0, len(v.answer), STREAM_PIECE):
        delta = {"type": "text_delta", "text": v.answer[i : i + STREAM_PIECE]}
        yield _event({"type": "content_block_delta", "index": 0, "delta": delta})
    yield _event({"type": "content_block_stop", "index": 0})
    stop = {"stop_reason": stop_reason(v), "stop_sequence": None}
    yield _event({"type": "message_delta", "delta": stop, "usage": usage(v), "council": meta_of(v)})
    yield _event({"type": "message_stop"})


@router.post("/messages/count_tokens")
async def count_tokens(body: MessagesBody, request: Request) -> dict[str, int]:
    """input_tokens of a Messages request as a head reads it (its persona included; memories
    recalled at answer time are not). For "council": the largest among its heads that can
    count (local heads; a remote API's head cannot)."""
    council = council_of(request)
    conversation = council.check([m.to_message() for m in body.chat_messages()])
    heads = council.enabled if body.model == COUNCIL_ID else [council.head(body.model)]
    found = await asyncio.gather(
        *(h.count_tokens(conversation.messages) for h in heads), return_exceptions=True
    )
    for h, n in zip(heads, found, strict=True):
        if isinstance(n, BaseException):
            log.warning("head %s could not count tokens: %s", h.id, n)
    counts = [n for n in found if isinstance(n, int)]
    if not counts:
        raise InvalidRequestError(
            f"Model {body.model!r} cannot count tokens here: only local heads have their "
            "tokenizer on this server. Send a local head's id (see /v1/models), or read "
            "usage.input_tokens from the answer.",
            param="model",
            code="count_unsupported",
        )
    return {"input_tokens": max(counts)}
