"""Shared test helpers: tiny models, scripted heads, a real server in a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

from council.config import HeadSpec, Settings
from council.heads.base import Head
from council.types import Completion, GenParams, Message


def convert_default_model(models_dir: Path) -> Path:
    from council.config import DEFAULT_MODEL
    from council.heads.weights import resolve_model_dir

    return resolve_model_dir(DEFAULT_MODEL, models_dir)


def build_tiny_model(tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.2,  # sharp logits: with 0.02 a tiny model is near-uniform
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def local_specs(model: Path | str, n: int = 5, **overrides: Any) -> list[HeadSpec]:
    temps = [0.0, 0.5, 0.6, 0.7, 0.8]
    return [
        HeadSpec(
            **{
                "id": f"h{i}",
                "kind": "local",
                "model": str(model),
                "temperature": temps[i % len(temps)],
                "seed": 100 + i,
                "system_prompt": f"Persona {i}.",
                "max_tokens": 12,
                **overrides,
            }
        )
        for i in range(n)
    ]


def settings_with(heads: list[HeadSpec], **kw: Any) -> Settings:
    kw.setdefault("embedder", "none")
    kw.setdefault("memory", False)
    kw.setdefault("fact_head", "none")  # scripted replies are for the ballot; facts use rules
    return Settings(heads=heads, **kw)


class ScriptedHead(Head):
    """A head that replies from a script: strings, (string, logprob) pairs, Completions (a
    proposal of tool_calls, say; the head's id is filled in), Exceptions (returned as errors)
    or delays."""

    def __init__(self, spec: HeadSpec, replies: list[Any] | None = None, delay: float = 0.0):
        super().__init__(spec)
        self.replies: deque[Any] = deque(replies or [])
        self.delay = delay
        self.seen: list[list[Message]] = []
        self.asked_with: list[GenParams | None] = []

    def enqueue(self, *replies: Any) -> None:
        self.replies.extend(replies)

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        started = time.perf_counter()
        self.seen.append(messages)
        self.asked_with.append(params)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.replies.popleft() if self.replies else "no more scripted replies"
        if isinstance(reply, Exception):
            return self.failed(str(reply), started, n)
        if isinstance(reply, Completion):
            return [replace(reply, head=self.id, tokens_in=3, tokens_out=2)] * n
        logprob = None
        if isinstance(reply, tuple):  # (text, how sure the head was: mean token logprob)
            reply, logprob = reply
        ms = (time.perf_counter() - started) * 1000
        return [
            Completion(
                head=self.id,
                text=reply,
                latency_ms=ms,
                tokens_in=3,
                tokens_out=2,
                cost_usd=self.spec.cost(3, 2),
                logprob=logprob,
            )
        ] * n


def scripted(*replies: str | Exception, quality: float = 5.0, **spec: Any) -> ScriptedHead:
    """One scripted head per call; ids s0, s1, ... are given by the caller via spec['id']."""
    return ScriptedHead(HeadSpec(kind="scripted", quality=quality, **spec), list(replies))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m council serve` in a subprocess on a loopback port."""

    def __init__(
        self,
        config: Path,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = env or {}  # e.g. another checkout's PYTHONPATH (benchmarks/engine_load.py)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
        env.update(
            COUNCIL_CONFIG=str(config),
            COUNCIL_DATA_DIR=str(data_dir),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            **extra,
        )
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "council", "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def serving(config: Path, data_dir: Path) -> Iterator[ServerProcess]:
    """A `council serve` subprocess, ready, and stopped at the end of the block."""
    proc = ServerProcess(config, data_dir)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def write_config(path: Path, heads: list[HeadSpec], **settings: Any) -> Path:
    """A council.toml with the given heads."""
    import json

    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    for h in heads:
        lines.append("\n[[heads]]")
        for k, v in h.model_dump(exclude_none=True).items():
            lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


class ThreadServer:
    """A uvicorn server for an in-process app on a loopback port, in a daemon thread."""

    def __init__(self, app: FastAPI, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"in-process server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def webhook_receiver() -> Iterator[tuple[list[dict[str, Any]], str]]:
    """A real HTTP endpoint recording every JSON posted to it: (posts, url)."""
    posts: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def receive(request: Request) -> dict[str, str]:
        posts.append(await request.json())
        return {"ok": "yes"}

    with ThreadServer(app) as server:
        yield posts, f"{server.url}/hook"


@contextmanager
def steady_traffic(
    url: str, prompt: str, clients: int = 1, timeout: float = 60
) -> Iterator[list[int]]:
    """`clients` loops posting /vote until the block ends; yields their status codes."""
    statuses: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=timeout) as http:
            while not stop.is_set():
                statuses.append(http.post("/vote", json={"prompt": prompt}).status_code)

    workers = [threading.Thread(target=loop) for _ in range(clients)]
    for w in workers:
        w.start()
    try:
        yield statuses
    finally:
        stop.set()
        for w in workers:
            w.join()
