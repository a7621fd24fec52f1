"""The seed endpoints: /vote and /chat (the ballot), /hybrid (one fast head), /health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from council.council import Council
from council.errors import CouncilError
from council.exchange import Conversation
from council.heads.streaming import TextSink, streaming_to
from council.server.auth import memory_options
from council.server.errors import error_body
from council.server.schemas import HybridRequest, VoteRequest, meta_of
from council.server.sse import DONE, HEADERS, pump, sse
from council.types import Verdict

router = APIRouter()


def council_of(request: Request) -> Council:
    council: Council = request.app.state.council
    return council


def reply(verdict: Verdict) -> dict[str, Any]:
    return {"answer": verdict.answer, "meta": meta_of(verdict)}


@router.post("/vote", tags=["council"])
async def vote(body: VoteRequest, request: Request) -> dict[str, Any]:
    """Every enabled head answers; the strategy decides. Returns the answer and the ballot."""
    options = await memory_options(request, body)
    verdict = await council_of(request).ask(
        body.prompt,
        strategy=body.strategy,
        num_models=body.num_models,
        task_type=body.task_type,
        hints=body.route_hints(),
        **options,
    )
    return reply(verdict)


@router.post("/chat", tags=["council"])
async def chat(body: VoteRequest, request: Request) -> dict[str, Any]:
    """Alias of /vote: every chat message is a council decision."""
    return await vote(body, request)


@router.post("/hybrid", tags=["council"], response_model=None)
async def hybrid(body: HybridRequest, request: Request) -> dict[str, Any] | StreamingResponse:
    """The low-latency path: the single fastest head, same response shape. `stream: true`
    sends its text as generated ({"delta": ...} events), then the reply and [DONE]."""
    options = await memory_options(request, body)
    council = council_of(request)
    if not body.stream:
        return reply(await council.ask_single(body.prompt, **options))
    conversation = council.check(body.prompt)  # a bad request is a 4xx before the stream
    events = _hybrid_stream(council, conversation, options)
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


async def _hybrid_stream(
    council: Council, conversation: Conversation, options: dict[str, Any]
) -> AsyncIterator[str]:
    out: asyncio.Queue[str] = asyncio.Queue()
    sink = TextSink(out.put_nowait)  # a local head fills it token by token; others leave it
    with streaming_to(sink):
        task = asyncio.create_task(council.ask_single(conversation, **options))
    try:
        async for delta in pump(task, out):
            yield sse({"delta": delta})
        v = task.result()
    except CouncilError as exc:  # headers are sent: report in-band
        yield sse(error_body(exc.message, exc.error_type, exc.param, exc.code))
        yield DONE
        return
    rest = v.answer[len(sink.text) :] if v.answer.startswith(sink.text) else ""
    if rest:  # a head that cannot stream: its whole answer at once
        yield sse({"delta": rest})
    yield sse(reply(v))
    yield DONE


@router.get("/health", tags=["ops"])
async def health(request: Request) -> dict[str, Any]:
    """Whether the heads are loaded, and each head's state."""
    council = council_of(request)
    heads = [
        {
            "id": h.id,
            "kind": h.spec.kind,
            "model": h.spec.model,
            "enabled": h.spec.enabled,
            "status": h.state.status,
            "detail": h.state.detail,
            "calls": h.state.calls,
            "errors": h.state.errors,
            "last_error": h.state.last_error,
            "last_latency_ms": h.state.last_latency_ms,
        }
        for h in council.heads.values()
    ]
    enabled = [h for h in heads if h["enabled"]]
    ready = [h for h in enabled if h["status"] == "ready"]
    status = "ok" if enabled and len(ready) == len(enabled) else ("degraded" if ready else "down")
    models = []
    if council.ctx is not None:
        models = [
            {
                "folder": str(m.folder),
                "loaded": m.loaded,
                "weight_dtype": m.serving_dtype,
                "batches": m.batches,
                "rows": m.rows_done,
                "running": m.queue.running,
                "steps": m.steps,
                "prefill_tokens": m.prefill_tokens,
                "prefix_cache": m.prefixes.counters(),
            }
            for m in council.ctx.pool.models.values()
        ]
    return {"status": status, "heads": heads, "models": models}
