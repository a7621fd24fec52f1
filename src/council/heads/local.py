"""`local` heads: a persona on a model loaded in this process (see continuous.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from council.heads.admission import Admission
from council.heads.base import Head
from council.heads.completion import stops
from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.heads.prefixes import PREFIX_CACHE_TOKENS
from council.heads.streaming import claim
from council.heads.tooluse import prepare, read_calls
from council.heads.weights import resolve_model_dir
from council.types import Completion, GenParams, Message, mean_logprob
from council.users.caller import current


class ModelPool:
    """One LocalModel per weights folder, so heads on the same base share it."""

    def __init__(
        self,
        models_dir: Path,
        *,
        threads: int,
        window_ms: float,
        max_batch: int,
        pack: bool,
        weight_dtype: str = "float32",
        adaptive_threads: bool = False,
        queue_size: int = 16,
        prefix_cache_tokens: int = PREFIX_CACHE_TOKENS,
    ):
        self.models_dir = models_dir
        self.prefix_cache_tokens = prefix_cache_tokens
        self.pack = pack
        self.weight_dtype = weight_dtype
        self.adaptive_threads = adaptive_threads
        self.threads = threads
        self.window_ms = window_ms
        self.max_batch = max_batch
        self.queue_size = queue_size
        self.models: dict[Path, LocalModel] = {}

    def get(self, model: str) -> LocalModel:
        folder = resolve_model_dir(model, self.models_dir).resolve()
        if folder not in self.models:
            self.models[folder] = LocalModel(
                folder,
                threads=self.threads,
                window_ms=self.window_ms,
                max_batch=self.max_batch,
                pack=self.pack,
                weight_dtype=self.weight_dtype,
                adaptive_threads=self.adaptive_threads,
                queue_size=self.queue_size,
                prefix_cache_tokens=self.prefix_cache_tokens,
            )
        return self.models[folder]

    def close(self) -> None:
        for m in self.models.values():
            m.close()


class LocalHead(Head):
    """In-process transformers head; adapters attach to the shared base (PEFT)."""

    def _engine(self) -> LocalModel:
        assert self.ctx is not None, "local heads are built through council.heads.build_heads"
        return self.ctx.pool.get(self.spec.model)

    def queue(self) -> Admission | None:
        try:
            return self._engine().queue
        except Exception:  # missing weights: the call itself reports it
            return None

    async def start(self) -> None:
        self.state.status = "loading"
        try:
            await self._engine().ensure_loaded()
        except Exception as exc:
            self.state.status, self.state.detail = "error", str(exc)
            raise
        self.state.status, self.state.detail = "ready", str(self._engine().folder)
        self.state.loaded_at = time.time()

    async def count_tokens(self, messages: list[Message]) -> int | None:
        engine = self._engine()
        await engine.ensure_loaded()
        prompt, _, _ = prepare(self.with_persona(messages), GenParams(), engine.template_tools())
        return len(await engine.encode_async(prompt, self.spec.prompt_template))

    def resolve(self, params: GenParams | None) -> GenParams:
        """The head's settings, plus its prompt template's stop strings."""
        p = super().resolve(params)
        if self.spec.prompt_template is None:
            return p
        return replace(p, stop=stops(self.spec.prompt_template) + list(p.stop or []))

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        started = time.perf_counter()
        adapter = self.pick_adapter()
        try:
            engine = self._engine()
        except Exception as exc:
            return self._failed(exc, started, n, adapter)
        # A full queue is not this head failing: OverloadedError reaches the caller (503).
        with engine.queue.admit(n):
            return await self._generate(engine, messages, n, params, adapter, started)

    async def _generate(
        self,
        engine: LocalModel,
        messages: list[Message],
        n: int,
        params: GenParams | None,
        adapter: str | None,
        started: float,
    ) -> list[Completion]:
        try:
            await engine.ensure_loaded()
            prompt, tools, p = prepare(
                self.with_persona(messages), self.resolve(params), engine.template_tools()
            )
            rows = [
                Row(
                    prompt_ids=[],
                    messages=prompt,
                    tools=tools,
                    template=self.spec.prompt_template,
                    temperature=p.temperature or 0.0,
                    top_p=p.top_p or 1.0,
                    max_new_tokens=p.max_tokens or 256,
                    seed=None if p.seed is None else p.seed + k,
                    stop=p.stop or [],
                    adapter=adapter,
                    cache_scope=cache_scope(),
                )
                for k in range(n)
            ]
            calling = p.tools is not None and p.tools.active  # JSON to read, not text to show
            streams = n == 1 and not calling
            sink = claim() if streams else None
            if p.json_schema is not None:  # decode only text valid under the schema
                for row, c in zip(rows, await engine.constraints(p.json_schema, n), strict=True):
                    row.constraint = c
            elif p.text_or_call is not None:  # text, or a call that is valid once begun
                grammars = await engine.constraints(p.text_or_call, n, or_text=True)
                for row, c in zip(rows, grammars, strict=True):
                    row.constraint = c
            if sink is not None:  # a single-head request: its text streams as generated
                rows[0].on_text = sink.push
            results = await engine.generate(rows)
        except Exception as exc:
            return self._failed(exc, started, n, adapter)
        ms = (time.perf_counter() - started) * 1000
        read = [read_calls(r.text, p.tools) for r in results]
        return [
            Completion(
                head=self.id,
                text=text,
                latency_ms=ms,
                tokens_in=r.tokens_in,
                tokens_out=r.tokens_out,
                cost_usd=self.spec.cost(r.tokens_in, r.tokens_out),
                finish_reason=r.finish_reason,
                adapter=adapter,
                logprob=mean_logprob(pairs),
                token_logprobs=pairs,
                tool_calls=calls,
                stop_sequence=r.stop_sequence,
            )
            for r, pairs, (text, calls) in zip(
                results, map(engine.token_pairs, results), read, strict=True
            )
        ]

    def _failed(
        self, exc: Exception, started: float, n: int, adapter: str | None
    ) -> list[Completion]:
        error = f"{type(exc).__name__}: {exc}"
        return [replace(c, adapter=adapter) for c in self.failed(error, started, n)]


def cache_scope() -> str:
    """Whose cached prompt prefixes a row may share: a signed-in caller's own (a prefix may hold
    their recalled memories or earlier turns, and a cache hit shows in latency); with nobody
    signed in (single-user mode), everyone's."""
    caller = current()
    return caller.name if caller is not None and caller.signed_in else ""
