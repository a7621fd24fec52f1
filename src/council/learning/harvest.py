"""Harvest: failed exchanges in a window → Agent-0 rewrites → quality gate → examples.

A 👎 that carried a correction is gold: Agent-0 is told the right answer and the gate admits
the rewrite only when its final answer agrees with it; the example's source is "correction".
When the rewrite misses the correction (a small rewriter often does), the example is written
from the correction itself, a short "ANSWER: <correction>" in the user's own wording, with
`rewrite_missed` in its provenance: every correction yields one example.

Idempotent: a harvested exchange gets a row in `harvests` (accepted or rejected) in the same
transaction as its rewrite and example, so a second run skips it, unless a correction came
after it was harvested: then it is harvested again towards that correction, and its new
example replaces the one the first harvest made (one example per exchange). When Agent-0 fails
(a head error), nothing is written and the exchange waits for the next run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from council.council import Council
from council.errors import ConfigError
from council.exchange import new_exchange_id
from council.learning.agent0 import Agent0, Rewrite
from council.learning.arbiter import ArbiterLoop
from council.learning.ledger import count_examples, failures, record_harvest
from council.learning.metrics import learning_metrics
from council.learning.quality import Gate, Signals, agrees, heuristic_score, quality_score
from council.memory.episodic import parse_since
from council.memory.store import ExchangeRecord
from council.types import Message, Verdict
from council.verify import verify_answer

REWRITES_AHEAD = 8  # Agent-0 rewrites in flight while the gate takes the earlier ones


@dataclass
class HarvestItem:
    exchange_id: str
    question: str
    status: str  # accepted | rejected | failed
    quality: float | None = None
    reason: str | None = None
    answer: str | None = None
    rewrite_id: str | None = None
    example_id: int | None = None


@dataclass
class HarvestReport:
    considered: int = 0
    items: list[HarvestItem] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def rewrite_success_rate(self) -> float:
        done = self.count("accepted") + self.count("rejected")
        return self.count("accepted") / done if done else 0.0


async def harvest(
    council: Council,
    *,
    since: float | str | None = "24h",
    include_low_confidence: bool = False,
    limit: int | None = None,
    agent0: Agent0 | None = None,
) -> HarvestReport:
    """Rewrite this window's failures; returns what happened to each."""
    if council.memory is None:
        raise ConfigError("Harvesting needs memory: set COUNCIL_MEMORY=true.")
    s = council.settings
    store = council.memory.store
    agent = agent0 or Agent0(council)
    arbiter = ArbiterLoop(council)
    gate = Gate(store, s.learning.near_duplicate)
    metrics = learning_metrics(council.metrics)
    rows = failures(
        store, parse_since(since), limit=limit,
        low_confidence=s.routing.success_threshold if include_low_confidence else None,
    )  # fmt: skip
    report = HarvestReport(considered=len(rows))
    ahead = asyncio.Semaphore(REWRITES_AHEAD)

    async def rewrite(row: dict[str, Any]) -> Rewrite:
        async with ahead:
            return await agent.rewrite(row["prompt"], row["answer"], row["correction"])

    # Agent-0 rewrites run ahead, several at once (a local engine batches them; one by one, a
    # night of a few hundred corrections waits on each rewrite in turn); the gate, which
    # compares each example with those before it, and the store take them in order.
    rewrites = [asyncio.ensure_future(rewrite(row)) for row in rows]
    try:
        for row, pending in zip(rows, rewrites, strict=True):
            item = await _one(council, arbiter, gate, row, await pending)
            report.items.append(item)
            metrics.harvest.labels(item.status).inc()
    finally:
        for pending in rewrites:
            pending.cancel()
    if report.count("accepted") + report.count("rejected"):  # an empty run rates nothing
        metrics.rewrite_success_rate.set(report.rewrite_success_rate)
    metrics.examples.set(count_examples(store))
    return report


