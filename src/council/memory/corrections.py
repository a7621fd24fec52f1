"""Corrections: what a 👎 says the answer should have been (feedback.correction).

One rule for the API, the CLI and the store: a correction goes with a bad rating, says
something, and fits in CORRECTION_MAX_CHARS. Learning treats it as gold (learning/harvest.py).
"""

from __future__ import annotations

from council.errors import InvalidRequestError

CORRECTION_MAX_CHARS = 4000


def check_correction(rating: int, correction: str | None) -> str | None:
    """The correction to store (stripped), or None; raises when it cannot go with `rating`."""
    if correction is None:
        return None
    text = correction.strip()
    if rating != -1:
        raise InvalidRequestError(
            "A correction goes with a bad rating: send rating -1 (`council feedback ID down "
            "--correction ...`) with it, or leave the correction out.",
            param="correction",
        )
    if not text:
        raise InvalidRequestError(
            "The correction is empty: write what the answer should have been, or leave it out.",
            param="correction",
        )
    if len(text) > CORRECTION_MAX_CHARS:
        raise InvalidRequestError(
            f"The correction has {len(text)} characters; keep it under {CORRECTION_MAX_CHARS} "
            "(the right answer, not the whole conversation).",
            param="correction",
        )
    return text
