"""Answers as JSON values: parsed, validated against the schema, and written canonically
(sorted keys, normalised numbers) so the vote groups equal values however they were spelt."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from council.structured.grammar import effective


def normalise(value: Any) -> Any:
    """Integral floats become ints (1.0 -> 1, -0.0 -> 0); containers recursively."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, no spaces, normalised numbers."""
    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def validate(value: Any, schema: dict[str, Any]) -> str | None:
    """Why `value` does not satisfy the schema (`{}`: any JSON object), or None when it does."""
    error = next(iter(Draft202012Validator(effective(schema)).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


@dataclass(frozen=True)
class Checked:
    """An answer's text judged against a schema: its canonical JSON, or why it is invalid."""

    canonical: str | None
    invalid: str | None


def check_answer(text: str, schema: dict[str, Any]) -> Checked:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return Checked(None, f"not JSON: {exc}")
    except RecursionError:
        return Checked(None, "JSON nested too deeply to check")
    try:
        why = validate(value, schema)
        canonical = canonical_json(value)
    except RecursionError:
        return Checked(None, "JSON nested too deeply to check")
    return Checked(None, why) if why is not None else Checked(canonical, None)
