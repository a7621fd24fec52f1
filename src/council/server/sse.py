"""Server-sent events: one event's line, and a task's queued items as they arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")
DONE = "data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


async def pump(task: asyncio.Task[Any], out: asyncio.Queue[T]) -> AsyncIterator[T]:
    """What `task` puts on `out`, as it puts it, until the task ends (then the rest). The
    caller reads `task.result()` after; if the client leaves first, the task is cancelled
    so no work runs on for nobody."""
    try:
        while not task.done():
            getter = asyncio.ensure_future(out.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
        while not out.empty():
            yield out.get_nowait()
    finally:
        if not task.done():
            task.cancel()
