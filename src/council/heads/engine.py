"""One loaded local model, shared by every head on it, answering in batches.

Heads that share a base model differ only by persona, temperature and seed, so their
requests are gathered for a few milliseconds and run as ONE `generate` call. Per-row
sampling (temperature, top-p, seed, token budget, stop strings) lives in a logits
processor, and generate itself runs greedily over the tokens that processor picks.

Each model's queue is bounded (admission.py). A row whose caller gave up (a timeout, a
disconnect) is `abandoned`: it ends at the next decode step, and one still waiting is
dropped before its batch. Prompts are templated and tokenized on the model's thread, with their
batch (tokenizing each on the way in would let a fan-out's rows trickle into separate batches).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)
from transformers.utils import logging as hf_logging

from council.heads.admission import Admission
from council.heads.packing import can_pack, pack_linears
from council.heads.sampling import nucleus
from council.types import Message

log = logging.getLogger(__name__)
BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in mixed-adapter batches


@dataclass
class Row:
    """One sequence to generate."""

    prompt_ids: list[int]  # empty: templated and tokenized from `messages` with its batch
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None
    abandoned: bool = False  # set on the event loop when the caller stops waiting
    messages: list[Message] | None = None
    # The continuous engine's extras: text deltas as they are generated (called on the event
    # loop), and how many forward passes this row took part in (tests watch it stop rising).
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


class RowSampler(LogitsProcessor):
    """Samples each row with its own settings and returns one-hot scores for greedy decode."""

    def __init__(self, rows: list[Row], prompt_len: int, eos_id: int, tokenizer: Any):
        self.rows = rows
        self.prompt_len = prompt_len
        self.eos_id = eos_id
        self.tokenizer = tokenizer
        self.generators = [
            torch.Generator().manual_seed(r.seed) if r.seed is not None else None for r in rows
        ]
        self.tail = max((len(s) for r in rows for s in r.stop), default=0) + 8
        # Per row, the model's own (temperature 1) log-probability of each token it emitted:
        # how sure the model was of what it said, whatever the row's sampling settings.
        self.logprobs: list[list[float]] = [[] for _ in rows]
        self.done = [False] * len(rows)

    def _stopped(self, i: int, generated: torch.Tensor) -> bool:
        stops = self.rows[i].stop
        if not stops or generated.numel() == 0:
            return False
        text = self.tokenizer.decode(generated[-self.tail :], skip_special_tokens=True)
        return any(s in text for s in stops)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_len
        picks = scores.argmax(dim=-1)
        sampled = []
        for i, row in enumerate(self.rows):
            if step > 0 and not self.done[i] and int(input_ids[i, -1]) == self.eos_id:
                self.done[i] = True
            if (
                row.abandoned
                or step >= row.max_new_tokens
                or self._stopped(i, input_ids[i, self.prompt_len :])
            ):
                picks[i] = self.eos_id
                self.done[i] = True
            elif row.temperature > 0:
                sampled.append(i)
        if sampled:
            picks[sampled] = self._sample(scores[sampled], sampled)
        live = [i for i in range(len(self.rows)) if not self.done[i]]
        if live:
            chosen = torch.log_softmax(scores[live].float(), dim=-1).gather(
                1, picks[live].unsqueeze(1)
            )
            for i, lp in zip(live, chosen.squeeze(1).tolist(), strict=True):
                self.logprobs[i].append(lp)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picks.unsqueeze(1), 0.0)
        return out  # type: ignore[return-value]

    def _sample(self, logits: torch.Tensor, which: list[int]) -> torch.Tensor:
        rows = [self.rows[i] for i in which]
        return nucleus(
            logits,
            [r.temperature for r in rows],
            [r.top_p for r in rows],
            [self.generators[i] for i in which],
        )


class LocalModel:
    """A transformers model in this process plus its micro-batcher."""

    def __init__(
        self,
        folder: Path,
        *,
        threads: int = 1,
        window_ms: float = 8.0,
        max_batch: int = 32,
        pack: bool = True,
        queue_size: int = 16,
    ):
        self.folder = folder
        self.pack = pack
        self.threads = threads
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch
        self.tokenizer: Any = None
        self.model: Any = None
        self.adapters: dict[str, Path] = {}
        self.batches = 0  # generate calls made (tests and /health read it)
        self.rows_done = 0
        self.rows_abandoned = 0  # rows whose caller left before they finished
        self.steps = 0  # forward passes run (the continuous engine counts; /health shows it)
        self.queue = Admission(folder.name, queue_size)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"gen-{folder.name}")
        # Templating and tokenizing: off the event loop, and not behind a running batch.
        self._prep = ThreadPoolExecutor(1, thread_name_prefix=f"prep-{folder.name}")
        self._pending: list[tuple[Row, asyncio.Future[RowResult]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_lock = asyncio.Lock()

    # loading -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self) -> None:
        if self.loaded:
            return
        torch.set_num_threads(self.threads)
        hf_logging.disable_progress_bar()  # progress bars would corrupt `--json` and server logs
        started = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(self.folder)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=torch.float32)
        model.eval()
        if self.pack and can_pack():
            pack_linears(model)
        self.tokenizer, self.model = tok, model
        log.info("loaded %s in %.1fs", self.folder, time.perf_counter() - started)

    async def ensure_loaded(self) -> None:
        if self.loaded:
            return
        async with self._load_lock:
            if not self.loaded:
                await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def attach_adapter(self, name: str, path: Path) -> None:
        """Load a PEFT LoRA folder onto the loaded base without reloading it."""
        from peft import PeftModel

        self.load()
        if name in self.adapters:
            if self.adapters[name] == path:
                return  # attached already (a preload and a deploy may both ask for it)
            raise ValueError(f"adapter {name!r} is already attached; versions are immutable")
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        self.model.eval()
        self.adapters[name] = path

    # prompts -------------------------------------------------------------------------
    def encode(self, messages: list[Message]) -> list[int]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=False
            )
        else:  # a base model: a plain transcript it can continue
            text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in chat)
            text += "Assistant:"
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    async def encode_async(self, messages: list[Message]) -> list[int]:
        """`encode` on the model's prep thread, so the event loop keeps serving."""
        await self.ensure_loaded()
        return await asyncio.get_running_loop().run_in_executor(self._prep, self.encode, messages)

    def token_pairs(self, r: RowResult) -> list[tuple[str, float]]:
        """(token text, logprob) for each token a row emitted."""
        return list(zip(r.token_texts, r.token_logprobs, strict=True))

    # batching ------------------------------------------------------------------------
    async def generate(self, rows: list[Row]) -> list[RowResult]:
        """Queue rows for the next batch and wait for their results."""
        await self.ensure_loaded()
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (e.g. a second asyncio.run)
            self._loop, self._pending, self._drainer = loop, [], None
        futures = []
        for row in rows:
            fut: asyncio.Future[RowResult] = loop.create_future()
            fut.add_done_callback(functools.partial(self._abandon, row))
            self._pending.append((row, fut))
            futures.append(fut)
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    def _abandon(self, row: Row, fut: asyncio.Future[RowResult]) -> None:
        """A cancelled wait (timeout, disconnect): the row stops at the next decode step."""
        if fut.cancelled():
            row.abandoned = True
            self.rows_abandoned += 1

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            await asyncio.sleep(self.window_s)  # let the rest of a fan-out arrive
            self._pending = [(r, f) for r, f in self._pending if not r.abandoned]
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if not batch:
                continue
            rows = [r for r, _ in batch]
            self.queue.running, started = len(rows), time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, rows)
            except Exception as exc:  # surfaced per row as an error by the caller
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            finally:
                self.queue.running, self.queue.batch_s = 0, time.perf_counter() - started
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)

    def run_batch(self, rows: list[Row]) -> list[RowResult]:
        """One generate call for all rows (runs on the model's own thread)."""
        self.load()
        # Tokenized here, off the event loop and with the batch: a fan-out's rows reach the
        # queue in one tick, so they share one batch (and the n samples of a call one encode).
        encoded: dict[int, list[int]] = {}
        for r in rows:
            if not r.prompt_ids and r.messages is not None:
                key = id(r.messages)
                if key not in encoded:
                    encoded[key] = self.encode(r.messages)
                r.prompt_ids = encoded[key]
        tok = self.tokenizer
        width = max(len(r.prompt_ids) for r in rows)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows])
        mask = torch.tensor(
            [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows]
        )
        eos = tok.eos_token_id
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max(r.max_new_tokens for r in rows) + 1,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        kwargs: dict[str, Any] = {}
        if self.adapters:
            kwargs["adapter_names"] = [r.adapter or BASE_ADAPTER for r in rows]
        elif any(r.adapter for r in rows):
            raise ValueError("a row asked for an adapter but none is attached to this model")
        sampler = RowSampler(rows, width, eos, tok)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=LogitsProcessorList([sampler]),
                **kwargs,
            )
        self.batches += 1
        self.rows_done += len(rows)
        return [
            self._finish(row, out[i, width:].tolist(), eos, sampler.logprobs[i])
            for i, row in enumerate(rows)
        ]

    def _finish(self, row: Row, generated: list[int], eos: int, logprobs: list[float]) -> RowResult:
        hit_eos = eos in generated
        tokens = generated[: generated.index(eos)] if hit_eos else generated
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        reason = "length" if len(tokens) >= row.max_new_tokens else "stop"
        for s in row.stop:
            if s in text:
                text, reason = text[: text.index(s)], "stop"
        kept = logprobs[: len(tokens)]
        texts = [str(self.tokenizer.decode([t], skip_special_tokens=False)) for t in tokens]
        return RowResult(text.strip(), len(row.prompt_ids), len(tokens), reason, kept, tokens,
                         texts)  # fmt: skip

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._prep.shutdown(wait=False, cancel_futures=True)
