"""Facts: what each user told the council about themselves, learnt off the reply path.

facts.learn(job)         extract -> reconcile -> store (one transaction per job)
facts.recall(q, user)    the user's current facts nearest the question (a vector lookup)
facts.start() / stop()   the worker that drains the durable queue; at start it first
                         redoes what a crash left pending
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from council.config_sections import MemorySettings
from council.embeddings import Embedder
from council.facts.extract import AskHead, extract
from council.facts.ledger import Fact, FactLedger, Job
from council.facts.reconcile import decide, neighbours
from council.memory.episodic import Recalled
from council.memory.store import Store

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # a job that keeps failing (not a head failure: those fall back) is dropped


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
        settings = settings or MemorySettings()
        self.k, self.min_score = settings.fact_k, settings.fact_min_score
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # learning -------------------------------------------------------------------------
    async def learn(self, job: Job) -> list[int]:
        """One user turn: candidate facts, each added, superseding, or dropped as known."""
        candidates, how = await extract(job.text, self.ask)
        facts, vectors = await asyncio.to_thread(self.ledger.current, job.user_id)
        adds: list[tuple[str, np.ndarray, str, int | None]] = []
        gone: set[int] = set()
        for text in candidates:
            vector = (await asyncio.to_thread(self.embedder.encode, [text]))[0]
            near = [(f, s) for f, s in neighbours(vector, facts, vectors) if f.id not in gone]
            decision = await decide(text, near, self.ask)
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
    def recall(self, question: str, user: str) -> list[Recalled]:
        """The user's current facts nearest the question (brute force over their facts)."""
        facts, vectors = self.ledger.current(user)
        if not facts or self.k <= 0:
            return []
        found = neighbours(self.embedder.encode([question])[0], facts, vectors)[: self.k]
        return [
            Recalled("fact", f.id, f.text, s, f.exchange_id, said_at=f.said_at)
            for f, s in found
            if s >= self.min_score
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
