"""`openai` heads: any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, OpenAI)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from council.heads.base import Head
from council.types import Completion, GenParams, Message, ToolCall, mean_logprob


class OpenAICompatHead(Head):
    """Talks to /v1/chat/completions through the official `openai` SDK."""

    _client: openai.AsyncOpenAI | None = None

    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            s = self.spec
            key = "not-needed"  # vLLM, Ollama and llama.cpp accept any key
            if s.api_key_env:
                key = os.environ.get(s.api_key_env, "")
                if not key:
                    raise RuntimeError(
                        f"No API key for head {s.id!r}: set the environment variable "
                        f"{s.api_key_env}, or clear api_key_env for a server that needs none."
                    )
            self._client = openai.AsyncOpenAI(
                base_url=s.base_url, api_key=key, timeout=s.timeout_s, max_retries=0
            )
        return self._client

    async def start(self) -> None:
        self.state.status = "ready"
        self.state.detail = self.spec.base_url

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        p = self.resolve(params)
        # Tool calls and results pass as they are: the server reads OpenAI's own shape.
        chat = [m.to_openai() for m in self.with_persona(messages)]
        # A deployed LoRA is served by vLLM under its version's name: that is the model id.
        model = self.pick_adapter() or self.spec.model
        # n parallel requests rather than the `n` parameter: Ollama and llama.cpp ignore it.
        calls = [self._one(chat, p, model, None if p.seed is None else p.seed + k)
                 for k in range(n)]  # fmt: skip
        variant = None if model == self.spec.model else model
        return [replace(c, adapter=variant) for c in await asyncio.gather(*calls)]

    async def _one(
        self, chat: list[dict[str, Any]], p: GenParams, model: str, seed: int | None
    ) -> Completion:
        started = time.perf_counter()
        extra: dict[str, Any] = {}
        if seed is not None:
            extra["seed"] = seed
        if p.stop:
            extra["stop"] = p.stop[:4]  # OpenAI accepts at most four
        if self.spec.logprobs:
            extra["logprobs"] = True
        if p.tools is not None and p.tools.functions:
            extra["tools"] = [f.to_openai() for f in p.tools.functions]
            extra["tool_choice"] = p.tools.openai_choice()
            if not p.tools.parallel:
                extra["parallel_tool_calls"] = False
        if p.json_schema is not None:  # the endpoint enforces it; the ballot checks it anyway
            extra["response_format"] = response_format(p.json_schema)
        try:
            resp = await self.client().chat.completions.create(
                model=model,
                messages=chat,  # type: ignore[arg-type]
                temperature=p.temperature,
                top_p=p.top_p,
                max_tokens=p.max_tokens,
                **extra,
            )
        except openai.APIStatusError as exc:
            return self._error(
                started, f"HTTP {exc.status_code} from {self.spec.base_url}: {exc.message}"
            )
        except openai.APITimeoutError:
            return self._error(
                started, f"timed out after {self.spec.timeout_s}s ({self.spec.base_url})"
            )
        except openai.APIConnectionError as exc:
            return self._error(started, f"cannot reach {self.spec.base_url}: {exc}")
        except Exception as exc:
            return self._error(started, f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        if not resp.choices:
            return self._error(started, f"{self.spec.base_url} returned no choices")
        choice = resp.choices[0]
        t_in = resp.usage.prompt_tokens if resp.usage else 0
        t_out = resp.usage.completion_tokens if resp.usage else 0
        pairs = token_logprobs(choice)
        calls = [
            ToolCall(c.id, c.function.name, c.function.arguments or "{}")
            for c in choice.message.tool_calls or []
            if isinstance(c, ChatCompletionMessageFunctionToolCall)  # custom tools: not offered
        ]
        return Completion(
            head=self.id,
            text=(choice.message.content or "").strip(),
            latency_ms=ms,
            tokens_in=t_in,
            tokens_out=t_out,
            cost_usd=self.spec.cost(t_in, t_out),
            finish_reason=choice.finish_reason or "stop",
            logprob=mean_logprob(pairs),
            token_logprobs=pairs,
            tool_calls=calls or None,
        )

    def _error(self, started: float, message: str) -> Completion:
        ms = (time.perf_counter() - started) * 1000
        return Completion(head=self.id, latency_ms=ms, error=message, finish_reason="error")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def token_logprobs(choice: Any) -> list[tuple[str, float]] | None:
    """(token, logprob) of a choice's tokens, when the server sent them."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    pairs = [(t.token, t.logprob) for t in content or [] if t.logprob is not None]
    return pairs or None


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """GenParams.json_schema as OpenAI's response_format ({}: any JSON object)."""
    if not schema:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
