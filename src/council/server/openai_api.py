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

from council.council import COUNCIL_ID
from council.errors import CouncilError
from council.heads.streaming import TextSink, streaming_to
from council.server.chat import Checked, check_chat, decide
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
    """Chat completions; `stream: true` sends SSE chunks ending in [DONE]. With `tools`, the
    heads propose calls and the majority call is the reply's message.tool_calls."""
    checked = await check_chat(body, request)  # once, so a bad request is a 4xx before a stream
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            _stream(body, request, checked, cid, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    v = await decide(body, request, checked)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": _message(v),
                "finish_reason": "tool_calls" if v.tool_calls else "stop",
                "logprobs": _logprobs(body, v),
            }
        ],
        "usage": _usage(v),
        "exchange_id": v.exchange_id,
        "council": meta_of(v),
    }


def _message(v: Verdict) -> dict[str, Any]:
    """The reply's message: the answer, or the calls the council decided (content null)."""
    if not v.tool_calls:
        return {"role": "assistant", "content": v.answer}
    calls = [c.to_openai() for c in v.tool_calls]
    return {"role": "assistant", "content": v.answer or None, "tool_calls": calls}


def _call_deltas(v: Verdict) -> list[dict[str, Any]]:
    """The decided calls as OpenAI streams them: per call, its id and name, then the
    arguments in pieces (the SDK joins the pieces by index)."""
    deltas = []
    for i, c in enumerate(v.tool_calls or []):
        head = {"index": i, "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": ""}}  # fmt: skip
        deltas.append({"tool_calls": [head]})
        args = c.arguments_json
        for k in range(0, len(args), STREAM_PIECE):
            piece = {"index": i, "function": {"arguments": args[k : k + STREAM_PIECE]}}
            deltas.append({"tool_calls": [piece]})
    return deltas


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


async def _stream(
    body: ChatCompletionRequest,
    request: Request,
    checked: Checked,
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
            decide(body, request, checked, lambda e: out.put_nowait(("event", e)))
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
    for delta in _call_deltas(v):
        yield _sse(chunk(delta))
    # The answer is decided before it streams, so its token log-probabilities come at once.
    finish = "tool_calls" if v.tool_calls else "stop"
    yield _sse(chunk({}, finish, _logprobs(body, v), council=meta_of(v)))
    if body.stream_options and body.stream_options.include_usage:
        yield _sse({**chunk({}), "choices": [], "usage": _usage(v)})
    yield "data: [DONE]\n\n"
