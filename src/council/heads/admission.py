"""Admission: how many rows may wait for one loaded model, and a fan-out admitted whole.

A full queue answers at once (OverloadedError, 503 with Retry-After) instead of letting a
request wait behind minutes of generation until some timeout fires. A council's ballot
reserves room for every member before any is asked (`reserve`), so it is queued whole or
refused whole: never half run and then abandoned. The same reservation tells an engine which
rows belong together (`fanout`), so a council's rows join the running batch in one step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from council.errors import OverloadedError

# Rows a ballot reserved and its head calls have not taken yet (shared by the ballot's tasks).
_held: ContextVar[dict[Admission, int] | None] = ContextVar("council_held_rows", default=None)
# The server's own background work (a canary's probes): it queues behind requests instead of
# being refused, since nobody could retry it; it bounds its own fan-out (chunks of a few rows).
_patient: ContextVar[bool] = ContextVar("council_patient", default=False)
# The reservation in flight, as (its key, its demand): which rows an engine admits as one.
_fanout: ContextVar[tuple[object, dict[Admission, int]] | None] = ContextVar(
    "council_fanout", default=None
)


@contextmanager
def patient() -> Iterator[None]:
    """Head calls inside are the server's own work: they wait in line, never get a 503."""
    token = _patient.set(True)
    try:
        yield
    finally:
        _patient.reset(token)


class Admission:
    """The bounded queue of one loaded model: rows admitted, and how many of them run."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size
        self.admitted = 0  # rows admitted and not finished (encoding, waiting or running)
        self.running = 0  # rows in the batch being generated now
        self.batch_s = 1.0  # the last batch's duration: the Retry-After hint
        self.refused = 0  # rows refused since start (/health shows it)

    @property
    def waiting(self) -> int:
        return max(0, self.admitted - self.running)

    def check_room(self, rows: int) -> None:
        """Raise OverloadedError (503) unless `rows` more fit the queue now. An empty queue
        takes any fan-out, so a ballot wider than the queue still runs when the model is idle."""
        if rows <= 0 or self.waiting == 0 or self.waiting + rows <= self.size or _patient.get():
            return
        self.refused += rows
        wait = max(1, math.ceil(self.batch_s))
        raise OverloadedError(
            f"Model {self.name} is busy: {self.waiting} rows are waiting and the queue holds "
            f"{self.size} (COUNCIL_QUEUE_SIZE). Retry in {wait} s, or raise the queue size.",
            retry_after=wait,
        )

    @contextmanager
    def admit(self, rows: int) -> Iterator[None]:
        """Hold room for one call's rows while it runs; a ballot's reservation pays first."""
        held = _held.get()
        taken = min(rows, held.get(self, 0)) if held else 0
        self.check_room(rows - taken)
        if held and taken:
            held[self] -= taken
        self.admitted += rows - taken
        try:
            yield
        finally:
            self.admitted -= rows


@contextmanager
def reserve(demand: dict[Admission, int]) -> Iterator[None]:
    """Room for a whole fan-out on every queue it needs, or OverloadedError before any call.
    Head calls inside the block take their rows from it; what they do not take is freed."""
    for queue, rows in demand.items():
        queue.check_room(rows)
    held = dict(demand)
    for queue, rows in held.items():
        queue.admitted += rows
    token = _held.set(held)
    together = _fanout.set((object(), dict(demand)))
    try:
        yield
    finally:
        _fanout.reset(together)
        _held.reset(token)
        for queue, rows in held.items():
            queue.admitted -= rows
        held.clear()  # a call still running after the ballot must not take freed rows


def fanout(queue: Admission) -> tuple[object, int] | None:
    """The reservation this call belongs to, as (key, rows it reserved on `queue`); None
    outside a ballot. Calls with the same key are one request's rows: they join together."""
    current = _fanout.get()
    if current is None or current[1].get(queue, 0) <= 0:
        return None
    return current[0], current[1][queue]
