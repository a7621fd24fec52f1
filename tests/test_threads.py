"""`adaptive_threads` (heads/threads.py): the tuner keeps the faster thread count as the box's
load changes, and an engine that switches counts between steps generates exactly what a
one-thread engine does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.heads.threads import EVERY, PAIRS, ThreadTuner, cores
from council.types import Message

PERIOD = EVERY + 2 * PAIRS


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(tuner: ThreadTuner, steps: int, seconds: Callable[[int], float], rows: int = 8) -> None:
    for _ in range(steps):
        threads = tuner.begin(rows)
        tuner.record(threads, seconds(threads))


def test_the_tuner_follows_whichever_count_is_faster_now() -> None:
    tuner = ThreadTuner(2)
    _run(tuner, EVERY, lambda t: 1.0)
    assert tuner.current == 1 and tuner.probes == 0  # no probe before EVERY steps
    _run(tuner, 2 * PAIRS, lambda t: 1.0 / t)  # a free second core: two threads halve a step
    assert (tuner.current, tuner.probes, tuner.switches) == (2, 1, 1)
    _run(tuner, PERIOD, lambda t: 1.0 / t)
    assert (tuner.current, tuner.probes, tuner.switches) == (2, 2, 1)
    _run(tuner, PERIOD, lambda t: 0.3 * t)  # something else took the core: two threads crawl
    assert (tuner.current, tuner.switches) == (1, 2)
    _run(tuner, PERIOD, lambda t: 1.0 - 0.05 * t)  # 5 % is within the margin: stay
    assert (tuner.current, tuner.switches) == (1, 2)


def test_pairs_whose_batch_changed_size_too_much_are_not_compared() -> None:
    tuner = ThreadTuner(2)
    _run(tuner, EVERY, lambda t: 1.0, rows=8)
    for k in range(2 * PAIRS):  # rows leave and join on every step of the probe
        threads = tuner.begin(8 if k % 2 == 0 else 20)
        tuner.record(threads, 1.0 / threads)
    assert (tuner.current, tuner.probes) == (1, 0)
    for k in range(PERIOD):  # a row or two leaving between neighbours still compares
        threads = tuner.begin(40 - k // 4)
        tuner.record(threads, 1.0 / threads)
    assert (tuner.current, tuner.probes) == (2, 1)


@pytest.mark.skipif(cores() < 2, reason="one core: adaptive_threads has nothing to choose")
async def test_an_engine_switching_thread_counts_generates_what_one_thread_does(
    tiny_model_dir: Path,
) -> None:
    tuned = LocalModel(tiny_model_dir, window_ms=1, adaptive_threads=True)
    plain = LocalModel(tiny_model_dir, window_ms=1)
    try:
        ids = await plain.encode_async([Message("user", "Tell me a long story about rivers.")])
        rows = 2 * PERIOD + 10  # at least two probes' worth of steps
        want = await plain.generate([Row(list(ids), max_new_tokens=rows) for _ in range(3)])
        got = await tuned.generate([Row(list(ids), max_new_tokens=rows) for _ in range(3)])
        assert [g.token_ids for g in got] == [w.token_ids for w in want]
        assert tuned.tuner is not None and tuned.tuner.steps >= 2 * PERIOD
        assert tuned.tuner.probes >= 1  # the second count really ran on some steps
    finally:
        tuned.close()
        plain.close()
