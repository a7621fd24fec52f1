"""Council: every answer is a vote of several model heads.

    from council import Council, load_settings
    council = Council(load_settings())
    verdict = await council.ask("What is 7 * 8?", strategy="vote")

The seed API is here too: `get_ensemble().ensemble_query(messages, strategy, num_models,
task_type)` returns the verdict as a dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from council.council import Council
    from council.types import Verdict

_LAZY = {
    "Council": "council.council",
    "Settings": "council.config",
    "load_settings": "council.config",
    "HeadSpec": "council.config",
    "Verdict": "council.types",
    "Vote": "council.types",
    "Completion": "council.types",
    "Message": "council.types",
    "ToolCall": "council.types",
    "get_ensemble": "council.compat",
    "EnsembleStrategy": "council.compat",
}


def __getattr__(name: str) -> Any:
    # Lazy: `council --help` and the server start must not pay for torch at import time.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'council' has no attribute {name!r}")


def ask(prompt: str, **kwargs: Any) -> Verdict:
    """Synchronous one-shot: build a Council from settings, ask, close."""
    import asyncio

    from council.config import load_settings
    from council.council import Council

    async def run() -> Verdict:
        council: Council = Council(load_settings())
        try:
            return await council.ask(prompt, **kwargs)
        finally:
            await council.close()

    return asyncio.run(run())


__all__ = ["Council", "EnsembleStrategy", "Verdict", "ask", "get_ensemble", "load_settings"]
