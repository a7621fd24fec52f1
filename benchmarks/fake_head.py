"""An OpenAI-compatible chat server that takes a fixed time to answer "4" (benchmarks/replicas.py).

python benchmarks/fake_head.py PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any


def fake_head(port: int, delay_ms: float) -> None:
    """An OpenAI-compatible chat server that takes delay_ms to answer "4" (its own process)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(delay_ms / 1000)
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "4"}}  # fmt: skip
        usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [choice], "usage": usage}  # fmt: skip

    # keep-alive longer than the clients': an idle connection closed under a reused one is a
    # connection error that is no part of the service
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                timeout_keep_alive=120, backlog=4096)  # fmt: skip


if __name__ == "__main__":
    fake_head(int(sys.argv[1]), float(sys.argv[2]))
