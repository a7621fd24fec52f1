"""The quality gate: score a rewrite from real signals, refuse duplicates and hold-out leaks.

Strong signals, when present, decide: a verifier/tool check (weight 3), agreement between
independent rewrites (weight 1), a judge's score (weight 1). The seed's heuristics (length
gain, reasoning markers, code blocks) only nudge the score (weight 0.25).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from council.ballot.normalize import extract_answer
from council.learning import ledger
from council.learning.ledger import content_hash, normalise
from council.memory.store import Store

REASONING_WORDS = ("because", "therefore", "step", "first", "so ", "thus", "since")


@dataclass
class Signals:
    verifier: bool | None = None
    correction: bool | None = None  # the final answer agrees with the user's correction
    agreement: float | None = None
    judge: float | None = None  # 0..1
    heuristic: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heuristic_score(bad: str, good: str) -> float:
    """The seed's _assess_quality: a weak prior, never decisive on its own."""
    score = 0.5
    if len(good) > len(bad) * 1.5:
        score += 0.2
    if any(w in good.lower() for w in REASONING_WORDS):
        score += 0.15
    if "```" in good and "```" not in bad:
        score += 0.1
    return min(score, 1.0)


def quality_score(s: Signals) -> float:
    """Weighted mean of the available signals in [0, 1]."""
    parts: list[tuple[float, float]] = [(s.heuristic, 0.25)]
    if s.verifier is not None:
        parts.append((1.0 if s.verifier else 0.0, 3.0))
    if s.correction is not None:  # the user's own answer: as strong as a verifier
        parts.append((1.0 if s.correction else 0.0, 3.0))
    if s.agreement is not None:
        parts.append((s.agreement, 1.0))
    if s.judge is not None:
        parts.append((s.judge, 1.0))
    if len(parts) == 1:  # heuristics alone never pass a 0.7 gate: cap them below it
        return min(s.heuristic, 0.6)
    total = sum(w for _, w in parts)
    return round(sum(v * w for v, w in parts) / total, 4)


def agrees(answer: str, correction: str) -> bool:
    """Whether two answers are the same once normalised as the ballot does ("0.5" = "1/2",
    "(B)" = "B", "The Canberra." = "canberra"); prose is compared word for word."""
    x, y = extract_answer(answer), extract_answer(correction)
    return (x.key or normalise(x.display)) == (y.key or normalise(y.display))


def numbers(text: str) -> list[str]:
    """The numbers in a text, in order (a near-duplicate must carry the same ones)."""
    return re.findall(r"\d+(?:\.\d+)?", text)


class Gate:
    """Admits examples that are new (exact and near duplicates refused) and do not leak."""

    def __init__(self, store: Store, near_duplicate: float = 0.95, leak_similarity: float = 0.92):
        self.store = store
        self.near_duplicate = near_duplicate
        self.leak_similarity = leak_similarity

    def _closest(
        self, rows_of: Callable[[Store], list[Any]], vector: np.ndarray | None,
        threshold: float, text: str,
    ) -> float | None:  # fmt: skip
        """The highest cosine ≥ threshold among rows (vector, text) that carry the same
        numbers as `text` — "5 - 3" and "5 - 4" embed alike but are different questions."""
        if vector is None:
            return None
        rows = rows_of(self.store)
        if not rows:
            return None
        sims = np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows]) @ vector
        mine = numbers(text)
        hits = [float(sims[i]) for i in np.nonzero(sims >= threshold)[0]
                if numbers(rows[i][1]) == mine]  # fmt: skip
        return max(hits) if hits else None

    def leak(self, prompt: str, vector: np.ndarray | None) -> str | None:
        """Why this prompt is (close to) a hold-out item, or None."""
        h = content_hash(prompt)
        if ledger.holdout_has(self.store, h):
            return "matches a hold-out item exactly"
        sim = self._closest(ledger.holdout_vectors, vector, self.leak_similarity, prompt)
        return None if sim is None else f"near a hold-out item (cosine {sim:.3f})"

    def duplicate(self, digest: str, vector: np.ndarray | None, text: str = "",
                  replacing: int | None = None) -> str | None:  # fmt: skip
        """Why this is a duplicate of an example (but `replacing`, the one it replaces)."""
        if ledger.example_has(self.store, digest, replacing):
            return "exact duplicate of an existing example"
        rows = functools.partial(ledger.example_vectors, except_id=replacing)
        sim = self._closest(rows, vector, self.near_duplicate, text)
        return None if sim is None else f"near duplicate of an existing example (cosine {sim:.3f})"

    def admit(
        self, prompt: str, response: str, vector: np.ndarray | None, replacing: int | None = None
    ) -> tuple[bool, str | None]:
        """(admitted, reason refused); `vector` embeds prompt + response; `replacing`: the
        example this one replaces (a late correction), not a duplicate of it."""
        digest = content_hash(prompt, response)
        text = f"{prompt} {response}"
        reason = self.leak(prompt, vector) or self.duplicate(digest, vector, text, replacing)
        return reason is None, reason
