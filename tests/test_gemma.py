"""A second model family on the tiny path: a random Gemma-3 (sliding-window layers, no chat
template) behind heads with the few-shot `fewshot_qa` prompt: it loads, batches, stops at a
stop string, and trains and serves an adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from council.config import HeadSpec
from council.embeddings import Embedder
from council.errors import ConfigError
from council.heads import build_heads, make_context
from council.heads.completion import render, stops
from council.heads.continuous import LocalModel
from council.heads.local import LocalHead
from council.learning.collector import Learner
from council.learning.datasets import freeze
from council.learning.train import TrainConfig, train_adapter
from council.types import GenParams, Message
from tests.helpers import settings_with

Q = [Message("user", "What is 2 + 2?")]


def build_tiny_gemma(tokenizer_dir: Path, out: Path) -> Path:
    """A random 2-layer Gemma-3 (one sliding, one full attention layer) with the SmolLM2
    tokenizer, its chat template removed: a base model, as Gemma-3-270M ships."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.chat_template = None
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=2048,
        initializer_range=0.2,  # sharp logits, as build_tiny_model's
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_gemma_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(smollm2_dir, tmp_path_factory.mktemp("tiny-gemma"))


def gemma_specs(model: Path, **kw: object) -> list[HeadSpec]:
    common = dict(kind="local", model=str(model), prompt_template="fewshot_qa", max_tokens=16,
                  role="gemma")  # fmt: skip
    return [
        HeadSpec(id="g0", temperature=0.0, **common | kw),  # type: ignore[arg-type]
        HeadSpec(id="g1", temperature=0.7, seed=5, **common | kw),  # type: ignore[arg-type]
    ]


def heads_on(model: Path, **kw: object) -> tuple[list[LocalHead], object]:
    settings = settings_with(gemma_specs(model, **kw))
    ctx = make_context(settings)
    return build_heads(settings, ctx), ctx  # type: ignore[return-value]


def test_the_few_shot_prompt_is_a_transcript_left_open_after_the_question() -> None:
    convo = [
        Message("system", "Recalled: the vault code is 4417."),
        Message("user", "What is 1 + 1?"),
        Message("assistant", "2"),
        Message("user", "What is the vault code?"),
    ]
    text = render("fewshot_qa", convo)
    assert text.startswith("Context: Recalled: the vault code is 4417.\n")
    assert "Q: What is the capital of Italy?\nA: The capital of Italy is Rome.\n" in text  # a shot
    assert "Q: What is 1 + 1?\nA: 2\nQ: What is the vault code?\nA:" in text  # earlier turns
    assert text.endswith("\nA:")
    assert "\nQ:" in stops("fewshot_qa")


def test_an_unknown_template_names_the_one_that_exists() -> None:
    with pytest.raises(ConfigError, match="fewshot_qa"):
        render("no_such_template", Q)


async def test_gemma_heads_load_batch_and_use_the_few_shot_prompt(tiny_gemma_dir: Path) -> None:
    heads, ctx = heads_on(tiny_gemma_dir)
    await heads[0].start()
    [engine] = ctx.pool.models.values()  # type: ignore[attr-defined]
    assert type(engine) is LocalModel  # sliding-window layers on the one continuous engine
    prompt = engine.encode(Q, template="fewshot_qa")
    assert engine.tokenizer.decode(prompt).endswith("Q: What is 2 + 2?\nA:")
    assert await heads[0].count_tokens(Q) == len(prompt)
    before = engine.batches
    results = await asyncio.gather(*(h.complete(Q) for h in heads))
    assert engine.batches - before == 1  # both heads, ONE batched generate
    for h, [c] in zip(heads, results, strict=True):
        assert c.ok, c.error
        assert c.head == h.id and c.tokens_in == len(prompt) and 0 < c.tokens_out <= 16
    assert heads[0].resolve(None).stop == stops("fewshot_qa")  # the template's stop strings


