"""The continuous-batching engine on a tiny random Llama: rows join mid-generation, mixed
sampling and adapters in one batch, cancelled rows stop, and tokens stream as generated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.heads.admission import reserve
from council.heads.continuous import LocalModel
from council.heads.engine import Row, RowResult
from council.types import Message

HANG_GUARD_S = 60.0  # far above any honest latency here; only a wedged engine reaches it
STORY = [Message("user", "Tell me a long story about rivers.")]


@pytest.fixture
def engine(tiny_model_dir: Path) -> Iterator[LocalModel]:
    model = LocalModel(tiny_model_dir, window_ms=1)
    yield model
    model.close()


async def _until(check: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not check():
        assert time.monotonic() < deadline, "the engine never got there"
        await asyncio.sleep(0.005)


def _copy(row: Row) -> Row:
    return Row(
        list(row.prompt_ids),
        temperature=row.temperature,
        top_p=row.top_p,
        max_new_tokens=row.max_new_tokens,
        seed=row.seed,
        stop=list(row.stop),
        adapter=row.adapter,
    )


async def _solo(engine: LocalModel, rows: list[Row]) -> list[RowResult]:
    return [(await engine.generate([_copy(r)]))[0] for r in rows]


async def save_random_adapters(engine: LocalModel, where: Path) -> None:
    """Two random LoRA adapters, "v1" and "v2", saved under `where` and attached."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for i, name in enumerate(("v1", "v2")):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(engine.folder)
        lora = get_peft_model(
            base,
            LoraConfig(
                r=4, lora_alpha=8, init_lora_weights=False, target_modules=["q_proj", "v_proj"]
            ),
        )
        with torch.no_grad():  # make each adapter matter
            for pname, p in lora.named_parameters():
                if "lora_B" in pname:
                    p.normal_(0, 2.0)
        lora.save_pretrained(where / name)
        await asyncio.get_running_loop().run_in_executor(
            engine._executor, engine.attach_adapter, name, where / name
        )


async def test_rows_joining_mid_generation_equal_solo_greedy(engine: LocalModel) -> None:
    long = Row(await engine.encode_async(STORY), max_new_tokens=48)
    joiners = [
        Row(await engine.encode_async([Message("user", q)]), max_new_tokens=16)
        for q in ("What is 2 + 2?", "Name three colours, please, in order of wavelength.")
    ]
    solo = await _solo(engine, [long, *joiners])
    first = asyncio.create_task(engine.generate([long]))
    await _until(lambda: long.steps >= 8)
    assert not first.done()  # the long row is mid-generation when the others arrive
    batches = engine.batches
    late = await asyncio.wait_for(
        asyncio.gather(*(engine.generate([r]) for r in joiners)), HANG_GUARD_S
    )
    [done] = await asyncio.wait_for(first, HANG_GUARD_S)
    assert engine.batches == batches + 1  # both joined the running batch in one prefill
    got = [done, *(r for [r] in late)]
    assert [g.token_ids for g in got] == [s.token_ids for s in solo]
    assert [g.text for g in got] == [s.text for s in solo]
    assert all(g.finish_reason == "length" for g in got)


async def test_mixed_batch_keeps_each_rows_sampling_stop_and_adapter(
    engine: LocalModel, tmp_path: Path
) -> None:
    await save_random_adapters(engine, tmp_path)
    ids = await engine.encode_async([Message("user", "What is 2 + 2?")])
    rows = [
        Row(ids, max_new_tokens=10),
        Row(ids, max_new_tokens=10, adapter="v1"),
        Row(ids, max_new_tokens=10, adapter="v2"),
        Row(ids, max_new_tokens=10, temperature=1.0, seed=7),
        Row(ids, max_new_tokens=10, temperature=0.8, top_p=0.9, seed=3, adapter="v1"),
        Row(ids, max_new_tokens=10, temperature=1.0, seed=8),
    ]
    solo = await _solo(engine, rows)
    full = solo[1].text
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), full
    rows.append(Row(ids, max_new_tokens=10, adapter="v1", stop=[stop]))
    batches = engine.batches
    mixed = await engine.generate(rows)
    assert engine.batches == batches + 1  # one batch for all seven
    for got, want in zip(mixed, solo, strict=False):
        assert got.token_ids == want.token_ids
        assert got.token_logprobs == pytest.approx(want.token_logprobs, abs=1e-4)
    texts = [r.text for r in mixed]
    assert len({texts[0], texts[1], texts[2]}) == 3  # base, v1, v2 each answer their own way
    assert texts[3] != texts[5]  # seeds 7 and 8 differ
    assert stop not in texts[6] and mixed[6].finish_reason == "stop"
    assert full.startswith(texts[6][:3])


