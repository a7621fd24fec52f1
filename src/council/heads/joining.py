"""Which waiting rows join the running batch at the next step: whole requests, in order.

A request is a call's n samples, or every row a ballot reserved on this model (its members'
calls reach the engine a moment apart). Its rows join in one step, never split across
admission waves, which is what kept a council's p95 far above its p50. The first waiting
request joins as soon as one of the `max_batch` slots frees, even if it overfills them by
less than its own size; later ones join while they fit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import torch

from council.heads.engine import Row, RowResult

GATHER_S = 0.05  # a request's first row waits this long at most for the rest of its rows


@dataclass(eq=False)  # rows are told apart by identity
class Live:
    """A row and what it has generated so far."""

    row: Row
    fut: asyncio.Future[RowResult]
    gen: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    shown: str = ""  # text already sent to the row's stream
    delta: str = ""  # text to send after this step
    result: RowResult | None = None
    error: Exception | None = None
    joined: float = field(default_factory=time.perf_counter)  # when it was queued
    group: object = None  # its request: a call's n samples, or a ballot's members
    size: int = 1  # how many rows that request queues on this model in all


def requests(waiting: list[Live]) -> list[list[Live]]:
    """The waiting rows by request, in arrival order."""
    groups: dict[int, list[Live]] = {}
    for w in waiting:
        groups.setdefault(id(w.group), []).append(w)
    return list(groups.values())


def complete(rows: list[Live]) -> bool:
    """All of a request's rows are queued, or its first waited `GATHER_S` for the rest (a
    strategy may ask only some of the members it reserved)."""
    return len(rows) >= rows[0].size or time.perf_counter() - rows[0].joined > GATHER_S


def admit(waiting: list[Live], running: int, max_batch: int) -> list[Live]:
    """The rows that join now: whole complete requests, first come first in."""
    joining: list[Live] = []
    for rows in requests(waiting):
        if not complete(rows):
            continue
        now = running + len(joining)
        if now >= max_batch or (joining and now + len(rows) > max_batch):
            break
        joining += rows
    return joining


def joinable(waiting: list[Live], running: int, max_batch: int) -> bool:
    """Whether a waiting request could join now."""
    return running < max_batch and any(complete(rows) for rows in requests(waiting))
