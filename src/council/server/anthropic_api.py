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
from council.server.anthropic_schemas import (
    MessagesBody,
    MessagesRequest,
    content_blocks,
    stop_reason,
    stop_sequence,
    usage,
)
from council.server.chat import Checked, check_chat, decide
from council.server.council_api import council_of
from council.server.errors import anthropic_body
from council.server.openai_api import STREAM_PIECE
from council.server.schemas import ChatCompletionRequest, meta_of
from council.types import Verdict

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["anthropic"])


def _message(
    mid: str, model: str, v: Verdict | None, stops: list[str] | None = None
) -> dict[str, Any]:
    """A Message object; before the verdict (a stream's message_start) it has no content."""
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if v is None else content_blocks(v),
        "stop_reason": None if v is None else stop_reason(v, stops),
        "stop_sequence": None if v is None else stop_sequence(v, stops),
        "usage": {"input_tokens": 0, "output_tokens": 0} if v is None else usage(v),
    }


@router.post("/messages", response_model=None)
async def messages(body: MessagesRequest, request: Request) -> dict[str, Any] | StreamingResponse:
    """Anthropic Messages: model "council" (the ballot) or a head id; `stream: true` sends
    Anthropic's event stream. With `tools`, the heads propose calls and the majority call is
    the reply's tool_use blocks (stop_reason "tool_use")."""
    chat = body.as_chat()
    checked = await check_chat(chat, request)  # as /v1/chat/completions: a 4xx before a stream
    mid = f"msg_{uuid.uuid4().hex[:24]}"
    if chat.stream:
        return StreamingResponse(
            _stream(chat, request, checked, mid),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    v = await decide(chat, request, checked)
    return {**_message(mid, chat.model, v, chat.stops()), "council": meta_of(v)}


def _event(obj: dict[str, Any]) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


async def _stream(
    chat: ChatCompletionRequest,
    request: Request,
    checked: Checked,
    mid: str,
) -> AsyncIterator[str]:
    """message_start, ping (again on each council event while the heads answer), then per
    content block its start, deltas (text_delta, or a tool_use's input_json_delta) and stop;
    message_delta (stop_reason, usage), message_stop. Without tools the answer is one text
    block, which starts before the first ping; with tools, blocks wait for the verdict."""
    yield _event({"type": "message_start", "message": _message(mid, chat.model, None)})
    text_first = not chat.tools
    if text_first:
        start = {"type": "text", "text": ""}
        yield _event({"type": "content_block_start", "index": 0, "content_block": start})
    yield _event({"type": "ping"})
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(decide(chat, request, checked, events.put_nowait))
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
    for index, block in enumerate(content_blocks(v)):
        started = text_first and index == 0  # its start went out before the verdict
        for e in _block_events(index, block)[int(started) :]:
            yield _event(e)
    stops = chat.stops()
    stop = {"stop_reason": stop_reason(v, stops), "stop_sequence": stop_sequence(v, stops)}
    yield _event({"type": "message_delta", "delta": stop, "usage": usage(v), "council": meta_of(v)})
    yield _event({"type": "message_stop"})


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """One content block as Anthropic streams it: start (empty), deltas in pieces, stop."""
    if block["type"] == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        text = block["text"]
        deltas = [{"type": "text_delta", "text": text[i : i + STREAM_PIECE]}
                  for i in range(0, len(text), STREAM_PIECE)]  # fmt: skip
    else:
        start = {**block, "input": {}}
        args = json.dumps(block["input"], ensure_ascii=False)
        deltas = [{"type": "input_json_delta", "partial_json": args[i : i + STREAM_PIECE]}
                  for i in range(0, len(args), STREAM_PIECE)]  # fmt: skip
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


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
