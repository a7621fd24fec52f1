"""The canonical form the vote compares: a call is its function's name plus its arguments as
JSON with sorted keys and normalised values; parallel calls are one proposal whose order does
not matter."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from council.types import ToolCall

DISPLAY_CHARS = 120


def normalise(value: Any) -> Any:
    """Equal meaning, equal JSON: 2.0 is 2, strings are NFC and trimmed, nested alike."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value).strip()
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    return value


def canonical_call(call: ToolCall) -> str:
    """`name(arguments)` with the arguments as canonical JSON (unreadable ones kept as sent)."""
    try:
        args = json.dumps(
            normalise(json.loads(call.arguments_json)),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        args = call.arguments_json.strip()
    return f"{call.name}({args})"


def proposal_key(calls: list[ToolCall]) -> str:
    """One key per proposal: its calls' canonical forms, sorted (order-insensitive)."""
    return "call:" + " & ".join(sorted(canonical_call(c) for c in calls))


def display(calls: list[ToolCall]) -> str:
    """A proposal as a human would quote it in the ballot."""
    text = " & ".join(sorted(canonical_call(c) for c in calls))
    return text if len(text) <= DISPLAY_CHARS else text[: DISPLAY_CHARS - 1] + "…"
