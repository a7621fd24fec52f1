"""Facts: what each user told the council about themselves, learnt off the reply path.

facts.learn(job)         extract -> reconcile -> store (one transaction per job)
facts.recall(q, user)    the user's current facts nearest the question (a vector lookup)
facts.start() / stop()   the worker that drains the durable queue; at start it first
                         redoes what a crash left pending
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import numpy as np

from council.config_sections import MemorySettings
from council.embeddings import Embedder
from council.facts.extract import AskHead, extract
from council.facts.ledger import Fact, FactLedger, Job
from council.facts.reconcile import decide, neighbours, slot
from council.facts.topics import Topics
from council.memory.episodic import Recalled
from council.memory.store import Store

log = logging.getLogger(__name__)
ON_TOPIC = 0.15  # recall: added to the score of a fact on the question's single-valued topic
NEWER_WINS = 0.03  # recall: scores this close are a tie, and the newer fact ranks first
MAX_ATTEMPTS = 3  # a job that keeps failing (not a head failure: those fall back) is dropped


# A question about the past ("where did I live before Lisbon?") is answered from history too.
_PAST = re.compile(
    r"\b(before|used to|previous(?:ly)?|formerly|originally|at first|earlier|former"
    r"|last time|no longer|anymore|any more|change[ds]?)\b",
    re.I,
)


def _dated(fact: Fact) -> str:
    """A superseded fact says so, so that the newer one wins in the prompt too."""
    if fact.superseded_at is None:
        return fact.text
    day = time.strftime("%Y-%m-%d", time.gmtime(fact.superseded_at))
    return f"{fact.text} (no longer true since {day})"


class Facts:
    """The facts of every user in one store; `ask` calls the fact head (None: rules only)."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        ask: AskHead | None = None,
        settings: MemorySettings | None = None,
    ):
        self.ledger = FactLedger(store)
        self.embedder = embedder
        self.ask = ask
        self.topics = Topics(embedder)
        settings = settings or MemorySettings()
        self.k, self.min_score = settings.fact_k, settings.fact_min_score
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # learning -------------------------------------------------------------------------
    async def learn(self, job: Job) -> list[int]:
        """One user turn: candidate facts, each added, superseding, or dropped as known."""
        candidates, how = await extract(job.text, self.ask)
        facts, vectors = await asyncio.to_thread(self.ledger.current, job.user_id)
        topic_of = dict(
            zip(
                [f.id for f in facts],
                self.topics.of_many([f.text for f in facts], vectors),
                strict=True,
            )
        )
        adds: list[tuple[str, np.ndarray, str, int | None]] = []
        gone: set[int] = set()
        for text in candidates:
            vector = (await asyncio.to_thread(self.embedder.encode, [text]))[0]
            near = [(f, s) for f, s in neighbours(vector, facts, vectors) if f.id not in gone]
            topic = self.topics.of(text, vector)
            if topic is not None and topic.single:  # the fact it may replace, however far
                seen = {f.id for f, _ in near} | gone
                near += [(f, float(v @ vector)) for f, v in zip(facts, vectors, strict=True)
                         if topic_of[f.id] == topic and f.id not in seen]  # fmt: skip
            near_topics = [topic_of[f.id] for f, _ in near]
            decision = await decide(text, near, self.ask, topic, near_topics)
            log.info("fact %s (%s, %s): %r", decision.action, how, decision.by, text)
            if decision.action == "NOOP":
                continue
            old = decision.target.id if decision.action == "UPDATE" and decision.target else None
            if old is not None:
                gone.add(old)
            adds.append((text, vector, "head" if how == "head" else "fallback", old))
        return await asyncio.to_thread(self.ledger.apply, job, adds)

    async def drain(self) -> int:
        """Every pending job, oldest first; returns how many were done."""
        done = 0
        while jobs := await asyncio.to_thread(self.ledger.pending):
            for job in jobs:
                try:
                    await self.learn(job)
                    done += 1
                except Exception:  # the job stays queued for another try, then is dropped
                    log.exception("fact job %d failed (attempt %d)", job.id, job.attempts + 1)
                    if job.attempts + 1 >= MAX_ATTEMPTS:
                        await asyncio.to_thread(self.ledger.drop_job, job.id)
                    else:
                        await asyncio.to_thread(self.ledger.attempted, job.id)
                        return done
        return done

    # the worker -----------------------------------------------------------------------
    def wake(self) -> None:
        """A job was enqueued (called on the event loop after the exchange is recorded)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._wake.set()  # jobs a crash left pending are redone first
            self._task = asyncio.create_task(self._run(), name="council-facts")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("fact worker pass failed; retrying at the next job")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # recall, listing, erasure --------------------------------------------------------
    def recall(self, question: str, user: str, vector: np.ndarray | None = None) -> list[Recalled]:
        """The user's current facts nearest the question (brute force over their facts); a
        superseded fact never, and of two near-equal scores the newer first. `vector`: the
        question's embedding, when the caller has it already."""
        past = bool(_PAST.search(question))
        facts, vectors = self.ledger.current(user, history=past)
        if not facts or self.k <= 0:
            return []
        if vector is None:
            vector = self.embedder.encode([question])[0]
        scores = vectors @ vector
        # a question on a single-valued topic ("Where do I live?") finds the fact on it
        # however it is phrased ("These days home is Lisbon for me")
        on_topic = np.zeros(len(facts), dtype=bool)
        asked = slot(question, self.topics.of(question, vector))
        if asked is not None:
            topics = self.topics.of_many([f.text for f in facts], vectors)
            on_topic[:] = [slot(f.text, t) == asked for f, t in zip(facts, topics, strict=True)]
            scores = scores + ON_TOPIC * on_topic
        # facts come oldest first: the newest gets up to NEWER_WINS on a near tie
        ranked = scores + NEWER_WINS * np.linspace(0.0, 1.0, len(facts))
        if past:  # asked what was true before: what is no longer true comes first
            ranked += ON_TOPIC * np.asarray([f.superseded_at is not None for f in facts])
        return [
            Recalled("fact", f.id, _dated(f), float(scores[i]), f.exchange_id, said_at=f.said_at)
            for i, f in ((i, facts[i]) for i in np.argsort(-ranked)[: self.k])
            if scores[i] >= self.min_score or on_topic[i]  # on the topic asked: relevant
        ]

    def list(self, user: str | None, history: bool = False) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.ledger.facts_of(user, history)]

    def get(self, fact_id: int) -> Fact | None:
        return self.ledger.get(fact_id)

    def edit(self, fact_id: int, text: str) -> Fact | None:
        self.ledger.edit(fact_id, text, self.embedder.encode([text])[0])
        return self.ledger.get(fact_id)

    def forget(self, fact_id: int) -> bool:
        return self.ledger.forget(fact_id)

    def forget_user(self, user: str) -> dict[str, int]:
        return self.ledger.forget_user(user)
