"""When a ballot has nothing to decide on: every head abstained (422), every head timed out (503,
come back later), or every head failed (502); and what asking one head alone raises."""

from __future__ import annotations

from council.errors import AbstainedError, HeadsTimedOutError, NoAnswerError, NoValidAnswerError
from council.types import Completion


def single_failure(head: str, exc: NoAnswerError, calls: list[Completion]) -> NoAnswerError:
    """What asking one head alone raises: its abstention as it is, else its own error."""
    if isinstance(exc, AbstainedError | NoValidAnswerError):
        return exc
    return NoAnswerError(f"Head {head} failed: {calls[0].error if calls else exc}")


def require_answer(completions: list[Completion]) -> None:
    if completions and all(c.abstained for c in completions):
        details = "; ".join(f"{c.head}: {c.tool}" for c in completions)
        raise AbstainedError(
            f"Every head abstained ({details}). Ask a question one of these tools applies "
            "to, or add a model head (kind = 'local' or 'openai') to the council."
        )
    if not any(c.answered for c in completions):
        asked = [c for c in completions if not c.abstained]
        if asked and all((c.error or "").startswith("timed out") for c in asked):
            raise HeadsTimedOutError(
                f"Every head timed out ({asked[0].error}): the server is busy. Retry after the "
                "Retry-After seconds, or raise the heads' `timeout_s`."
            )
        details = "; ".join(f"{c.head}: {c.error or 'cannot answer'}" for c in completions)
        raise NoAnswerError(
            f"All {len(completions)} heads failed or abstained ({details}). "
            "Check `council heads` or GET /health for each head's state."
        )
