"""Judging: label answers anonymously and read a judge's pick back robustly."""

from __future__ import annotations

import re
import string

LABELS = string.ascii_uppercase


def label(i: int) -> str:
    return LABELS[i] if i < len(LABELS) else f"A{i}"


def render_candidates(answers: list[str]) -> str:
    """'Response A: ...' blocks, in the order given (callers shuffle if they want)."""
    return "\n\n".join(f"Response {label(i)}:\n{a}" for i, a in enumerate(answers))


_BEST = re.compile(r"BEST\s*(?:RESPONSE)?\s*[:=\-]?\s*\**\s*\(?(?:Response\s+)?([A-Z])\b", re.I)
_PHRASE = re.compile(r"Response\s+([A-Z])\b[^.\n]*\b(?:is|was)\s+(?:the\s+)?best", re.I)
_BARE = re.compile(r"^\W*(?:Response\s+)?([A-Z])\W*$", re.I)


def parse_best(text: str, n: int) -> int | None:
    """Index of the judge's pick among n candidates, or None when it cannot be read."""
    for pattern in (_BEST, _PHRASE):
        found = pattern.findall(text)
        if found:
            return _index(found[-1], n)
    m = _BARE.match(text.strip())
    return _index(m.group(1), n) if m else None


def _index(letter: str, n: int) -> int | None:
    i = LABELS.index(letter.upper())
    return i if i < n else None
