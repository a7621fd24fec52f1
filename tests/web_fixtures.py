"""Helpers for the web page tests: a real Chromium (Debian's, never a downloaded one), an
OpenAI-compatible echo server to play a remote head, and servers run in a thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from council.config import HeadSpec
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
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="web tests need Debian's Chromium at /usr/bin/chromium: "
    "run `apt-get install -y chromium` as root (make install does it when it can)",
)

# What the echo head adds to every answer: markdown the page must render (a code block) and
# a link the sanitizer must neuter.
ECHO_TAIL = '\n\n```python\nprint("hi")\n```\n\n[a link](javascript:window.__pwned=1)'


def echo_app() -> FastAPI:
    """An OpenAI-compatible endpoint whose answer repeats the last user message."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        last = next((m for m in reversed(body["messages"]) if m["role"] == "user"), {})
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


class ThreadServer:
    """A uvicorn server for an in-process app on a loopback port, in a daemon thread."""

    def __init__(self, app: FastAPI, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"in-process server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def web_heads(model: Path, echo_url: str) -> list[HeadSpec]:
    """Two tiny local heads, the echo head (it wins `weighted`) and a head nobody serves."""
    local = dict(kind="local", model=str(model), max_tokens=12, quality=2.0)
    return [
        HeadSpec(id="h0", temperature=0.0, seed=1, speed=8.0, **local),  # type: ignore[arg-type]
        HeadSpec(id="h1", temperature=0.8, seed=2, speed=7.0, **local),  # type: ignore[arg-type]
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
