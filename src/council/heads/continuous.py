"""One loaded local model, shared by every head on it: rows join and leave its running batch.

transformers' own continuous batching (`generate_batch`, ContinuousBatchingManager) was not
used: it packs every request into ONE flattened sequence (batch dimension 1, paged cache),
so PEFT's per-row `adapter_names` cannot apply, and it has one seed for the whole manager and
no stop strings. This engine drives the model's forward pass itself over `KVBatch`:

  each step, on the model's thread:  drop rows that ended or whose caller left
                                     prefill rows that arrived (one group, then stacked in)
                                     decode one token for every running row
  between steps, on the event loop:  finished rows resolve, text deltas reach streams,
                                     whole requests queue for the next step

A request's rows join together: a call's n samples, and a ballot's members on this model
(its reservation, admission.py, says which rows belong to it), so a council is never split
across steps. The first waiting request joins as soon as one of the `max_batch` slots frees,
even if it overfills them by less than its own size; later ones join while they fit. Each
row's token budget (max_tokens, capped by max_tokens_cap) bounds how long it holds its slot:
a long row holds one slot, never the others' turn.

Decode steps run back to back on the model's thread until the loop has work (a row ended,
streams text, or a request can join) or a quarter second passed, so an adapter attach (same
thread) waits that long at most. A row whose caller gave up (a timeout, a disconnect) is
`abandoned` and dropped at the next step (its flag is read on the thread). Prefill is not
chunked: a joining prompt delays the running rows by one prefill. Prompts are templated and
tokenized on the model's thread when their rows join; the head each shares with its persona's
other prompts (its system turn) comes from the prefix cache (prefixes.py), so a joining row
prefills only its own tail (prefill.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from council.heads.admission import Admission, fanout
from council.heads.engine import (
    BASE_ADAPTER,
    Row,
    RowResult,
    attach_adapter,
    encode,
    finish,
    load_weights,
)
from council.heads.joining import Live, admit, joinable
from council.heads.kvbatch import KVBatch
from council.heads.packing import layers_dtype
from council.heads.prefill import prefill
from council.heads.prefixes import PREFIX_CACHE_TOKENS, PrefixCache, encode_rows
from council.heads.sampling import nucleus
from council.heads.threads import ThreadTuner, cores
from council.heads.tooluse import TemplateTools
from council.structured.grammar import Constraint, Grammars
from council.types import Message

STEP_BUDGET_S = 0.25  # decode steps run back to back on the model's thread for at most this


class LocalModel:
    """A transformers model in this process, its bounded queue and its running batch."""

    def __init__(
        self,
        folder: Path,
        *,
        threads: int = 1,
        window_ms: float = 8.0,
        max_batch: int = 64,
        pack: bool = True,
        weight_dtype: str = "float32",
        adaptive_threads: bool = False,
        queue_size: int = 16,
        prefix_cache_tokens: int = PREFIX_CACHE_TOKENS,
    ):
        self.folder = folder
        self.pack = pack
        self.weight_dtype = weight_dtype  # "float32", "bfloat16" or "auto" (packing.py)
        self.tuner = ThreadTuner(cores()) if adaptive_threads and cores() > 1 else None
        self.threads = threads
        self.window_s = window_ms / 1000.0  # an idle engine waits this long for a fan-out
        self.max_batch = max_batch
        self.tokenizer: Any = None
        self.model: Any = None
        self.adapters: dict[str, Path] = {}
        self.batches = 0  # prefills run (tests and /health read it)
        self.rows_done = 0
        self.rows_abandoned = 0  # rows whose caller left before they finished
        self.steps = 0  # forward passes run (/health shows it)
        self.prefill_tokens = 0  # prompt tokens run through the model (cached ones are not)
        self.prefixes = PrefixCache(prefix_cache_tokens)  # prompt heads' K/V (prefixes.py)
        self.queue = Admission(folder.name, queue_size)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"gen-{folder.name}")
        # Templating and tokenizing for callers that need ids: off the loop, not behind a step.
        self._prep = ThreadPoolExecutor(1, thread_name_prefix=f"prep-{folder.name}")
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_lock = asyncio.Lock()
        self.kv = KVBatch()
        self._live: list[Live] = []  # in KV row order
        self._waiting: list[Live] = []
        self._ended: list[Live] = []  # finished on the model's thread, settled on the loop
        self._grammars: Grammars | None = None  # built on first structured request (~1 s)

    # loading and prompts ---------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self) -> None:
        if not self.loaded:
            self.tokenizer, self.model = load_weights(
                self.folder, threads=self.threads, pack=self.pack, weight_dtype=self.weight_dtype
            )

    @property
    def serving_dtype(self) -> str | None:
        """The packed layers' dtype once loaded, "bfloat16" or "float32" ("auto" picks by CPU)."""
        return layers_dtype(self.model) if self.loaded else None

    async def ensure_loaded(self) -> None:
        if self.loaded:
            return
        async with self._load_lock:
            if not self.loaded:
                await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def attach_adapter(self, name: str, path: Path) -> None:
        """Load a PEFT LoRA folder onto the loaded base without reloading it."""
        self.load()
        self.model = attach_adapter(self.model, self.adapters, name, path)

    def encode(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        template: str | None = None,
    ) -> list[int]:
        return encode(self.tokenizer, messages, tools, template)

    def template_tools(self) -> TemplateTools:
        """What the loaded chat template can take of tools and tool turns."""
        return TemplateTools.of(self.tokenizer.chat_template if self.tokenizer else None)

    async def encode_async(self, messages: list[Message], template: str | None = None) -> list[int]:
        """`encode` on the model's prep thread, so the event loop keeps serving."""
        await self.ensure_loaded()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._prep, self.encode, messages, None, template)

    async def constraints(
        self, schema: dict[str, Any], n: int, or_text: bool = False
    ) -> list[Constraint]:
        """n fresh grammar states for a JSON schema (`or_text`: or free text), built on the
        prep thread."""
        await self.ensure_loaded()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._prep, self._constraints, schema, n, or_text)

    def _constraints(self, schema: dict[str, Any], n: int, or_text: bool) -> list[Constraint]:
        if self._grammars is None:
            self._grammars = Grammars(self.tokenizer, self.model.config.vocab_size)
        return [self._grammars.constraint(schema, or_text) for _ in range(n)]

    def token_pairs(self, r: RowResult) -> list[tuple[str, float]]:
        """(token text, logprob) for each token a row emitted."""
        return list(zip(r.token_texts, r.token_logprobs, strict=True))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._prep.shutdown(wait=False, cancel_futures=True)

    # the running batch, on the event loop ----------------------------------------------
    async def generate(self, rows: list[Row]) -> list[RowResult]:
        """Queue rows to join the running batch at the next step; wait for their results."""
        await self.ensure_loaded()
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (e.g. a second asyncio.run)
            self._loop, self._drainer = loop, None
            self._waiting, self._live, self.kv = [], [], KVBatch()
        group, size = fanout(self.queue) or (object(), len(rows))
        futures = []
        for row in rows:
            fut: asyncio.Future[RowResult] = loop.create_future()
            fut.add_done_callback(functools.partial(self._abandon, row))
            gen = torch.Generator().manual_seed(row.seed) if row.seed is not None else None
            self._waiting.append(Live(row, fut, gen, group=group, size=max(size, len(rows))))
            futures.append(fut)
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drive())
        return list(await asyncio.gather(*futures))

    def _abandon(self, row: Row, fut: asyncio.Future[RowResult]) -> None:
        """A cancelled wait (timeout, disconnect): the row stops at the next step."""
        if fut.cancelled():
            row.abandoned = True
            self.rows_abandoned += 1

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting or self._live:
            if not self._live:
                await asyncio.sleep(self.window_s)  # idle: let the rest of a fan-out arrive
            self._waiting = [w for w in self._waiting if not w.row.abandoned]
            joining = admit(self._waiting, len(self._live), self.max_batch)
            self._waiting = [w for w in self._waiting if w not in joining]
            self.queue.running = len(self._live) + len(joining)
            try:
                await loop.run_in_executor(self._executor, self.step, joining)
            except Exception as exc:  # the batch is lost; each caller gets the error
                for live in self._live + joining:
                    live.error = exc
                self._ended += self._live + [j for j in joining if j not in self._ended]
                self._live, self.kv = [], KVBatch()
            self._settle()
        self.queue.running = 0

    def _settle(self) -> None:
        """On the loop: stream deltas, resolve finished rows."""
        for live in self._live + self._ended:
            if live.delta and live.row.on_text is not None and not live.fut.done():
                live.row.on_text(live.delta)
            live.delta = ""
        for live in self._ended:
            if live.fut.done():
                continue
            if live.error is not None:
                live.fut.set_exception(live.error)
            else:
                assert live.result is not None
                live.fut.set_result(live.result)
                self.queue.batch_s = time.perf_counter() - live.joined
        self._ended = []
        self.queue.running = len(self._live)

    # on the model's thread ------------------------------------------------------------
    def step(self, joining: list[Live]) -> None:
        """Drop, prefill the joiners, then decode every row one token at a time until the
        event loop has something to do: a row ended or has text to stream, a row is waiting
        to join, or `STEP_BUDGET_S` passed (an adapter attach waits on this thread)."""
        self.load()
        self._drop()
        if joining:
            self._prefill(joining)
            self._drop()
        started = time.perf_counter()
        while self._live:
            self._decode()
            self._drop()
            if (
                self._ended
                # read off the loop; a stale read only costs one step
                or joinable(self._waiting, len(self._live), self.max_batch)
                or any(lv.delta for lv in self._live)
                or time.perf_counter() - started > STEP_BUDGET_S
            ):
                break

    def _drop(self) -> None:
        """Free the slots of rows that ended or whose caller left."""
        keep = [i for i, lv in enumerate(self._live) if lv.result is None and not lv.row.abandoned]
        if len(keep) < len(self._live):
            self._live = [self._live[i] for i in keep]
            self.kv.keep(keep)

    def _adapters(self, lives: list[Live]) -> dict[str, Any]:
        if not self.adapters:
            return {}
        return {"adapter_names": [lv.row.adapter or BASE_ADAPTER for lv in lives]}

    def _prefill(self, joining: list[Live]) -> None:
        prefixes = encode_rows(self.tokenizer, [lv.row for lv in joining], self.prefixes.limit > 0)
        ready, found = [], []
        for lv, prefix in zip(joining, prefixes, strict=True):
            r = lv.row
            if r.adapter and r.adapter not in self.adapters:
                lv.error = ValueError(
                    f"adapter {r.adapter!r} is not attached to this model; deploy it first "
                    "(council adapters deploy) or ask without it"
                )
            elif r.max_new_tokens <= 0:
                lv.result = finish(self.tokenizer, r, [], self.tokenizer.eos_token_id, [])
            else:
                ready.append(lv)
                key = (r.adapter or BASE_ADAPTER, r.cache_scope, tuple(prefix))
                found.append(key if prefix else None)
                continue
            self._ended.append(lv)
        if not ready:
            return
        pad, names = self.tokenizer.pad_token_id, self._adapters(ready).get("adapter_names")
        kvs, computed = self.prefixes.resolve(self.model, pad, found, bool(self.adapters))
        done = prefill(self.model, pad, [lv.row.prompt_ids for lv in ready], kvs, names)
        self.prefill_tokens += computed + done.tokens
        self.batches += 1
        for lv in ready:
            lv.row.joined_step = self.steps
        self.kv.join(done.cache, done.mask)
        self._live += ready
        self._pick(ready, done.logits)

    def _decode(self) -> None:
        ids = torch.tensor([[lv.tokens[-1]] for lv in self._live])
        positions = self.kv.positions()
        mask = self.kv.grow()
        if self.tuner:  # `adaptive_threads`: this step's thread count (heads/threads.py)
            self.tuner.begin(len(self._live))
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=self.kv.cache,
                use_cache=True,
                **self._adapters(self._live),
            )
        if self.tuner:
            self.tuner.end()
        self._pick(self._live, out.logits[:, -1])

    def _pick(self, lives: list[Live], logits: torch.Tensor) -> None:
        """Each row's next token under its own settings, and the model's own logprob of it."""
        self.steps += 1
        masked = constrained(lives, logits)
        picks = masked.argmax(dim=-1)
        sampled = [i for i, lv in enumerate(lives) if lv.row.temperature > 0]
        if sampled:
            rows = [lives[i].row for i in sampled]
            picks[sampled] = nucleus(
                masked[sampled],
                [r.temperature for r in rows],
                [r.top_p for r in rows],
                [lives[i].gen for i in sampled],
            )
        logits = logits.float()  # the model's own logprob of each pick, without a full softmax
        chosen = logits.gather(1, picks.unsqueeze(1)).squeeze(1) - logits.logsumexp(dim=-1)
        for lv, token, lp in zip(lives, picks.tolist(), chosen.tolist(), strict=True):
            lv.row.steps += 1
            self._append(lv, int(token), float(lp))

    def _append(self, lv: Live, token: int, logprob: float) -> None:
        eos, row = self.tokenizer.eos_token_id, lv.row
        ended = token == eos
        if not ended:
            lv.tokens.append(token)
            lv.logprobs.append(logprob)
            if row.constraint is not None:  # complete under its grammar: only EOS could follow
                row.constraint.advance(token)
            ended = (
                len(lv.tokens) >= row.max_new_tokens
                or self._stopped(lv)
                or (row.constraint is not None and row.constraint.done)
            )
        if ended:
            lv.result = finish(self.tokenizer, row, lv.tokens, eos, lv.logprobs)
            self.rows_done += 1
            self._ended.append(lv)
        if row.on_text is not None:
            self._stream(lv)

    def _stopped(self, lv: Live) -> bool:
        stops = lv.row.stop
        if not stops:
            return False
        tail = max(len(s) for s in stops) + 8
        text = self.tokenizer.decode(lv.tokens[-tail:], skip_special_tokens=True)
        return any(s in text for s in stops)

    def _stream(self, lv: Live) -> None:
        """The text a stream may show now: never a stop string, half a character, or
        trailing space that the finished (stripped) answer would not have."""
        if lv.result is not None:
            text = lv.result.text
        else:
            text = self.tokenizer.decode(lv.tokens, skip_special_tokens=True).lstrip()
            hold = max((len(s) for s in lv.row.stop), default=1) - 1
            text = (text[: len(text) - hold] if hold else text).rstrip().rstrip("\ufffd")
        if text.startswith(lv.shown) and len(text) > len(lv.shown):
            lv.delta += text[len(lv.shown) :]
            lv.shown = text


def constrained(lives: list[Live], logits: torch.Tensor) -> torch.Tensor:
    """The logits to pick from: rows under a grammar masked (on a copy, so each logprob stays
    the model's own); without such rows, the logits themselves, at no cost."""
    rows = [i for i, lv in enumerate(lives) if lv.row.constraint is not None]
    if not rows:
        return logits
    masked = logits.clone()
    for i in rows:
        lives[i].row.constraint.mask(masked[i])
    return masked
