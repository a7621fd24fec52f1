"""The constant-answer baseline of a gate's item set: what always giving the commonest gold
answer would score there, and how often the challenger gives its own commonest answer.

A challenger can gain on the gate by learning a family's prior rather than its skill: a
letter-counting adapter that says "1" to most questions, where most gold answers are "1",
rightly beats a champion that answered worse, but no constant answer is a skill. The report
carries both figures, and a reason line when the challenger gives the commonest gold answer to
most items and scores within 5 pp of that constant answer, so whoever reads
`council adapters list` can tell.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from council.ballot.normalize import extract_answer
from council.learning.traffic import final_answer

MOSTLY = 0.5  # a challenger giving one answer to at least this share of items ...
CLOSE = 0.05  # ... and scoring within this much of the constant answer is flagged


def answer_key(text: str) -> str | None:
    """The ballot's comparable key of a reply's answer part (None: nothing to compare)."""
    return extract_answer(final_answer(text)).key if text.strip() else None


def commonest(keys: list[str | None], n: int) -> dict[str, Any] | None:
    """The commonest non-empty key and its share of n items."""
    counts = Counter(k for k in keys if k)
    if not counts or not n:
        return None
    key, count = counts.most_common(1)[0]
    return {"answer": key, "share": round(count / n, 4)}


def constant_baseline(golds: list[str], answers: list[str]) -> dict[str, Any]:
    """For one item set: the commonest gold answer's share (what always giving it scores; a
    lower bound where some items have no gold, as verifier-scored traffic has none) and the
    challenger's commonest answer with its share."""
    n = len(golds)
    return {
        "gold": commonest([answer_key(g) for g in golds], n),
        "challenger": commonest([answer_key(a) for a in answers], n),
    }


def prior_reason(name: str, baseline: dict[str, Any], accuracy: float) -> str | None:
    """A reason line when the challenger mostly gives the commonest gold answer and scores no
    more than CLOSE above what that constant answer scores."""
    gold, said = baseline.get("gold"), baseline.get("challenger")
    if not gold or not said or said["answer"] != gold["answer"] or said["share"] < MOSTLY:
        return None
    if accuracy > gold["share"] + CLOSE:
        return None
    return (
        f"{name}: the challenger answers {said['answer']!r} to {said['share']:.0%} of the "
        f"items; always answering {gold['answer']!r} would score {gold['share']:.0%} here, "
        f"against its {accuracy:.0%}: its gain may be the family's commonest answer rather "
        "than skill"
    )
