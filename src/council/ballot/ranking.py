"""Peer ranking for the `rank` strategy: anonymise the answers per reviewer, read each
reviewer's FINAL RANKING back robustly, aggregate by mean rank. Pure: randomness comes in as
a seeded `random.Random`, text in and dataclasses out."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from council.ballot.rank import LABELS, label


@dataclass(frozen=True)
class Layout:
    """What one reviewer is shown: other heads' answers as Response A, B, ... in its own order."""

    reviewer: int  # ballot index of the reviewer's own answer (never shown to it)
    order: tuple[int, ...]  # ballot indices shown as Response A, B, ...

    def labels(self) -> dict[str, int]:
        return {label(pos): i for pos, i in enumerate(self.order)}


def layout(reviewer: int, candidates: Sequence[int], rng: random.Random) -> Layout:
    """Every candidate except the reviewer's own, in an order shuffled for this reviewer, so
    no position (first shown is often ranked first) favours the same answer every time."""
    shown = [i for i in candidates if i != reviewer]
    rng.shuffle(shown)
    return Layout(reviewer, tuple(shown))


@dataclass(frozen=True)
class Review:
    """One reviewer's ranking as ballot positions, or why it could not be read."""

    reviewer: str  # head id
    ranks: dict[int, float] | None  # ballot index -> rank (1 = best); None when unreadable
    problem: str | None = None  # unreadable: why; readable: what was ignored or assumed
    shown: tuple[int, ...] = ()
    text: str = ""  # what the reviewer wrote (kept for the audit trail)

    @property
    def ok(self) -> bool:
        return self.ranks is not None


_MARKER = re.compile(r"FINAL\s+RANKING\s*[*_]*\s*[:：-]?", re.I)
_RESPONSE = re.compile(r"\bResponse\s+\(?([A-Z])\)?(?![A-Za-z])", re.I)
_NUMBERED = re.compile(r"^\s*\d+\s*[.):]\s*\**\s*(?:Response\s+)?\(?([A-Z])\)?(?![A-Za-z])", re.M)
_BARE = re.compile(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])")  # "C > A > B"


def parse_ranking(text: str, shown: Layout, reviewer: str) -> Review:
    """Read 'FINAL RANKING:' followed by '1. Response C', 'C > A > B' or 'Response C, ...'.

    Without the marker a numbered list of responses is still read. Labels that were not
    shown (the reviewer guessing at its own answer) are ignored and said so; responses the
    ranking leaves out share the remaining places (their mean), so a partial ranking counts
    without rewarding whichever response was shown first.
    """
    labels = shown.labels()
    found, problem = _labels_in(text, set(labels))
    if found is None:
        return Review(reviewer, None, problem, shown.order, text)
    ignored = [x for x in found if x not in labels]
    order = [labels[x] for x in dict.fromkeys(found) if x in labels]
    if not order:
        why = f"ranked none of the {len(labels)} responses shown"
        if ignored:
            why += f" (labels {', '.join(sorted(set(ignored)))} were not shown to it)"
        return Review(reviewer, None, why, shown.order, text)
    ranks = {i: float(pos + 1) for pos, i in enumerate(order)}
    rest = [i for i in shown.order if i not in ranks]
    if rest:  # the unranked share the places left: positions len(order)+1 .. len(shown)
        shared = (len(order) + 1 + len(shown.order)) / 2
        ranks.update(dict.fromkeys(rest, shared))
    notes = []
    if ignored:
        notes.append(f"ignored labels not shown to it: {', '.join(sorted(set(ignored)))}")
    if rest:
        notes.append(f"left {len(rest)} response(s) unranked (they share the last places)")
    return Review(reviewer, ranks, "; ".join(notes) or None, shown.order, text)


def _labels_in(text: str, shown: set[str]) -> tuple[list[str] | None, str | None]:
    markers = list(_MARKER.finditer(text or ""))
    if markers:
        section = text[markers[-1].end() :]
        got = [g.upper() for g in _RESPONSE.findall(section)]
        if not got:  # bare letters: only the first paragraph, only shown labels ("I think")
            first = section.strip().split("\n\n")[0]
            got = [g for g in _BARE.findall(first) if g in shown]
        if got:
            return got, None
        return None, "FINAL RANKING section names no response"
    numbered = _NUMBERED.findall(text or "")
    if numbered:
        return [g.upper() for g in numbered], None
    return None, "no FINAL RANKING section and no numbered list of responses"


@dataclass
class Standing:
    """One answer's place in the aggregate: mean rank over the reviews that ranked it."""

    index: int
    mean_rank: float | None  # None: nobody could rank it
    reviews: int
    ranks: list[float] = field(default_factory=list)


def aggregate(candidates: Sequence[int], reviews: Sequence[Review]) -> list[Standing]:
    """Standings best first: lower mean rank wins; unranked answers go last, ties keep the
    ballot order (which the caller sorts by vote weight when it wants that tie-break)."""
    table = {i: Standing(i, None, 0) for i in candidates}
    for r in reviews:
        for i, rank in (r.ranks or {}).items():
            if i in table:
                table[i].ranks.append(rank)
    for s in table.values():
        s.reviews = len(s.ranks)
        s.mean_rank = sum(s.ranks) / len(s.ranks) if s.ranks else None
    position = {i: k for k, i in enumerate(candidates)}
    return sorted(
        table.values(),
        key=lambda s: (s.mean_rank is None, s.mean_rank or 0.0, position[s.index]),
    )


def render_for_review(answers: Sequence[str], shown: Layout) -> str:
    """The anonymised block a reviewer reads."""
    return "\n\n".join(
        f"Response {label(pos)}:\n{answers[i].strip()}" for pos, i in enumerate(shown.order)
    )


__all__ = [
    "LABELS",
    "Layout",
    "Review",
    "Standing",
    "aggregate",
    "layout",
    "parse_ranking",
    "render_for_review",
]
