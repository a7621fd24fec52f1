"""What a local head wrote, read as tool calls: chat templates' <tool_call> tags, a bare JSON
call ({"name", "arguments"}, or "parameters" as Llama writes it), a list of calls, or
{"tool_calls": [...]}. Anything else is a text answer (None)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from council.types import ToolCall

TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
FENCED = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_calls(text: str) -> list[ToolCall] | None:
    """The calls in a head's text, or None when it is not (only) calls."""
    stripped = text.strip()
    tagged = TAGGED.findall(stripped)
    if tagged:
        found = [_one(_load(t)) for t in tagged]
        return None if any(c is None for c in found) else [c for c in found if c is not None]
    fenced = FENCED.match(stripped)
    data = _load(fenced.group(1) if fenced else stripped)
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        data = data["tool_calls"]
    items = data if isinstance(data, list) else [data]
    calls = [_one(d) for d in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None


def _one(d: Any) -> ToolCall | None:
    if not isinstance(d, dict):
        return None
    if isinstance(d.get("function"), dict):  # OpenAI's own shape
        d = {**d["function"], "id": d.get("id")}
    name = d.get("name")
    args = d.get("arguments", d.get("parameters", {}))
    if not isinstance(name, str) or not name:
        return None
    if isinstance(args, str):  # some templates write the arguments as a JSON string
        loaded = _load(args)
        args = loaded if loaded is not None else args
    arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return ToolCall(id=d.get("id") or new_call_id(), name=name, arguments_json=arguments)


def prose(text: str) -> str:
    """What a head wrote besides its calls: the text around <tool_call> tags ("" for a bare
    JSON call)."""
    return TAGGED.sub("", text).strip() if TAGGED.search(text) else ""
