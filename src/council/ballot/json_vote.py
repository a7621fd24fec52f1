"""Answers under a JSON schema: only those that parse and validate are votes, and they are
compared by canonical JSON (sorted keys, normalised numbers), so equal values share a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from council.ballot.normalize import Extracted
from council.structured.canonical import check_answer
from council.types import Completion


@dataclass(frozen=True)
class JsonBallot:
    extracted: list[Extracted | None]  # a valid answer's canonical JSON; None: no vote
    invalid: list[str | None]  # why an answer was not counted (None: valid, failed or abstained)


def extract_json(completions: list[Completion], schema: dict[str, Any]) -> JsonBallot:
    extracted: list[Extracted | None] = []
    invalid: list[str | None] = []
    for c in completions:
        checked = check_answer(c.text, schema) if c.answered else None
        if checked is None or checked.canonical is None:
            extracted.append(None)
            invalid.append(checked.invalid if checked is not None else None)
        else:
            extracted.append(Extracted("json", f"json:{checked.canonical}", checked.canonical))
            invalid.append(None)
    return JsonBallot(extracted, invalid)


def no_valid_answer(completions: list[Completion], invalid: list[str | None]) -> str:
    """The NoValidAnswerError message: each head's reason, and what to do."""
    why = "; ".join(
        f"{c.head}: {reason or c.error or 'no answer'}"
        for c, reason in zip(completions, invalid, strict=True)
    )
    return (
        f"No answer was valid JSON under the requested schema ({why}). Raise max_tokens if "
        "answers were cut short, simplify the schema, or ask heads that decode under it "
        "(local heads do; openai heads need a server that supports response_format)."
    )