async def test_a_cancelled_row_stops_at_the_next_step(engine: LocalModel) -> None:
    ids = await engine.encode_async(STORY)
    hog = Row(ids, temperature=2.0, max_new_tokens=10**6)
    task = asyncio.create_task(engine.generate([hog]))
    await _until(lambda: hog.steps >= 5)
    task.cancel()  # the caller left (a disconnect)
    timed = Row(ids, temperature=2.0, max_new_tokens=10**6)
    with pytest.raises(TimeoutError):  # a per-head timeout
        await asyncio.wait_for(engine.generate([timed]), 0.5)
    await _until(lambda: engine.queue.running == 0)
    frozen = (hog.steps, timed.steps)
    short = await engine.generate([Row(ids, max_new_tokens=8)])  # the engine runs on
    assert short[0].tokens_out == 8
    assert (hog.steps, timed.steps) == frozen  # neither took another step
    assert engine.rows_abandoned == 2 and not engine._live and not engine._waiting


async def test_tokens_stream_before_the_last_is_generated(engine: LocalModel) -> None:
    ids = await engine.encode_async(STORY)
    seen: list[tuple[int, str]] = []
    row = Row(ids, max_new_tokens=32)
    row.on_text = lambda delta: seen.append((row.steps, delta))
    [result] = await engine.generate([row])
    assert seen, "nothing streamed"
    assert seen[0][0] < result.tokens_out  # the first text came before the last token
    assert len(seen) > 1
    assert "".join(d for _, d in seen) == result.text  # the stream IS the answer
    # A stop string never reaches the stream, even for the step that completes it.
    stop = result.text[len(result.text) // 2 : len(result.text) // 2 + 3]
    cut: list[str] = []
    stopped = Row(ids, max_new_tokens=32, stop=[stop], on_text=cut.append)
    [r] = await engine.generate([stopped])
    assert r.finish_reason == "stop" and stop not in "".join(cut)
    assert "".join(cut) == r.text


async def test_a_councils_rows_join_in_one_step_even_when_the_batch_is_nearly_full(
    tiny_model_dir: Path,
) -> None:
    engine = LocalModel(tiny_model_dir, window_ms=1, max_batch=2)
    try:
        ids = await engine.encode_async(STORY)
        hog = Row(ids, temperature=2.0, max_new_tokens=10**6)
        running = asyncio.create_task(engine.generate([hog]))
        await _until(lambda: hog.steps >= 3)  # one slot of two is taken
        members = [Row(ids, max_new_tokens=4, seed=k, temperature=0.7) for k in range(3)]

        async def ask(row: Row, delay: float) -> list[RowResult]:
            await asyncio.sleep(delay)  # a ballot's head calls reach the engine a bit apart
            return await engine.generate([row])

        with reserve({engine.queue: 3}):  # what Council.ballot does before its fan-out
            await asyncio.gather(*(ask(r, 0.01 * k) for k, r in enumerate(members)))
        assert {r.joined_step for r in members} == {members[0].joined_step}
        assert members[0].joined_step > 0
        # Outside a ballot, each call is its own request: one slot, one at a time.
        loose = [Row(ids, max_new_tokens=4) for _ in range(2)]
        await asyncio.gather(*(engine.generate([r]) for r in loose))
        assert loose[0].joined_step != loose[1].joined_step
        running.cancel()
    finally:
        engine.close()
