"""A joining group's prefill: each row's prompt on top of its cached prefix, in one batch.

The group keeps the running batch's layout (kvbatch.py): left padding, then a row's tokens
with no gap. Every row feeds the forward pass the same number of input columns, S: the
longest uncached tail in the group. A row whose cached prefix is longer than its prompt
minus S starts its input inside that prefix (those few prefix tokens run again, in columns
that would otherwise hold padding), so cached and computed tokens meet with no hole: RoPE
positions and a sliding window's distances stay those of one contiguous prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from council.heads.prefixes import KV


@dataclass
class Prefilled:
    cache: DynamicCache
    mask: torch.Tensor  # [rows, columns]: 1 where a real token sits
    logits: torch.Tensor  # [rows, vocab] at each row's last prompt token
    tokens: int  # prompt tokens run through the model (cached ones not counted)


def prefill(
    model: Any,
    pad: int,
    prompts: list[list[int]],
    prefixes: list[KV | None],
    adapter_names: list[str] | None,
) -> Prefilled:
    """Prefill `prompts`, each after its prefix's K/V (None: the whole prompt runs)."""
    lengths = [0 if kv is None else int(kv[0][0].shape[2]) for kv in prefixes]
    width = max(len(p) - n for p, n in zip(prompts, lengths, strict=True))
    cached = [max(0, len(p) - width) for p in prompts]  # never more than the prefix
    past = max(cached)
    ids = torch.tensor(
        [[pad] * (width - len(p) + c) + p[c:] for p, c in zip(prompts, cached, strict=True)]
    )
    mask = torch.tensor(
        [[0] * (past + width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long
    )
    cache = DynamicCache(_stacked(prefixes, cached, past)) if past else DynamicCache()
    names = {"adapter_names": adapter_names} if adapter_names is not None else {}
    with torch.inference_mode():
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0)[:, past:],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
            **names,
        )
    tokens = sum(len(p) - c for p, c in zip(prompts, cached, strict=True))
    return Prefilled(cache, mask, out.logits[:, -1], tokens)


def _stacked(
    prefixes: list[KV | None], cached: list[int], past: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, each row's first `cached` prefix columns, right-aligned in `past` columns
    (zeros before them, masked out)."""
    some = next(kv for kv in prefixes if kv is not None)
    layers = []
    for layer, (k0, v0) in enumerate(some):
        keys, values = [], []
        for kv, c in zip(prefixes, cached, strict=True):
            if kv is None or c == 0:
                keys.append(k0.new_zeros((*k0.shape[:2], past, *k0.shape[3:])))
                values.append(v0.new_zeros((*v0.shape[:2], past, *v0.shape[3:])))
                continue
            k, v = kv[layer]
            keys.append(F.pad(k[:, :, :c], (0, 0, past - c, 0)))
            values.append(F.pad(v[:, :, :c], (0, 0, past - c, 0)))
        layers.append((torch.cat(keys), torch.cat(values)))
    return layers
