"""CloudRetry's rules, pure: which heads form each provider's ballot, in PROVIDER_PRIORITY
order, and when an answer is weak enough to hand to the next provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from council.config import HeadSpec


@dataclass(frozen=True)
class Tier:
    """One provider's heads: the ballot CloudRetry asks at this step."""

    provider: str
    heads: list[HeadSpec]

    @property
    def cloud(self) -> bool:
        return any(h.is_cloud for h in self.heads)


def provider_tiers(specs: Sequence[HeadSpec], priority: Sequence[str]) -> list[Tier]:
    """Heads grouped by provider, in priority order; providers with no head are skipped."""
    return [
        Tier(p, [s for s in specs if s.provider == p])
        for p in priority
        if any(s.provider == p for s in specs)
    ]


def escalation_reason(
    confidence: float,
    verified: bool | None,
    *,
    below: float,
    on_verifier: bool = True,
) -> str | None:
    """Why the answer should go to the next provider, or None to keep it.

    A verifier's False outranks agreement: five heads agreeing on a wrong sum are still wrong.
    """
    if on_verifier and verified is False:
        return "verifier rejected the answer"
    if confidence < below:
        return f"confidence {confidence:.2f} < {below:g}"
    return None
