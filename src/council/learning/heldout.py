"""Held-out traffic: a stable share of users' questions that no adapter is ever trained on.

When a dataset version is frozen, each example whose question hashes below `share` (the hash
of the normalised question, so the same question falls on the same side in every version) goes
to that version's held-out split, and its hash is kept in the store (ledger.heldout_traffic).
From then on no version trains on that question, even one frozen with a smaller share, and
training reads of older versions skip it too (datasets.load_dataset). The gauntlet judges
challengers on these questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from council.learning.ledger import content_hash

# sha256 hex digits read as the position of a question in [0, 1): 60 bits is plenty.
_DIGITS = 15


def question_of(example: dict[str, Any]) -> str:
    """The question side of an example: its user turns (what a dataset line calls
    "instruction", and what gauntlet.trained_hashes hashes)."""
    return "\n".join(m["content"] for m in example["messages"] if m["role"] == "user")


def question_hash(example: dict[str, Any]) -> str:
    return content_hash(question_of(example))


def position(digest: str) -> float:
    """Where a question hash falls in [0, 1): uniform, and the same in every version."""
    return int(digest[:_DIGITS], 16) / 16**_DIGITS


@dataclass
class Split:
    train: list[dict[str, Any]] = field(default_factory=list)
    heldout: list[dict[str, Any]] = field(default_factory=list)
    earlier: int = 0  # held-out items that an earlier version had already kept out


def split(rows: list[dict[str, Any]], share: float, kept_out: set[str]) -> Split:
    """Rows into train and held-out: below `share`, or held out by an earlier version."""
    out = Split()
    for row in rows:
        digest = question_hash(row)
        if digest in kept_out:
            out.earlier += 1
            out.heldout.append(row)
        elif position(digest) < share:
            out.heldout.append(row)
        else:
            out.train.append(row)
    return out
