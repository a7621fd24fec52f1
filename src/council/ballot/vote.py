"""Group equal answers into clusters and weigh them: majority, weighted and consensus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from council.ballot.normalize import Extracted


@dataclass(frozen=True)
class Tally:
    """The outcome of counting: which cluster each answer joined and who won."""

    clusters: list[int | None]  # per answer; None for a failed head
    weights: dict[int, float]  # total weight per cluster
    winner: int | None
    winner_index: int | None  # the answer that speaks for the winning cluster
    confidence: float  # share of the answered weight behind the winner

    @property
    def unanimous(self) -> bool:
        return len(self.weights) == 1

    @property
    def split(self) -> bool:
        """True when two or more clusters share the top weight."""
        if self.winner is None:
            return False
        top = self.weights[self.winner]
        return sum(1 for w in self.weights.values() if abs(w - top) < 1e-9) > 1


def cluster_answers(
    extracted: Sequence[Extracted | None],
    vectors: np.ndarray | None = None,
    threshold: float = 0.85,
) -> list[int | None]:
    """Cluster ids per answer. Equal keys share a cluster; free text joins by cosine similarity.

    `extracted[i] is None` marks a failed head (no cluster). `vectors` are unit embeddings
    aligned with `extracted`; without them free text clusters only on identical text.
    """
    clusters: list[int | None] = [None] * len(extracted)
    by_key: dict[str, int] = {}
    text_members: dict[int, list[int]] = {}
    next_id = 0
    for i, ex in enumerate(extracted):
        if ex is None:
            continue
        key = (
            ex.key
            if ex.key is not None
            else (None if vectors is not None else f"text:{ex.display}")
        )
        if key is not None:
            if key not in by_key:
                by_key[key], next_id = next_id, next_id + 1
            clusters[i] = by_key[key]
            continue
        assert vectors is not None
        best, best_sim = None, threshold
        for cid, members in text_members.items():
            sim = float(np.mean([vectors[i] @ vectors[j] for j in members]))  # average linkage
            if sim >= best_sim:
                best, best_sim = cid, sim
        if best is None:
            best, next_id = next_id, next_id + 1
            text_members[best] = []
        text_members[best].append(i)
        clusters[i] = best
    return clusters


def tally(
    clusters: Sequence[int | None],
    weights: Sequence[float],
    vectors: np.ndarray | None = None,
    trust: Sequence[float] | None = None,
) -> Tally:
    """Weigh clusters; ties go to the cluster whose most trusted member is trusted most (by
    `trust`, per answer: the heads' learned weights; default: the weights), then earliest."""
    trust = weights if trust is None else trust
    totals: dict[int, float] = {}
    for c, w in zip(clusters, weights, strict=True):
        if c is not None:
            totals[c] = totals.get(c, 0.0) + w
    if not totals:
        return Tally(list(clusters), {}, None, None, 0.0)

    def rank(c: int) -> tuple[float, float, int]:
        members = [i for i, ci in enumerate(clusters) if ci == c]
        return (totals[c], max(trust[i] for i in members), -members[0])

    winner = max(totals, key=rank)
    answered = sum(totals.values())
    confidence = totals[winner] / answered if answered > 0 else 0.0
    index = representative(clusters, weights, winner, vectors)
    return Tally(list(clusters), totals, winner, index, confidence)


def representative(
    clusters: Sequence[int | None],
    weights: Sequence[float],
    cluster: int,
    vectors: np.ndarray | None = None,
) -> int:
    """The member that best speaks for a cluster: heaviest, then most central, then first."""
    members = [i for i, c in enumerate(clusters) if c == cluster]

    def centrality(i: int) -> float:
        if vectors is None or len(members) < 2:
            return 0.0
        return float(np.mean([vectors[i] @ vectors[j] for j in members if j != i]))

    return max(members, key=lambda i: (weights[i], centrality(i), -i))


# A reader's span copied from text recalled for this question, with at least this cosine
# between its sentence and the question. Below it the match is loose enough (0.45-0.6: a
# sentence on the topic, not the answer) that clustered heads keep their say.
GROUNDED_MIN = 0.6


@dataclass(frozen=True)
class Grounded:
    """An answer that outranked the count (a grounded span, an exact tool's result): who
    said it, and over whom."""

    tally: Tally
    index: int
    outvoted: int  # answers in the cluster that would have won


def grounded_override(
    tally: Tally,
    texts: Sequence[str],
    grounding: Sequence[float | None],
    weights: Sequence[float],
) -> Grounded | None:
    """Let an exact span read from recalled text win over a cluster that does not say it.

    Small models given a recalled fact often answer around it ("I don't have that
    information", a number it does not state) and agree with each other doing so. When a
    tool answered with a span copied from the recalled text (`grounding` >= GROUNDED_MIN)
    and no answer in the winning cluster contains that span, the span wins; its confidence
    is the share of answered weight whose text contains it. A cluster that says the span
    (in whatever words) keeps its win.
    """
    if tally.winner is None:
        return None
    scored = [
        i
        for i, g in enumerate(grounding)
        if g is not None and g >= GROUNDED_MIN and tally.clusters[i] is not None
    ]
    if not scored:
        return None
    best = max(scored, key=lambda i: (grounding[i] or 0.0, -i))
    if tally.clusters[best] == tally.winner:
        return None
    span = _plain(texts[best])
    winners = [i for i, c in enumerate(tally.clusters) if c == tally.winner]
    if not span or any(span in _plain(texts[i]) for i in winners):
        return None
    mine = tally.clusters[best]
    support = sum(
        w
        for i, w in enumerate(weights)
        if tally.clusters[i] is not None and (tally.clusters[i] == mine or span in _plain(texts[i]))
    )
    answered = sum(tally.weights.values())
    assert mine is not None
    won = Tally(tally.clusters, tally.weights, mine, best, support / answered if answered else 0.0)
    return Grounded(won, best, len(winners))


def exact_override(
    tally: Tally, exact: Sequence[bool], weights: Sequence[float]
) -> Grounded | None:
    """Let an answer a deterministic tool computed from the question (calculator, dates, units)
    win over a cluster that disagrees with it; when the count agrees, its answer speaks for
    the cluster ("7 * 8 = 56", not a persona's sentence around 56).

    Sampled copies of one small model agree on the same wrong product ("7 * 8 = 49"); a tool
    that answered at all answered exactly (it abstains on what it cannot compute). Its
    confidence stays the share of answered weight that agrees with it. Among disagreeing exact
    answers (two tools read one question differently) the cluster with most of them wins.
    """
    if tally.winner is None:
        return None
    mine = [i for i, e in enumerate(exact) if e and tally.clusters[i] is not None]
    if not mine:
        return None
    agree = [i for i in mine if tally.clusters[i] == tally.winner]
    if agree:  # the count is right; the tool's own words speak for it ("7 * 8 = 56")
        return Grounded(replace(tally, winner_index=agree[0]), agree[0], 0)
    count: dict[int, int] = {}
    for i in mine:
        c = tally.clusters[i]
        assert c is not None
        count[c] = count.get(c, 0) + 1
    best = max(mine, key=lambda i: (count[tally.clusters[i] or 0], -i))
    cluster = tally.clusters[best]
    assert cluster is not None
    answered = sum(tally.weights.values())
    share = tally.weights.get(cluster, 0.0) / answered if answered else 0.0
    outvoted = sum(1 for c in tally.clusters if c == tally.winner)
    return Grounded(Tally(tally.clusters, tally.weights, cluster, best, share), best, outvoted)


def _plain(text: str) -> str:
    """Case and spacing folded, so "Zorblax" is found in "the code name is  zorblax."."""
    return " ".join(text.lower().split())
