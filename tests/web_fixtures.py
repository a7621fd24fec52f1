"""Helpers for the web page tests: a real Chromium (Debian's, never a downloaded one), an
OpenAI-compatible echo server to play a remote head, and servers run in a thread."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from council.config import HeadSpec
from council.council import Council
from council.server.errors import install_error_handlers
from council.server.web_api import install_web
from tests.helpers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What the echo head adds to every answer: markdown the page must render (a code block) and
# a link the sanitizer must neuter.
ECHO_TAIL = '\n\n```python\nprint("hi")\n```\n\n[a link](javascript:window.__pwned=1)'


def echo_app() -> FastAPI:
    """An OpenAI-compatible endpoint whose answer repeats the last user message."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        user = [m for m in body["messages"] if m["role"] == "user"]
        last: dict[str, Any] = user[-1] if user else {}
        text = f"Echo: {last.get('content', '')}{ECHO_TAIL}"
        return {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "echo"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }

    return app


def web_heads(model: Path, echo_url: str) -> list[HeadSpec]:
    """Two tiny local heads, the echo head (it wins `weighted`) and a head nobody serves."""
    local = dict(kind="local", model=str(model), max_tokens=12, quality=2.0)
    return [
        HeadSpec(id="h0", temperature=0.0, seed=1, speed=8.0, **local),
        HeadSpec(id="h1", temperature=0.8, seed=2, speed=7.0, **local),
        HeadSpec(id="echo", kind="openai", model="echo", base_url=f"{echo_url}/v1", quality=9.0),
        HeadSpec(
            id="dead",
            kind="openai",
            model="gone",
            base_url=f"http://127.0.0.1:{free_port()}/v1",
            timeout_s=5,
            quality=1.0,
            speed=1.0,
        ),
    ]


def _sse(obj: dict[str, Any] | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def canned_stream_app(council: Council) -> FastAPI:
    """The page's routes plus a scripted /v1 stream, to pin what the page does with each kind
    of chunk: progress events then the answer; "fail": an in-band error after the headers (as
    OpenAI reports one); "cut": a stream that ends without [DONE]."""
    app = FastAPI()
    app.state.council = council  # /api/strategies reads the heads from it
    install_error_handlers(app)
    install_web(app)

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> StreamingResponse:
        last = body["messages"][-1]["content"]
        base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "council"}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _sse({**base, "choices": [choice], **extra})

        def event(head: str, ms: float, error: str | None) -> str:
            ev = {"event": "head_done", "head": head, "latency_ms": ms, "error": error}
            return _sse({**base, "choices": [], "council_event": ev})

        async def stream() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            if last == "cut":
                return
            if last == "fail":
                err = {"message": "All 2 heads failed (s0: boom; s1: boom).", "type": "x"}
                yield _sse({"error": err})
                yield _sse("[DONE]")
                return
            yield event("s0", 12.0, None)
            yield event("s1", 30.0, "timed out after 1s")
            await asyncio.sleep(1.5)  # long enough for a test to see the progress
            for piece in ("**Four**", "."):
                yield chunk({"content": piece})
            votes = [
                {"head": "s0", "answer": "**Four**.", "cluster": 0, "weight": 1.0,
                 "latency_ms": 12.0, "error": None, "won": True},
                {"head": "s1", "answer": "", "cluster": None, "weight": 0.0,
                 "latency_ms": 30.0, "error": "timed out after 1s", "won": False},
            ]  # fmt: skip
            meta = {"votes": votes, "confidence": 1.0, "strategy": "vote", "latency_ms": 42.0,
                    "cost_usd": 0.0, "exchange_id": None}  # fmt: skip
            yield chunk({}, "stop", council=meta)
            yield _sse("[DONE]")

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
