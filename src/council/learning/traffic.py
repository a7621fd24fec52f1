"""The gauntlet's traffic part: users' held-out questions (learning/heldout.py), re-asked.

A question is scored only where its answer can be checked: by the verifier when the question
is checkable arithmetic, else by matching the user's correction (normalised as the ballot
does). The rest go to a blind pairwise judge (learning/judge.py) when there is one, and are
skipped and counted when there is none.
"""

from __future__ import annotations

from typing import Any

from council.learning.ledger import heldout_rows
from council.learning.quality import agrees
from council.verify import verify_answer

TRAFFIC = "traffic"


def final_answer(text: str) -> str:
    """The answer part of a reply (after the last ANSWER:, when the model wrote one)."""
    return text.split("ANSWER:")[-1].strip() if "ANSWER:" in text else text


def scorable(question: str, correction: str | None) -> bool:
    return correction is not None or verify_answer(question, "0") is not None


def heldout_questions(store: Any, n: int) -> tuple[list[tuple[str, str]], int]:
    """Up to n of the newest held-out (question, correction or "") pairs that can be scored,
    and how many held-out questions were skipped as unscorable."""
    rows = [(r["question"], r["correction"]) for r in reversed(heldout_rows(store))]
    kept = [(q, c or "") for q, c in rows if scorable(q, c)]
    return kept[:n], len(rows) - len(kept)


def unscorable_questions(store: Any, n: int) -> list[str]:
    """Up to n of the newest held-out questions nothing but a judge can score."""
    rows = [(r["question"], r["correction"]) for r in reversed(heldout_rows(store))]
    return [q for q, c in rows if not scorable(q, c)][:n]


def score_traffic(question: str, correction: str, text: str) -> bool:
    """Right by the verifier when it applies, else by agreeing with the correction."""
    final = final_answer(text)
    checked = verify_answer(question, final)
    if checked is not None:
        return checked
    return bool(correction) and agrees(final, correction)
