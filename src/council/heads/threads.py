"""How many torch threads the engine's decode steps use under `adaptive_threads`.

Two threads on a 2-core box made a 40-row decode step 1.64x faster while the other core was
free, and 2x slower beside one busy process: OpenMP threads wait on each other when a core
is taken (DESIGN.md). The thread count does not change a step's result (the logits are
bit-identical at 1 and 2 threads, measured on SmolLM2-135M), so the engine may change it
between steps. The tuner starts on every core; `EVERY` steps in, it runs `PAIRS` pairs of
steps, one at its count and one at the other, and switches when the other took at most
`MARGIN` of the time in most pairs. A probe that keeps the count doubles the wait before the
next one (up to `MOST_EVERY`), so a box where the other count is slow pays for it rarely.
Neighbouring steps carry nearly the same batch, so rows joining and leaving between pairs do
not bias the comparison; a pair whose batch changed size by more than `DRIFT` is not counted.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

EVERY = 48  # steps at the chosen count before the first probe and after a switch
MOST_EVERY = 768  # the longest wait between probes
PAIRS = 3  # (chosen, other) step pairs timed per probe
MARGIN = 0.9  # the other count must take at most this share of the time to be chosen
DRIFT = 0.25  # a pair whose row count changed by more than this share is not compared


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ThreadTuner:
    """Chooses between one thread and `most` for the calling thread's decode steps."""

    def __init__(self, most: int) -> None:
        self.counts = (1, most)
        self.current = most  # the first probe, EVERY steps in, falls back if it is slower
        self.steps = 0
        self.probes = 0  # probes decided (tests read them)
        self.switches = 0
        self._ratios: list[float] = []
        self._pair: tuple[int, float] | None = None  # the pair's first step: rows, seconds
        self._rows = 0
        self._every = EVERY
        self.next_probe = EVERY  # the step the next probe starts at (tests read it)
        self._threads = 1
        self._started = 0.0

    def begin(self, rows: int) -> int:
        """Before a decode step of `rows` rows: set this thread's torch thread count (and
        return it)."""
        k = self.steps - self.next_probe
        self.steps += 1
        self._rows = rows
        threads = self.current
        if self.counts[1] > 1 and 0 <= k < 2 * PAIRS and k % 2:
            threads = self._other()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self._threads = threads
        self._started = time.perf_counter()
        return threads

    def end(self) -> None:
        """After the step: record its time."""
        self.record(self._threads, time.perf_counter() - self._started)

    def record(self, threads: int, seconds: float) -> None:
        """A step's time (called by `end`); a probe's last step decides."""
        k = self.steps - 1 - self.next_probe
        if self.counts[1] == 1 or not 0 <= k < 2 * PAIRS:
            return
        if threads == self.current:
            self._pair = (self._rows, seconds)
        elif self._pair is not None:
            rows, mine = self._pair
            if abs(self._rows - rows) <= DRIFT * max(rows, 1):
                self._ratios.append(seconds / max(mine, 1e-9))
            self._pair = None
        if k == 2 * PAIRS - 1:
            ratios, self._ratios = self._ratios, []
            if len(ratios) * 2 > PAIRS:  # most pairs compared
                self.probes += 1
                if statistics.median(ratios) < MARGIN:
                    self.current = self._other()
                    self.switches += 1
                    self._every = EVERY
                else:
                    self._every = min(2 * self._every, MOST_EVERY)
            self.next_probe = self.steps + self._every

    def _other(self) -> int:
        return self.counts[0] if self.current == self.counts[1] else self.counts[1]