async def test_a_gemma_head_stops_at_a_stop_string(tiny_gemma_dir: Path) -> None:
    heads, _ = heads_on(tiny_gemma_dir)
    greedy = heads[0]
    [full] = await greedy.complete(Q, params=GenParams(max_tokens=16))
    assert full.finish_reason == "length" and len(full.text) > 6, full.text
    stop = full.text[len(full.text) // 2 : len(full.text) // 2 + 2]
    assert stop.strip(), full.text
    [cut] = await greedy.complete(Q, params=GenParams(max_tokens=16, stop=[stop]))
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert cut.tokens_out < full.tokens_out
    assert full.text.startswith(cut.text)
    # a catalogue stop string (HeadSpec.stop) joins the template's
    heads, _ = heads_on(tiny_gemma_dir, stop=[stop])
    [same] = await heads[0].complete(Q, params=GenParams(max_tokens=16))
    assert same.text == cut.text and same.finish_reason == "stop"


async def test_a_gemma_head_trains_and_serves_an_adapter(
    tiny_gemma_dir: Path, tmp_path: Path
) -> None:
    settings = settings_with(
        gemma_specs(tiny_gemma_dir), data_dir=tmp_path, memory=True, embedder="minilm"
    )
    learner = Learner(settings, embedder=Embedder("minilm"))
    for i in range(8):
        learner.collect_example(f"What is {i} plus {i + 7}?", f"{2 * i + 7}", 0.95, "math")
    version = freeze(learner.store, tmp_path / "datasets")["version"]
    fast = TrainConfig(rank=4, alpha=8, epochs=2, batch_size=4, grad_accum=1, learning_rate=5e-2)
    meta = await asyncio.to_thread(train_adapter, settings, learner.store, version, role="gemma",
                                   config=fast)  # fmt: skip
    curve = [p["loss"] for p in meta["loss_curve"]]
    assert meta["examples"] == 8 and curve[-1] < curve[0]  # it learned from few-shot-shaped rows
    heads, ctx = heads_on(tiny_gemma_dir)
    await heads[0].start()
    [engine] = ctx.pool.models.values()  # type: ignore[attr-defined]
    [before] = await heads[0].complete(Q)
    await asyncio.get_running_loop().run_in_executor(
        engine._executor, engine.attach_adapter, meta["version"], Path(meta["path"])
    )
    heads[1].adapter = meta["version"]
    plain, tuned = await asyncio.gather(
        heads[0].complete(Q), heads[1].complete(Q, params=GenParams(temperature=0.0))
    )
    assert plain[0].text == before.text  # the base still answers per row
    assert tuned[0].ok and tuned[0].adapter == meta["version"]


@pytest.mark.slow
async def test_the_packaged_gemma_converts_and_answers_through_the_few_shot_prompt(
    tmp_path: Path,
) -> None:
    """The real Gemma-3-270M: assembled from its chunk packages, converted once, answered."""
    from council.config import packaged_catalogue
    from council.heads.weights import GEMMA_MODEL, resolve_model_dir

    folder = resolve_model_dir(GEMMA_MODEL, tmp_path / "models")
    assert (folder / "model.safetensors").stat().st_size > 200_000_000
    assert not list(folder.parent.glob(".gemma-*"))  # neither the GGUF nor a half folder left
    specs = [h.model_copy(update={"enabled": True}) for h in packaged_catalogue()
             if h.model == GEMMA_MODEL]  # fmt: skip
    settings = settings_with(specs, data_dir=tmp_path)
    ctx = make_context(settings)
    heads = build_heads(settings, ctx)
    ask = [Message("user", "What is the capital of France?")]
    [greedy], [_] = await asyncio.gather(*(h.complete(ask) for h in heads))
    assert greedy.ok and "Paris" in greedy.text and "\nQ:" not in greedy.text
    assert greedy.finish_reason == "stop"


async def test_sliding_window_rows_equal_the_models_own_generate_batched_or_solo(
    tiny_gemma_dir: Path,
) -> None:
    """Prompts far longer than the 16-token window, padded differently in one batch: the
    engine's greedy tokens equal each row alone and transformers' own generate (which keeps
    the model's sliding-window cache)."""
    import torch
    from transformers import AutoModelForCausalLM

    from council.heads.engine import Row

    asks = ["What is 2 + 2?", "Tell me a long story about a cat in Lisbon who liked fish", "Hi"]

    async def run(engine: LocalModel, texts: list[str]) -> list[list[int]]:
        rows = [
            Row(
                prompt_ids=[],
                messages=[Message("user", t)],
                template="fewshot_qa",
                max_new_tokens=24,
            )
            for t in texts
        ]
        return [r.token_ids for r in await engine.generate(rows)]

    engine = LocalModel(tiny_gemma_dir)
    batched = await run(engine, asks)
    solo = [(await run(engine, [t]))[0] for t in asks]
    assert batched == solo
    reference = AutoModelForCausalLM.from_pretrained(tiny_gemma_dir)
    eos = engine.tokenizer.eos_token_id
    for text, tokens in zip(asks, solo, strict=True):
        ids = engine.encode([Message("user", text)], template="fewshot_qa")
        assert len(ids) > 16 * 4  # well past the window
        out = reference.generate(
            torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=eos
        )[0, len(ids) :].tolist()
        assert (out[: out.index(eos)] if eos in out else out) == tokens
    engine.close()
