"""A local model's rows and weights: what the engine (continuous.py) generates from.

`Row` is one sequence to generate and `RowResult` what came of it. The functions load the
weights (oneDNN-packed fp32 or bf16 Linears, packing.py), attach PEFT adapters onto the loaded base,
template a chat into prompt ids, and turn a row's tokens into its result; the engine calls
them on the model's own thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from council.heads.completion import render
from council.heads.packing import can_pack, pack_linears, packed_dtype
from council.loading import LOADING
from council.types import Message

log = logging.getLogger(__name__)
BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in mixed-adapter batches


@dataclass
class Row:
    """One sequence to generate."""

    prompt_ids: list[int]  # empty: templated and tokenized from `messages` when it joins
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None
    abandoned: bool = False  # set on the event loop when the caller stops waiting
    messages: list[Message] | None = None
    tools: list[dict[str, Any]] | None = None  # for the chat template's own tool format
    template: str | None = None  # a completion-style prompt (heads/completion.py), not chat
    cache_scope: str = ""  # whose cached prompt prefixes this row may use (heads/prefixes.py)
    # Structured output: masks this row's logits before each pick (structured/grammar.py);
    # anything with mask(logits_row), advance(token_id) and done.
    constraint: Any = None
    # Text deltas as they are generated (called on the event loop), and how many forward
    # passes this row took part in (tests watch it stop rising).
    on_text: Callable[[str], None] | None = None
    steps: int = 0
    joined_step: int = -1  # the engine's step count when this row was prefilled


@dataclass
class RowResult:
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str
    token_logprobs: list[float] = field(default_factory=list)  # the model's own, per token
    token_ids: list[int] = field(default_factory=list)
    token_texts: list[str] = field(default_factory=list)  # decoded on the model's thread
    stop_sequence: str | None = None  # the stop string that ended the text, if one did


def load_weights(
    folder: Path, *, threads: int, pack: bool, weight_dtype: str = "float32"
) -> tuple[Any, Any]:
    """(tokenizer, model) from a transformers folder, ready for batched CPU inference; packed
    Linear layers hold `weight_dtype`'s copy (packing.py), the model itself stays fp32."""
    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()  # progress bars would corrupt `--json` and server logs
    started = time.perf_counter()
    with LOADING:  # two loads at once on two threads untie weights (council/loading.py)
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    dtype = torch.float32
    if pack and can_pack():
        dtype = packed_dtype(weight_dtype)
        pack_linears(model, dtype)
    log.info("loaded %s (%s layers) in %.1fs", folder, dtype, time.perf_counter() - started)
    return tok, model


def attach_adapter(model: Any, adapters: dict[str, Path], name: str, path: Path) -> Any:
    """The model with a PEFT LoRA folder loaded onto it as `name` (recorded in `adapters`)."""
    from peft import PeftModel

    if name in adapters:
        if adapters[name] == path:
            return model  # attached already (a preload and a deploy may both ask for it)
        raise ValueError(f"adapter {name!r} is already attached; versions are immutable")
    with LOADING:
        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=name)
        else:
            model = PeftModel.from_pretrained(model, str(path), adapter_name=name)
    model.eval()
    adapters[name] = path
    return model


def encode(
    tokenizer: Any,
    messages: list[Message],
    tools: list[dict[str, Any]] | None = None,
    template: str | None = None,
) -> list[int]:
    """Prompt ids: a completion template (a base model's few-shot transcript, after its
    <bos>), the chat template (with the tools in its own format), or a plain transcript."""
    text, special = prompt_text(tokenizer, messages, tools, template)
    ids: list[int] = tokenizer(text, add_special_tokens=special)["input_ids"]
    return ids


def prompt_text(
    tokenizer: Any,
    messages: list[Message],
    tools: list[dict[str, Any]] | None = None,
    template: str | None = None,
) -> tuple[str, bool]:
    """The prompt as text, and whether tokenizing it adds the tokenizer's special tokens
    (a completion template's <bos>; a chat template writes its own)."""
    if template is not None:
        return render(template, messages), True
    chat = [m.to_openai() for m in messages]
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            chat, tools=tools, add_generation_prompt=True, tokenize=False
        )
        return str(text), False
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in chat)
    return text + "Assistant:", False


def finish(
    tokenizer: Any, row: Row, generated: list[int], eos: int, logprobs: list[float]
) -> RowResult:
    """A row's result from its tokens: cut at EOS and at its first stop string."""
    hit_eos = eos in generated
    tokens = generated[: generated.index(eos)] if hit_eos else generated
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    reason = "length" if len(tokens) >= row.max_new_tokens else "stop"
    matched = None  # the stop string that ended the text (the last cut is the earliest)
    for s in row.stop:
        if s in text:
            text, reason, matched = text[: text.index(s)], "stop", s
    kept = logprobs[: len(tokens)]
    texts = [str(tokenizer.decode([t], skip_special_tokens=False)) for t in tokens]
    return RowResult(
        text.strip(), len(row.prompt_ids), len(tokens), reason, kept, tokens, texts, matched
    )
