"""OpenAI-compatible /v1: the council is model `council`; every head is a model too."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from council.council import COUNCIL_ID, OnEvent
from council.errors import CouncilError
from council.exchange import Conversation
from council.heads.streaming import TextSink, streaming_to
from council.server.auth import memory_options
from council.server.council_api import council_of
from council.server.embeddings_api import embedding_models
from council.server.errors import error_body
from council.server.schemas import ChatCompletionRequest, meta_of
from council.types import Verdict

router = APIRouter(prefix="/v1", tags=["openai"])
STREAM_PIECE = 16  # characters per streamed delta once the answer is decided


@router.get("/models")
async def models(request: Request) -> dict[str, Any]:
    """The council plus every head, as OpenAI model objects; then the embedder (type
    "embedding"), for /v1/embeddings."""
    council = council_of(request)
    created = int(request.app.state.started_at)
    ids = [COUNCIL_ID] + [h.id for h in council.heads.values() if h.spec.enabled]
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "council"} for i in ids
        ]
        + embedding_models(request),
    }


async def _decide(
    body: ChatCompletionRequest,
    request: Request,
    conversation: Conversation,
    options: dict[str, Any],
    on_event: OnEvent | None = None,
) -> Verdict:
    council = council_of(request)
    params = body.params()
    if body.model == COUNCIL_ID:
        return await council.ask(
            conversation,
            strategy=body.strategy,
            num_models=body.num_models,
            task_type=body.task_type,
            params=params,
            on_event=on_event,
            hints=body.route_hints(),
            **options,
        )
    return await council.ask_single(conversation, head_id=body.model, params=params, **options)


def _logprobs(body: ChatCompletionRequest, v: Verdict) -> dict[str, Any] | None:
    """OpenAI's choice.logprobs, when asked for and the answer is one head's own text (a
    chairman's or aggregator's synthesis, or a head that cannot tell, has none)."""
    if not body.logprobs or v.answer_logprobs is None:
        return None
    return {
        "content": [
            {"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
            for t, lp in v.answer_logprobs
        ]
    }


def _usage(v: Verdict) -> dict[str, int]:
    return {
        "prompt_tokens": v.tokens_in,
        "completion_tokens": v.tokens_out,
        "total_tokens": v.tokens_in + v.tokens_out,
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request
) -> dict[str, Any] | StreamingResponse:
    """Chat completions; `stream: true` sends SSE chunks ending in [DONE]."""
    # Checked once, here, so that a bad request is a 4xx even before a stream starts.
    council = council_of(request)
    conversation = council.check(body.as_messages())
    head_id = None if body.model == COUNCIL_ID else body.model
    if head_id is not None:
        council.head(head_id)  # 404 for an unknown model before any work
    council.check_params(body.params(), head_id)  # 400s before a stream starts
    options = await memory_options(request, body)  # whose memory: refused before a stream
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            _stream(body, request, conversation, options, cid, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    v = await _decide(body, request, conversation, options)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": v.answer},
                "finish_reason": "stop",
                "logprobs": _logprobs(body, v),
            }
        ],
        "usage": _usage(v),
        "exchange_id": v.exchange_id,
        "council": meta_of(v),
    }


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


async def _stream(
    body: ChatCompletionRequest,
    request: Request,
    conversation: Conversation,
    options: dict[str, Any],
    cid: str,
    created: int,
) -> AsyncIterator[str]:
    def chunk(
        delta: dict[str, Any],
        finish: str | None = None,
        logprobs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [choice],
            **extra,
        }

    yield _sse(chunk({"role": "assistant", "content": ""}))
    # Council progress events and, for a single head, its text as generated: one queue.
    out: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    sink = None if body.model == COUNCIL_ID else TextSink(lambda d: out.put_nowait(("text", d)))
    with streaming_to(sink):
        task = asyncio.create_task(
            _decide(body, request, conversation, options, lambda e: out.put_nowait(("event", e)))
        )

    def piece(kind: str, item: Any) -> str:
        if kind == "text":
            return _sse(chunk({"content": item}))
        return _sse({**chunk({}), "choices": [], "council_event": item})  # progress, no choices

    try:
        while not task.done():
            getter = asyncio.ensure_future(out.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield piece(*getter.result())
            else:
                getter.cancel()
        while not out.empty():
            yield piece(*out.get_nowait())
        v = task.result()
    except CouncilError as exc:  # headers are sent: report in-band, as OpenAI does
        yield _sse(error_body(exc.message, exc.error_type, exc.param, exc.code))
        yield "data: [DONE]\n\n"
        return
    finally:
        if not task.done():  # the client went away: do not leave the ballot running orphaned
            task.cancel()
    sent = sink.text if sink is not None else ""
    rest = v.answer[len(sent) :] if v.answer.startswith(sent) else ""
    for i in range(0, len(rest), STREAM_PIECE):  # a decided answer, or what a stream left
        yield _sse(chunk({"content": rest[i : i + STREAM_PIECE]}))
    # The answer is decided before it streams, so its token log-probabilities come at once.
    yield _sse(chunk({}, "stop", _logprobs(body, v), council=meta_of(v)))
    if body.stream_options and body.stream_options.include_usage:
        yield _sse({**chunk({}), "choices": [], "usage": _usage(v)})
    yield "data: [DONE]\n\n"
