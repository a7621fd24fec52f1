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
from council.heads.threads import EVERY, MOST_EVERY, PAIRS, ThreadTuner, cores
from council.types import Message

PERIOD = EVERY + 2 * PAIRS  # steps to the end of the first probe


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _probe(tuner: ThreadTuner, seconds: Callable[[int], float],
           rows: Callable[[int], int] = lambda k: 8) -> None:  # fmt: skip
    """Steps through the end of the next probe; `rows` of the step's place in the probe."""
    end = tuner.next_probe + 2 * PAIRS
    while tuner.steps < end:
        threads = tuner.begin(rows(tuner.steps - tuner.next_probe))
        tuner.record(threads, seconds(threads))


def test_the_tuner_follows_whichever_count_is_faster_now() -> None:
    tuner = ThreadTuner(2)
    assert tuner.current == 2 and tuner.next_probe == EVERY  # every core until the first probe
    _probe(tuner, lambda t: 0.3 * t)  # something else took the core: two threads crawl
    assert (tuner.current, tuner.probes, tuner.switches) == (1, 1, 1)
    assert tuner.next_probe == tuner.steps + EVERY
    _probe(tuner, lambda t: 0.3 * t)  # kept: the next probe waits twice as long
    assert (tuner.current, tuner.probes, tuner.switches) == (1, 2, 1)
    assert tuner.next_probe == tuner.steps + 2 * EVERY
    _probe(tuner, lambda t: 1.0 / t)  # the second core is free again: two halve a step
    assert (tuner.current, tuner.switches) == (2, 2)
    for _ in range(8):  # 5 % is within the margin: stay, probing ever more rarely
        _probe(tuner, lambda t: 1.0 + 0.05 * t)
    assert (tuner.current, tuner.switches) == (2, 2)
    assert tuner.next_probe == tuner.steps + MOST_EVERY


def test_pairs_whose_batch_changed_size_too_much_are_not_compared() -> None:
    tuner = ThreadTuner(2)
    _probe(tuner, lambda t: 0.3 * t, rows=lambda k: 20 if k > 0 and k % 2 else 8)
    assert (tuner.current, tuner.probes) == (2, 0)  # rows left and joined on every step
    _probe(tuner, lambda t: 0.3 * t, rows=lambda k: 40 - max(k, 0) // 4)
    assert (tuner.current, tuner.probes) == (1, 1)  # a row or two between neighbours is fine


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
