"""The gauntlet's sets drawn from users: held-out traffic (checked, corrected or judged)
and replay.

Replay: a sample of past exchanges that succeeded (verified, 👍, or high agreement among the
heads), re-asked to champion and challenger and scored by agreement with the stored answer
(normalised as the ballot normalises). The gate's rule then asks that the challenger keep
what the champion got right (learning/rule.py). The sample is stable (ordered by question
hash, not time), one item per question, and never holds a question the challenger trained
on or a held-out one (those are traffic). It draws from half of the successes only (by
question hash); the other half is rehearsed in training (learning/rehearsal.py).
"""

from __future__ import annotations

from typing import Any

from council.learning.gauntlet import REPLAY, Item, Outcome
from council.learning.ledger import content_hash, heldout_hashes, successes
from council.learning.rehearsal import replay_side
from council.learning.traffic import TRAFFIC, heldout_questions

JUDGE = "judge"  # Item.entry of a held-out question only the pairwise judge can score


def gain_set(store: Any, target: str | None, want: int,
             judged: bool) -> tuple[str, list[Item], int]:  # fmt: skip
    """(the gain set's name, held-out traffic items, how many held-out were left unscored).
    The gain set is `target` when one is given (benchmarks), else users' held-out traffic
    when there is enough of it to decide, else the gauntlet_family fallback (target None).
    With a judge (`judged`), questions nothing else can check are judged, not skipped."""
    from council.learning.rule import min_items_gain
    from council.learning.traffic import unscorable_questions

    asked, unscorable = heldout_questions(store, want)
    traffic = [Item(TRAFFIC, q, correction, TRAFFIC) for q, correction in asked]
    if judged and len(traffic) < want:
        rest = unscorable_questions(store, want - len(traffic))
        traffic += [Item(TRAFFIC, q, "", TRAFFIC, JUDGE) for q in rest]
        unscorable -= len(rest)
    if target is None and len(traffic) >= min_items_gain():
        return TRAFFIC, traffic, unscorable
    return target or "", traffic, unscorable


async def judge_traffic(head: Any, judge_id: str, items: list[Item], champion: Outcome,
                        challenger: Outcome) -> dict[str, Any] | None:  # fmt: skip
    """Score the judged items in place: a judge's win is a discordant pair, a tie is not."""
    from council.learning.judge import judge_items

    idx = [i for i, it in enumerate(items) if it.entry == JUDGE]
    if not idx:
        return None
    judged = await judge_items(head, judge_id, [items[i].question for i in idx],
                               [champion.answers[i] for i in idx],
                               [challenger.answers[i] for i in idx])  # fmt: skip
    for i, (a, b) in zip(idx, judged.as_pairs(), strict=True):
        champion.correct[i], challenger.correct[i] = a, b
    return judged.counts()


def replay_items(store: Any, n: int, trained: set[str]) -> list[Item]:
    """Up to n past successes, none trained on or held out, in a stable order."""
    if n <= 0:
        return []
    held = heldout_hashes(store)
    seen: dict[str, Item] = {}
    for row in successes(store):
        digest = content_hash(row["prompt"])
        if digest in trained or digest in held or digest in seen or not row["answer"].strip():
            continue
        if not replay_side(digest):  # the other half is rehearsed in training (rehearsal.py)
            continue
        seen[digest] = Item(REPLAY, row["prompt"], row["answer"], REPLAY)
    return [seen[d] for d in sorted(seen)][:n]


def probe_items(store: Any, n: int) -> list[Item]:
    """The canary's candidate probes from users: checkable held-out traffic and replay,
    alternating (the deployer keeps those the previous champion gets right)."""
    asked, _ = heldout_questions(store, n)
    traffic = [Item(TRAFFIC, q, correction, TRAFFIC) for q, correction in asked]
    replay = replay_items(store, n, set())
    mixed = [it for pair in zip(traffic, replay, strict=False) for it in pair]
    mixed += traffic[len(replay) :] + replay[len(traffic) :]
    return mixed[:n]
