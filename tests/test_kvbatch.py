"""The running batch's K/V (heads/kvbatch.py) on a tiny random Llama: decode steps append
into spare columns instead of re-concatenating the cache, with bit-identical logits through
joins and leaves."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from council.heads.engine import load_weights
from council.heads.kvbatch import SPARE, KVBatch, SpareLayer, kv_layers
from council.heads.prefill import prefill

PROMPTS = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16, 17, 18, 19]]
LATE = [[20, 21, 22, 23], [24, 25]]


def _step(model: Any, kv: KVBatch, ids: torch.Tensor) -> torch.Tensor:
    positions = kv.positions()
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=kv.grow(), position_ids=positions,
                    past_key_values=kv.cache, use_cache=True)  # fmt: skip
    return out.logits[:, -1]


def _join(model: Any, kv: KVBatch, prompts: list[list[int]], plain: bool) -> torch.Tensor:
    done = prefill(model, 0, prompts, [None] * len(prompts), None)
    kv.join(done.cache, done.mask)
    if plain:  # transformers' own DynamicLayer: torch.cat on every step
        assert kv.cache is not None
        for layer in kv.cache.layers:
            layer.__class__ = DynamicLayer
    return done.logits


def test_spare_columns_give_the_same_logits_as_concatenation_through_joins_and_leaves(
    tiny_model_dir: Path,
) -> None:
    model = load_weights(tiny_model_dir, threads=1, pack=True)[1]
    runs: list[list[torch.Tensor]] = []
    for plain in (True, False):
        kv, seen = KVBatch(), []
        logits = _join(model, kv, PROMPTS, plain)
        for step in range(2 * SPARE + 5):  # past two buffer refills
            if step == 10:
                kv.keep([0, 2])  # the second row leaves
                logits = logits[[0, 2]]
            if step == 20:
                seen.append(_join(model, kv, LATE, plain=False))  # two rows join mid-run
                logits = torch.cat([logits, seen[-1]])
            logits = _step(model, kv, logits.argmax(-1, keepdim=True))
            seen.append(logits)
        assert kv.cache is not None
        kinds = {type(layer) for layer in kv.cache.layers}
        assert kinds == ({DynamicLayer} if plain else {SpareLayer})
        runs.append(seen)
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_a_decode_step_copies_the_cache_only_when_its_spare_columns_run_out(
    tiny_model_dir: Path,
) -> None:
    model = load_weights(tiny_model_dir, threads=1, pack=True)[1]
    kv = KVBatch()
    logits = _join(model, kv, PROMPTS, plain=False)
    buffers = []
    for _ in range(3 * SPARE):
        logits = _step(model, kv, logits.argmax(-1, keepdim=True))
        assert kv.cache is not None
        buffers.append(kv_layers(kv.cache)[0][0].data_ptr())
    moves = sum(a != b for a, b in pairwise(buffers))
    assert moves == 2  # after the first step's copy, one copy per SPARE + 1 steps
    assert kv.cache is not None and kv_layers(kv.cache)[0][0].shape[-2] == kv.width