async def _one(
    council: Council, arbiter: ArbiterLoop, gate: Gate, row: dict[str, Any], rw: Rewrite
) -> HarvestItem:
    s = council.settings
    assert council.memory is not None
    question, bad, correction = row["prompt"], row["answer"], row["correction"]
    if rw.error is not None:
        return HarvestItem(row["id"], question, "failed", reason=rw.error)
    # No oracle overrules a user: a corrected exchange skips the arbiter loop.
    platinum = None if correction else await arbiter.refine(question, rw.answer, tool=rw.tool)
    if platinum is not None and platinum.answer != rw.answer:
        rw.reasoning += f" (The {platinum.decided_by} corrected the answer.)"
        rw.answer = platinum.answer
    missed = None
    if correction is not None and not agrees(rw.answer, correction):
        missed, rw = rw.answer, from_correction(rw, correction)
    signals = Signals(
        verifier=verify_answer(question, rw.answer),
        correction=None if correction is None else agrees(rw.answer, correction),
        agreement=rw.agreement,
        judge=None if missed is not None else await _judge(council, question, rw),
        heuristic=heuristic_score(bad, rw.text),
    )
    quality = quality_score(signals)
    embed = council.memory.embedder.encode
    vector = (await asyncio.to_thread(embed, [f"{question}\n{rw.answer}"]))[0]
    supersedes = row.get("supersedes")  # a late correction: its new example replaces this
    admitted, refused = gate.admit(question, rw.text, vector, replacing=supersedes)
    accepted = (
        admitted and quality >= s.learning.quality_threshold and signals.correction is not False
    )
    reason = refused or _refusal(signals, quality, s.learning.quality_threshold, rw, correction)
    if missed is not None and reason is None:
        reason = f"the rewrite's answer {missed!r} missed the correction: written from it"
    messages = [Message.coerce(m) for m in json.loads(row["messages_json"])]
    rewrite = ExchangeRecord(
        id=new_exchange_id(),
        user_id=row["user_id"],
        messages=messages,
        verdict=Verdict(rw.text, [], rw.agreement or 0.0, f"agent0:{rw.agent}", 0.0,
                        rw.cost_usd, [rw.agent], row["task_type"] or "general"),
        role="agent0",
        success=True if accepted else None,
        label_source="agent0",
        parent_id=row["id"],
        improved=True,
        created_at=time.time(),
    )  # fmt: skip
    provenance = {**signals.to_dict(), "tool": rw.tool, "arbiter": platinum and platinum.provenance,
                  "samples": rw.samples, "reason": reason, "user_correction": correction,
                  "from_correction": correction is not None, "rewrite_missed": missed is not None,
                  "missed_answer": missed}  # fmt: skip
    example = {
        "source": "harvest" if correction is None else "correction",
        "exchange_ids": [row["id"], rewrite.id], "messages": messages,
        "response": rw.text, "quality": quality, "reasoning": rw.reasoning,
        "task_type": row["task_type"], "signals": provenance, "vector": vector,
    }  # fmt: skip
    memory = council.memory
    assert memory is not None
    examples: list[int | None] = []

    def write() -> int | None:  # the memory row's id; the example's is kept aside
        memory_id, example_id = record_harvest(
            memory.store, original_id=row["id"], rewrite=rewrite,
            memory=(f"Q: {question}\nA: {rw.answer}", vector), accepted=accepted,
            quality=quality, signals=provenance, agent=rw.agent, example=example,
            supersedes=supersedes,
        )  # fmt: skip
        examples.append(example_id)
        return memory_id

    await asyncio.to_thread(memory.table.insert, write, vector)
    example_id = examples[0]
    return HarvestItem(row["id"], question, "accepted" if accepted else "rejected", quality,
                       reason, rw.answer, rewrite.id, example_id)  # fmt: skip


def from_correction(rw: Rewrite, correction: str) -> Rewrite:
    """The example a missed rewrite leaves: the question answered with the correction itself,
    as the user wrote it (the family's own format), no reasoning the rewriter did not reach."""
    answer = correction.strip()
    return Rewrite(rw.question, "", answer, rw.agent, [answer], None, rw.tool, rw.cost_usd)


def _refusal(
    signals: Signals, quality: float, threshold: float, rw: Rewrite, correction: str | None
) -> str | None:
    """Why the gate refused this rewrite (after duplicates and leaks), or None."""
    if signals.correction is False:
        return (
            f"final answer {rw.answer!r} does not agree with the user's correction {correction!r}"
        )
    return None if quality >= threshold else f"quality {quality:.2f} < {threshold}"


async def _judge(council: Council, question: str, rw: Rewrite) -> float | None:
    """A configured judge head's 1-10 score, as 0..1 (None without a judge or a reading)."""
    judge_id = council.settings.learning.quality_judge
    if judge_id is None:
        return None
    head = council.head(judge_id)
    prompt = [
        Message("system", "You grade answers. Reply with one line: SCORE: <1-10>."),
        Message("user", f"Question: {question}\nAnswer: {rw.text}\nHow good is this answer?"),
    ]
    [c] = await council.call(head, prompt, None)

    m = re.search(r"SCORE\s*:\s*(\d+(?:\.\d+)?)", c.text or "", re.I)
    return min(max(float(m.group(1)) / 10, 0.0), 1.0) if c.ok and m else None
