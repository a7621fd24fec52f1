"""Prefix caching on the tiny model: the same greedy answers as with the cache off, fewer
prompt tokens through the model on a second request, one entry per adapter, eviction at the
bound, and no cache where the prompt head does not tokenize as a prefix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.heads.continuous import LocalModel
from council.heads.engine import Row, RowResult
from council.heads.prefixes import reusable_prefix
from council.types import Message

HANG_GUARD_S = 60.0  # far above any honest latency here; only a wedged engine reaches it
PERSONAS = [
    "You are a precise assistant. Answer correctly and briefly.",
    "You are a careful reasoner. Think step by step, then answer.",
    "You are a concise assistant. Reply in one or two sentences.",
]
QUESTIONS = ["What is 2 + 2?", "Name three colours, please, in order of wavelength."]


@pytest.fixture
def engines(tiny_model_dir: Path) -> Iterator[tuple[LocalModel, LocalModel]]:
    """The same weights twice: prefix cache on, and off (the reference)."""
    on = LocalModel(tiny_model_dir, window_ms=1)
    off = LocalModel(tiny_model_dir, window_ms=1, prefix_cache_tokens=0)
    yield on, off
    on.close()
    off.close()


def council(question: str, max_new_tokens: int = 12, **kw: Any) -> list[Row]:
    """A ballot's rows: every persona on one question, templated on the model's thread."""
    return [
        Row(
            [],
            messages=[Message("system", p), Message("user", question)],
            max_new_tokens=max_new_tokens,
            **kw,
        )
        for p in PERSONAS
    ]


async def answers(engine: LocalModel, rows: list[Row]) -> list[RowResult]:
    return await asyncio.wait_for(engine.generate(rows), HANG_GUARD_S)


def same(got: list[RowResult], want: list[RowResult]) -> None:
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    assert [g.text for g in got] == [w.text for w in want]
    for g, w in zip(got, want, strict=True):
        assert g.tokens_in == w.tokens_in
        assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-3)


async def test_cached_prefixes_give_the_same_greedy_answers_with_fewer_prompt_tokens(
    engines: tuple[LocalModel, LocalModel],
) -> None:
    on, off = engines
    rows = [r for q in QUESTIONS for r in council(q)]
    want = await answers(off, rows)
    cold = await answers(on, [r for q in QUESTIONS for r in council(q)])
    same(cold, want)
    stats = on.prefixes.counters()
    assert stats["misses"] == len(PERSONAS)  # one prefill per persona, shared by both asks
    assert stats["hits"] == len(rows) - len(PERSONAS) and stats["entries"] == len(PERSONAS)
    assert 0 < stats["tokens"] <= on.prefixes.limit
    first_on, first_off = on.prefill_tokens, off.prefill_tokens
    assert first_off == sum(len(r.prompt_ids) for r in rows)
    warm = await answers(on, [r for q in QUESTIONS for r in council(q)])  # a second request
    same(warm, want)
    assert on.prefixes.counters()["hits"] == stats["hits"] + len(rows)
    assert on.prefixes.counters()["misses"] == stats["misses"]  # nothing computed again
    # Only each row's own tail ran: far fewer tokens than the prompts hold.
    assert on.prefill_tokens - first_on < first_off - stats["tokens"]


async def test_rows_join_a_running_batch_on_cached_prefixes(
    engines: tuple[LocalModel, LocalModel],
) -> None:
    on, off = engines
    story = [Message("user", "Tell me a long story about rivers.")]
    want = [
        (await answers(off, [Row([], messages=story, max_new_tokens=40)]))[0],
        *await answers(off, council(QUESTIONS[0])),
        *await answers(off, council(QUESTIONS[1])),
    ]
    await answers(on, council(QUESTIONS[1]))  # QUESTIONS[1]'s personas: cached already
    long = Row([], messages=story, max_new_tokens=40)
    first = asyncio.create_task(on.generate([long]))
    deadline = time.monotonic() + HANG_GUARD_S
    while long.steps < 8:
        assert time.monotonic() < deadline, "the long row never got going"
        await asyncio.sleep(0.005)
    assert not first.done()  # mid-generation when the councils arrive
    joining = [council(QUESTIONS[0]), council(QUESTIONS[1])]
    late = await asyncio.wait_for(
        asyncio.gather(on.generate(joining[0]), on.generate(joining[1])), HANG_GUARD_S
    )
    [done] = await asyncio.wait_for(first, HANG_GUARD_S)
    same([done, *late[0], *late[1]], want)
    assert all(r.joined_step > long.joined_step for r in [*joining[0], *joining[1]])


async def test_adapters_never_share_a_prefix(
    engines: tuple[LocalModel, LocalModel], tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    on, off = engines
    for i, name in enumerate(("v1", "v2")):
        torch.manual_seed(i)
        lora = get_peft_model(
            AutoModelForCausalLM.from_pretrained(on.folder),
            LoraConfig(
                r=4, lora_alpha=8, init_lora_weights=False, target_modules=["k_proj", "v_proj"]
            ),
        )
        with torch.no_grad():  # make each adapter change the keys and values
            for pname, p in lora.named_parameters():
                if "lora_B" in pname:
                    p.normal_(0, 2.0)
        lora.save_pretrained(tmp_path / name)
        for engine in engines:
            await asyncio.get_running_loop().run_in_executor(
                engine._executor, engine.attach_adapter, name, tmp_path / name
            )

    def mixed() -> list[Row]:
        return [r for a in (None, "v1", "v2") for r in council(QUESTIONS[0], adapter=a)]

    want = await answers(off, mixed())
    got = await answers(on, mixed())
    same(got, want)
    texts = [r.text for r in got]
    assert len({texts[0], texts[3], texts[6]}) == 3  # one persona: base, v1, v2 differ
    assert on.prefixes.counters()["entries"] == 3 * len(PERSONAS)  # per adapter and persona
    same(await answers(on, mixed()), want)  # and each row found its own adapter's entry
    assert on.prefixes.counters()["misses"] == 3 * len(PERSONAS)


async def test_the_cache_evicts_the_least_recently_used_at_its_bound(
    tiny_model_dir: Path,
) -> None:
    probe = LocalModel(tiny_model_dir)
    probe.load()
    one = [
        len(
            reusable_prefix(
                probe.tokenizer,
                [Message("system", p), Message("user", "x")],
                None,
                None,
                probe.encode([Message("system", p), Message("user", "x")]),
            )
        )
        for p in PERSONAS
    ]
    probe.close()
    bound = one[0] + one[1]  # room for the first two personas' prefixes, not the third
    on = LocalModel(tiny_model_dir, window_ms=1, prefix_cache_tokens=bound)
    off = LocalModel(tiny_model_dir, window_ms=1, prefix_cache_tokens=0)
    try:
        want = await answers(off, council(QUESTIONS[0]))
        same(await answers(on, council(QUESTIONS[0])), want)
        stats = on.prefixes.counters()
        assert stats["tokens"] <= bound and stats["evictions"] >= 1
        assert stats["entries"] < len(PERSONAS)
        same(await answers(on, council(QUESTIONS[0])), want)  # evicted ones computed again
        assert on.prefixes.counters()["misses"] > stats["misses"]
        assert on.prefixes.counters()["tokens"] <= bound
        tiny = LocalModel(tiny_model_dir, window_ms=1, prefix_cache_tokens=min(one) - 1)
        same(await answers(tiny, council(QUESTIONS[0])), want)  # used, never kept
        assert tiny.prefixes.counters()["entries"] == 0 and tiny.prefixes.tokens == 0
        tiny.close()
    finally:
        on.close()
        off.close()


async def test_a_prompt_head_that_does_not_tokenize_as_a_prefix_is_not_cached(
    engines: tuple[LocalModel, LocalModel],
) -> None:
    on, off = engines
    on.load()
    # The user's text opens with a blank line: it merges with the template's "\n" after the
    # user header, so the prompt's ids do not start with the rendered head's ids.
    merged = [Message("system", PERSONAS[0]), Message("user", "\n\nWhat is 2 + 2?")]
    ids = on.encode(merged)
    assert reusable_prefix(on.tokenizer, merged, None, None, ids) == []
    plain = [Message("system", PERSONAS[0]), Message("user", "What is 2 + 2?")]
    found = reusable_prefix(on.tokenizer, plain, None, None, on.encode(plain))
    assert found and on.encode(plain)[: len(found)] == found
    assert on.tokenizer.decode(found).endswith("user\n")  # the system turn and user header

    want = await answers(off, [Row([], messages=merged, max_new_tokens=12)])
    got = await answers(on, [Row([], messages=merged, max_new_tokens=12)])
    same(got, want)
    assert on.prefixes.counters()["hits"] == on.prefixes.counters()["misses"] == 0
    assert on.prefill_tokens == len(ids)  # the whole prompt ran
    # Beside cached rows in one batch, it still runs whole and answers the same.
    mixed = [*council(QUESTIONS[0]), Row([], messages=merged, max_new_tokens=12)]
    want = await answers(off, [*council(QUESTIONS[0]), Row([], messages=merged, max_new_tokens=12)])
    same(await answers(on, mixed), want)


@pytest.mark.parametrize("limit", [512, 0])
def test_the_setting_reaches_the_engine_and_health_shows_the_counters(
    tiny_model_dir: Path, tmp_path: Path, limit: int
) -> None:
    from fastapi.testclient import TestClient

    from council.server import create_app
    from tests.helpers import local_specs, settings_with

    s = settings_with(
        local_specs(tiny_model_dir, 3, max_tokens=4),
        prefix_cache_tokens=limit,
        data_dir=tmp_path,
    )
    ask = {"model": "council", "messages": [{"role": "user", "content": "2+2?"}]}
    with TestClient(create_app(s)) as client:
        for _ in range(2):
            assert client.post("/v1/chat/completions", json=ask).status_code == 200
        [model] = client.get("/health").json()["models"]
    cache = model["prefix_cache"]
    assert cache["limit_tokens"] == limit and model["prefill_tokens"] > 0
    if limit:  # three personas: prefilled once each, then found by the second request
        assert (cache["misses"], cache["hits"], cache["entries"]) == (3, 3, 3)
        assert 0 < cache["tokens"] <= limit
    else:
        assert (cache["misses"], cache["hits"], cache["tokens"]) == (0, 0, 0)


async def test_a_few_shot_templates_shots_are_one_shared_prefix(
    engines: tuple[LocalModel, LocalModel],
) -> None:
    on, off = engines

    def asks() -> list[Row]:
        return [
            Row([], messages=[Message("user", q)], template="fewshot_qa", max_new_tokens=8)
            for q in QUESTIONS
        ]

    want = await answers(off, asks())
    got = await answers(on, asks())
    same(got, want)
    stats = on.prefixes.counters()
    assert (stats["misses"], stats["hits"], stats["entries"]) == (1, 1, 1)  # the shots, once
    assert stats["tokens"] > 0.8 * min(r.tokens_in for r in got)  # most of each prompt


async def test_signed_in_callers_never_share_a_prefix(
    engines: tuple[LocalModel, LocalModel],
) -> None:
    """A prefix may hold a user's recalled memories or earlier turns, and a hit shows in
    latency: a signed-in caller's rows use only their own entries; single-user rows share."""
    from council.heads.local import cache_scope
    from council.users.caller import Caller, bind

    on, off = engines
    scopes = {}
    for who in ("ann", "bob"):
        with bind(Caller(who, key=f"key-{who}")):
            scopes[who] = cache_scope()
    with bind(Caller("local")):  # single-user mode: nobody signed in
        scopes["local"] = cache_scope()
    assert scopes == {"ann": "ann", "bob": "bob", "local": ""}

    want = await answers(off, council(QUESTIONS[0]))
    order = ["ann", "bob", "ann", ""]
    for n, scope in enumerate(order, start=1):
        same(await answers(on, council(QUESTIONS[0], cache_scope=scope)), want)
        assert on.prefixes.counters()["entries"] == len(set(order[:n])) * len(PERSONAS)
    counters = on.prefixes.counters()
    assert counters["misses"] == 3 * len(PERSONAS)  # ann, bob, and the shared scope
    assert counters["hits"] == len(PERSONAS)  # only ann's second request found her own
