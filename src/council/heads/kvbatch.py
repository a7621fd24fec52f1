"""The running batch's KV cache: left-padded rows that join by re-padding and leave by index.

Each row's keys and values sit right-aligned in one `DynamicCache`; `mask` marks which
columns are real tokens. A joining group is prefilled on its own, then both caches are
padded on the left to one width and stacked; a leaving row is dropped with an index, and
columns no row uses any more are trimmed from the left. Padded columns are masked out of
attention, so a row's tokens do not depend on who shares its batch.

A decode step appends one column per layer. transformers' DynamicLayer does that with
torch.cat, copying the whole cache every step; the running batch's layers (`SpareLayer`)
write it into spare columns instead and copy only when those run out (every `SPARE` steps)
or when a join or a leave has rebuilt the tensors. Attention reads the same values, so the
logits are bit-identical; a 40-row step at 400 tokens of context ran 1.25x faster
(benchmarks/kv_growth.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from council.errors import ConfigError

SPARE = 32  # columns kept free past the last token: one copy per 32 decode steps


class KVBatch:
    """One DynamicCache plus its attention mask, for the rows generating now."""

    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def positions(self) -> torch.Tensor:
        """Where each row's next token goes: the count of its real tokens so far."""
        return self.mask.sum(dim=1, keepdim=True)

    def grow(self) -> torch.Tensor:
        """The mask for one more token per row (the decode step appends its column)."""
        self.mask = torch.cat([self.mask, torch.ones(self.rows, 1, dtype=torch.long)], dim=1)
        return self.mask

    def join(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Stack a freshly prefilled group under the running rows."""
        if self.cache is None or self.rows == 0:
            for layer in cache.layers:
                if type(layer) is DynamicLayer:  # the running batch appends in place from now
                    layer.__class__ = SpareLayer
            self.cache, self.mask = cache, mask
            return
        width = max(self.width, int(mask.shape[1]))
        mine, theirs = width - self.width, width - int(mask.shape[1])
        for a, b in zip(_layers(self.cache), _layers(cache), strict=True):
            (ak, av), (bk, bv) = _kv(a), _kv(b)
            a.keys = torch.cat([_pad(ak, mine), _pad(bk, theirs)], dim=0)
            a.values = torch.cat([_pad(av, mine), _pad(bv, theirs)], dim=0)
        self.mask = torch.cat([F.pad(self.mask, (mine, 0)), F.pad(mask, (theirs, 0))], dim=0)

    def keep(self, indices: list[int]) -> None:
        """Keep only these rows (in this order); trim columns no kept row uses."""
        if not indices:
            self.cache, self.mask = None, torch.zeros(0, 0, dtype=torch.long)
            return
        if indices == list(range(self.rows)):
            return
        assert self.cache is not None
        index = torch.tensor(indices)
        mask = self.mask[index]
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else mask.shape[1]
        for layer in _layers(self.cache):
            keys, values = _kv(layer)
            layer.keys, layer.values = keys[index, :, first:, :], values[index, :, first:, :]
        self.mask = mask[:, first:]


class SpareLayer(DynamicLayer):
    """A DynamicLayer that appends into spare columns of a larger buffer, not by torch.cat.

    `keys` and `values` are views of the buffer's first columns. When they are replaced from
    outside (KVBatch.join and keep rebuild them), the next update copies them into a new
    buffer with SPARE free columns."""

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        keys, values = self.keys, self.values
        assert keys is not None and values is not None
        have = int(keys.shape[-2]) if keys.numel() else 0
        need = have + int(key_states.shape[-2])
        if not self._fits(keys, key_states, need):
            shape = (*key_states.shape[:2], need + SPARE, key_states.shape[-1])
            self._kbuf, self._vbuf = key_states.new_empty(shape), value_states.new_empty(shape)
            if have:
                self._kbuf[:, :, :have] = keys
                self._vbuf[:, :, :have] = values
        assert self._kbuf is not None and self._vbuf is not None
        self._kbuf[:, :, have:need] = key_states
        self._vbuf[:, :, have:need] = value_states
        self.keys, self.values = self._kbuf[:, :, :need], self._vbuf[:, :, :need]
        return self.keys, self.values

    def _fits(self, keys: torch.Tensor, new: torch.Tensor, need: int) -> bool:
        """Whether `keys` is still the start of this layer's buffer, with room for `need`."""
        buf = self._kbuf
        if buf is None or buf.shape[-2] < need or buf.shape[:2] != new.shape[:2]:
            return False
        return not keys.numel() or (
            keys.data_ptr() == buf.data_ptr() and keys.stride() == buf.stride()
        )


def kv_layers(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values, [rows, kv_heads, seq, head_dim]."""
    return [_kv(layer) for layer in _layers(cache)]


def _pad(t: torch.Tensor, left: int) -> torch.Tensor:
    """Zero columns before a [rows, heads, seq, dim] tensor's tokens (masked out anyway)."""
    return F.pad(t, (0, 0, left, 0)) if left else t


def _layers(cache: DynamicCache) -> list[DynamicLayer]:
    """The cache's layers, each a plain growing tensor pair (all this module can re-pad)."""
    layers = list(cache.layers)
    for layer in layers:
        if not isinstance(layer, DynamicLayer) or layer.is_sliding:
            raise ConfigError(
                f"This model keeps a {type(layer).__name__} cache, which the continuous engine "
                "cannot re-pad; serve this model through an OpenAI-compatible server (an "
                "`openai` head) instead."
            )
    return layers  # type: ignore[return-value]


def _kv(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    assert layer.keys is not None and layer.values is not None, "a prefilled layer has both"
    return layer.keys, layer.values
