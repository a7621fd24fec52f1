"""How many torch threads the engine's decode steps use under `adaptive_threads`.

Two threads on a 2-core box made a 40-row decode step 1.64x faster while the other core was
free, and 2x slower beside one busy process: OpenMP threads wait on each other when a core
is taken (DESIGN.md). The thread count does not change a step's result (the logits are
bit-identical at 1 and 2 threads, measured on SmolLM2-135M), so the engine may change it
between steps. Every `EVERY` steps the tuner times `PROBE` steps at its count, then `PROBE`
at the other, on a batch whose size did not change, and keeps the other if it was faster
by `MARGIN`.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

EVERY = 48  # steps at the chosen count between probes
PROBE = 3  # steps timed at each count per probe
MARGIN = 0.9  # the other count must take at most this share of the time to be chosen


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
        self.current = 1  # the safe count until a probe shows the other is faster
        self.steps = 0
        self.probes = 0  # probes decided (health and tests read them)
        self.switches = 0
        self._times: dict[int, list[float]] | None = None
        self._rows = 0
        self._threads = 1
        self._started = 0.0

    def begin(self, rows: int) -> int:
        """Before a decode step of `rows` rows: set this thread's torch thread count (and
        return it)."""
        phase = self.steps % (EVERY + 2 * PROBE)
        self.steps += 1
        threads = self.current
        if self.counts[1] > 1 and phase >= EVERY:
            if phase == EVERY:
                self._times, self._rows = {c: [] for c in self.counts}, rows
            elif rows != self._rows:
                self._times = None  # the batch changed size: this probe compares nothing
            if phase >= EVERY + PROBE:
                threads = self._other()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self._threads = threads
        self._started = time.perf_counter()
        return threads

    def end(self) -> None:
        """After the step: record its time, and decide at the probe's last step."""
        seconds = time.perf_counter() - self._started
        self.record(self._threads, seconds)

    def record(self, threads: int, seconds: float) -> None:
        """A probe step's time; the probe's last step decides (called by `end`)."""
        if self._times is None:
            return
        self._times[threads].append(seconds)
        if self.steps % (EVERY + 2 * PROBE):
            return
        mine, other = self._times[self.current], self._times[self._other()]
        self._times = None
        if len(mine) == PROBE and len(other) == PROBE:
            self.probes += 1
            if statistics.median(other) < MARGIN * statistics.median(mine):
                self.current = self._other()
                self.switches += 1

    def _other(self) -> int:
        return self.counts[0] if self.current == self.counts[1] else self.counts[1]
