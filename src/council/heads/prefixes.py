"""Automatic prefix caching: the keys and values of prompt heads many requests share.

Every prompt on a persona head opens with the same system turn (a few-shot head: the same
preamble and shots), so its K/V is the same for every request: computed once, then each
joining row prefills only the rest of its prompt on top of it (vLLM's automatic prefix
caching, SGLang's RadixAttention). A row's reusable prefix is its prompt rendered up to the
last message's text, cut after the last newline there (the system turn and the last turn's
header); it is used only when the full prompt's ids really start with those ids, since a
tokenizer may merge across the cut. The key is (adapter, scope, prefix ids): a LoRA changes
K/V, so nothing is shared across adapters; and a signed-in caller's prefixes (which may hold
their recalled memories or earlier turns) are theirs alone, so no one can time whether another
user's text was cached (vLLM's `cache_salt` answers the same side channel). With nobody signed
in (single-user mode) every prefix is shared. The store is an LRU bounded by cached tokens
(`prefix_cache_tokens`; 0 turns caching off).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

import torch
from transformers import DynamicCache

from council.heads.engine import Row, encode, prompt_text
from council.heads.kvbatch import kv_layers
from council.types import Message

# Stands in for the last message's text while its prompt is rendered; nothing a chat
# template does to text (trim, escape) changes it.
SENTINEL = "\u2063council-prefix-cut\u2063"

# A default that holds the packaged personas' system turns many times over (about 40 tokens
# each) and a few conversations' histories; SmolLM2-135M keeps ~46 KB of K/V per token.
PREFIX_CACHE_TOKENS = 2048
Key = tuple[str, str, tuple[int, ...]]  # (adapter or the base, the owner's scope, prefix ids)
KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, kv_heads, P, dim]


def reusable_prefix(
    tokenizer: Any,
    messages: list[Message] | None,
    tools: list[dict[str, Any]] | None,
    template: str | None,
    ids: list[int],
) -> list[int]:
    """The leading ids of a prompt that every prompt with the same earlier turns shares;
    empty when there is none, or when it does not tokenize as a prefix of `ids`."""
    if not messages:
        return []
    probe = [*messages[:-1], replace(messages[-1], content=SENTINEL)]
    text, special = prompt_text(tokenizer, probe, tools, template)
    at = text.find(SENTINEL)
    head = text[: text.rfind("\n", 0, at) + 1] if at > 0 else ""
    if not head:
        return []
    prefix: list[int] = tokenizer(head, add_special_tokens=special)["input_ids"]
    return prefix if len(prefix) < len(ids) and ids[: len(prefix)] == prefix else []


class PrefixCache:
    """Prefix K/V by (adapter, scope, ids), least recently used first out, at most `limit`
    tokens."""

    def __init__(self, limit: int):
        self.limit = limit
        self._entries: OrderedDict[Key, KV] = OrderedDict()
        self.tokens = 0  # cached now
        self.hits = 0  # rows that joined on a prefix someone else computed
        self.misses = 0  # prefixes prefilled
        self.evictions = 0

    def counters(self) -> dict[str, int]:
        return {
            "limit_tokens": self.limit,
            "tokens": self.tokens,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }

    def resolve(
        self, model: Any, pad: int, keys: list[Key | None], peft: bool
    ) -> tuple[list[KV | None], int]:
        """Each row's prefix K/V (None: no prefix), the missing ones prefilled together in
        one batch (`peft`: with each one's adapter named); and how many tokens that ran."""
        found: dict[Key, KV] = {}
        for key in dict.fromkeys(k for k in keys if k is not None):
            kv = self._entries.get(key)
            if kv is not None:
                self._entries.move_to_end(key)
                found[key] = kv
        missing = [k for k in dict.fromkeys(keys) if k is not None and k not in found]
        computed = 0
        if missing:
            for key, kv in zip(missing, _prefill(model, pad, missing, peft), strict=True):
                found[key] = kv
                self._store(key, kv)
                computed += len(key[-1])
            self.misses += len(missing)
        self.hits += sum(1 for k in keys if k is not None) - len(missing)
        return [found[k] if k is not None else None for k in keys], computed

    def _store(self, key: Key, kv: KV) -> None:
        size = len(key[-1])
        if size > self.limit:
            return  # used by the rows that asked for it, never kept
        self._entries[key] = kv
        self.tokens += size
        while self.tokens > self.limit:
            old, _ = self._entries.popitem(last=False)
            self.tokens -= len(old[-1])
            self.evictions += 1


def _prefill(model: Any, pad: int, keys: list[Key], peft: bool) -> list[KV]:
    """The K/V of each prefix under its own adapter, left-padded into one forward pass."""
    width = max(len(ids) for *_, ids in keys)
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for *_, p in keys])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for *_, p in keys])
    cache = DynamicCache()
    names = {"adapter_names": [a for a, *_ in keys]} if peft else {}
    with torch.inference_mode():
        model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
            **names,
        )
    layers = kv_layers(cache)
    # Copies: a view would keep the whole padded batch alive behind the cache's bound.
    return [
        [
            (k[i : i + 1, :, width - len(p) :].clone(), v[i : i + 1, :, width - len(p) :].clone())
            for k, v in layers
        ]
        for i, (*_, p) in enumerate(keys)
    ]


def encode_rows(tokenizer: Any, rows: list[Row], find: bool) -> list[list[int]]:
    """Template and tokenize the rows that came as messages (a call's n samples: once), and
    each row's reusable prefix (none when `find` is off or the row came as ids)."""
    encoded: dict[tuple[int, str | None], tuple[list[int], list[int]]] = {}
    prefixes: list[list[int]] = []
    for r in rows:
        if r.prompt_ids or r.messages is None:
            prefixes.append([])
            continue
        key = (id(r.messages), r.template)
        if key not in encoded:
            ids = encode(tokenizer, r.messages, r.tools, r.template)
            found = reusable_prefix(tokenizer, r.messages, r.tools, r.template, ids) if find else []
            encoded[key] = (ids, found)
        r.prompt_ids, prefix = encoded[key]
        prefixes.append(prefix)
    return prefixes
