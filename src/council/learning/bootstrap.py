"""Bootstrap data: a local instruction dataset (JSONL, or an HF dataset saved to disk) in any of
the common schemas, normalised into examples for a foundational adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from council.errors import BootstrapError

ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
         "assistant": "assistant", "bot": "assistant"}  # fmt: skip


def normalise(rec: dict[str, Any]) -> tuple[list[dict[str, str]], str] | None:
    """(prompt messages, answer) from ShareGPT (SlimOrca/OpenHermes), OpenAI messages,
    Alpaca (instruction/input/output), prompt/response or question/answer records."""
    turns = rec.get("conversations") or rec.get("messages")
    if isinstance(turns, list) and turns:
        msgs = []
        for t in turns:
            role = ROLES.get(str(t.get("from") or t.get("role") or "").lower())
            text = t.get("value") if "value" in t else t.get("content")
            if role is None or not isinstance(text, str):
                return None
            msgs.append({"role": role, "content": text})
        if msgs[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in msgs):
            return None
        return msgs[:-1], msgs[-1]["content"]
    for q, a in (("instruction", "output"), ("prompt", "response"), ("question", "answer"),
                 ("prompt", "completion")):  # fmt: skip
        if isinstance(rec.get(q), str) and isinstance(rec.get(a), str):
            prompt = rec[q] + (f"\n\n{rec['input']}" if rec.get("input") else "")
            system = rec.get("system_prompt") or rec.get("system")
            msgs = [{"role": "system", "content": system}] if system else []
            return [*msgs, {"role": "user", "content": prompt}], rec[a]
    return None


def records(path: Path) -> Iterator[dict[str, Any]]:
    """JSONL/JSON lines, or a `datasets` folder written by save_to_disk."""
    if path.is_dir():
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
        if hasattr(ds, "keys"):  # a DatasetDict: take its train split (or the first)
            ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
        yield from ds
        return
    if not path.exists():
        raise BootstrapError(f"{path} does not exist; pass a JSONL file or a saved dataset folder.")
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BootstrapError(
                        f"{path}:{n} is not JSON ({exc.msg}); one record per line."
                    ) from None
