"""The running batch's KV cache: left-padded rows that join by re-padding and leave by index.

Each row's keys and values sit right-aligned in one `DynamicCache`; `mask` marks which
columns are real tokens. A joining group is prefilled on its own, then both caches are
padded on the left to one width and stacked; a leaving row is dropped with an index, and
columns no row uses any more are trimmed from the left. Padded columns are masked out of
attention, so a row's tokens do not depend on who shares its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from council.errors import ConfigError


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
