"""Local heads on a tiny random Llama: batching, sampling controls, adapters, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from council.config import HeadSpec
from council.heads import build_heads, make_context
from council.heads.engine import Row
from council.heads.local import LocalHead
from council.types import GenParams, Message
from tests.helpers import local_specs, settings_with

Q = [Message("user", "What is 2 + 2?")]


def heads_on(model: Path, n: int = 5, **kw):  # type: ignore[no-untyped-def]
    settings = settings_with(local_specs(model, n, **kw))
    ctx = make_context(settings)
    return build_heads(settings, ctx), ctx


async def test_heads_on_one_base_share_one_model_and_one_generate_call(
    tiny_model_dir: Path,
) -> None:
    heads, ctx = heads_on(tiny_model_dir)
    assert len(ctx.pool.models) == 0
    await heads[0].start()
    [engine] = ctx.pool.models.values()
    before = engine.batches
    results = await asyncio.gather(*(h.complete(Q) for h in heads))
    assert engine.batches - before == 1  # five heads, ONE batched generate
    assert len(ctx.pool.models) == 1
    for h, [c] in zip(heads, results, strict=True):
        assert c.ok, c.error
        assert c.head == h.id and c.tokens_in > 0 and 0 < c.tokens_out <= 12


async def test_batched_greedy_equals_solo_greedy(tiny_model_dir: Path) -> None:
    heads, _ = heads_on(tiny_model_dir)
    solo = (await heads[0].complete(Q))[0].text
    batched = await asyncio.gather(*(h.complete(Q) for h in heads))
    assert batched[0][0].text == solo  # left padding and row sampling leave greedy rows intact


async def test_seeds_make_sampling_reproducible_and_n_gives_distinct_samples(
    tiny_model_dir: Path,
) -> None:
    heads, _ = heads_on(tiny_model_dir, 1)
    p = GenParams(temperature=1.0, top_p=1.0, seed=7, max_tokens=10)
    a = [c.text for c in await heads[0].complete(Q, n=4, params=p)]
    b = [c.text for c in await heads[0].complete(Q, n=4, params=p)]
    assert a == b
    assert len(set(a)) > 1  # seeds 7, 8, 9, 10 differ


async def test_logprobs_are_the_models_own_for_each_emitted_token(tiny_model_dir: Path) -> None:
    """Greedy and sampled rows in one padded batch report, per token, the log-probability the
    model (at temperature 1) gave the token it emitted: checked against a plain forward pass."""
    import torch

    heads, ctx = heads_on(tiny_model_dir, 1)
    await heads[0].start()
    [engine] = ctx.pool.models.values()
    short, long = engine.encode(Q), engine.encode([Message("user", "Name three colours " * 4)])
    rows = [Row(short, max_new_tokens=8), Row(long, temperature=0.7, seed=3, max_new_tokens=8)]
    results = await engine.generate(rows)
    for row, r in zip(rows, results, strict=True):
        assert r.token_ids and len(r.token_logprobs) == len(r.token_ids) == r.tokens_out
        ids = torch.tensor([row.prompt_ids + r.token_ids])
        with torch.inference_mode():
            logits = engine.model(ids).logits[0, len(row.prompt_ids) - 1 : -1]
        want = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor([r.token_ids]).T)
        assert r.token_logprobs == pytest.approx(want.squeeze(1).tolist(), abs=1e-3)
    [c] = await heads[0].complete(Q, params=GenParams(max_tokens=8))
    assert c.token_logprobs and len(c.token_logprobs) == c.tokens_out  # the head passes them on
    values = [lp for _, lp in c.token_logprobs]
    assert c.logprob is not None and c.logprob < 0
    assert c.logprob == pytest.approx(sum(values) / len(values))


async def test_token_budget_and_stop_strings(tiny_model_dir: Path) -> None:
    heads, _ = heads_on(tiny_model_dir, 1)
    [c] = await heads[0].complete(Q, params=GenParams(max_tokens=3, temperature=0.0))
    assert c.tokens_out == 3 and c.finish_reason == "length"
    full = (await heads[0].complete(Q, params=GenParams(max_tokens=12)))[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), full
    [s] = await heads[0].complete(Q, params=GenParams(max_tokens=12, stop=[stop]))
    assert stop not in s.text and s.finish_reason == "stop"
    assert full.startswith(s.text.strip()[:5])


async def test_adapter_attaches_to_the_loaded_base_without_reload(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(
        base,
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    with torch.no_grad():  # make the adapter matter
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 2.0)
    lora.save_pretrained(tmp_path / "adapter-v1")

    heads, ctx = heads_on(tiny_model_dir, 2)
    await heads[0].start()
    [engine] = ctx.pool.models.values()
    base_model = engine.model
    before = (await heads[0].complete(Q))[0].text
    await asyncio.get_running_loop().run_in_executor(
        engine._executor, engine.attach_adapter, "v1", tmp_path / "adapter-v1"
    )
    assert engine.model.get_base_model() is base_model  # same weights object, not reloaded
    heads[1].adapter = "v1"  # type: ignore[attr-defined]
    plain, tuned = await asyncio.gather(heads[0].complete(Q), heads[1].complete(Q))
    assert plain[0].text == before  # the base still answers per request
    assert tuned[0].ok and tuned[0].text != before


async def test_a_head_on_missing_weights_fails_with_the_fix(tmp_path: Path) -> None:
    settings = settings_with([HeadSpec(id="ghost", kind="local", model=str(tmp_path / "nope"))])
    [head] = build_heads(settings)
    assert isinstance(head, LocalHead)
    [c] = await head.complete(Q)
    assert not c.ok and "neither a transformers folder" in (c.error or "")


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_is_configurable(tiny_model_dir: Path, threads: int) -> None:
    import torch

    settings = settings_with(local_specs(tiny_model_dir, 1), threads=threads)
    ctx = make_context(settings)
    ctx.pool.get(str(tiny_model_dir)).load()
    assert torch.get_num_threads() == threads
    torch.set_num_threads(1)
