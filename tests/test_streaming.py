"""Single-head requests stream tokens as the engine generates them, and a client that
disconnects stops its row (a real server; the engine's step counter stops rising)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from council.council import Council
from council.server import create_app
from tests.helpers import local_specs, serving, settings_with, write_config

HANG_GUARD_S = 60.0  # far above any honest latency here; only a wedged engine reaches it
ASK = {
    "model": "h0",
    "messages": [{"role": "user", "content": "Tell me about rivers."}],
    "max_tokens": 400,
    "temperature": 0.0,
}


def _content(line: str) -> str:
    chunk = json.loads(line[6:])
    return "".join(c["delta"].get("content") or "" for c in chunk.get("choices", []))


def test_a_single_head_streams_while_it_generates(tiny_model_dir: Path) -> None:
    s = settings_with(local_specs(tiny_model_dir, 2, max_tokens=400), queue_size=8)
    council = Council(s)
    with TestClient(create_app(s, council)) as client:
        whole = client.post("/v1/chat/completions", json=ASK).json()
        answer = whole["choices"][0]["message"]["content"]
        assert council.ctx is not None
        [engine] = council.ctx.pool.models.values()
        pieces: list[str] = []
        with client.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and _content(line):
                    if not pieces:
                        steps_at_first = engine.steps
                    pieces.append(_content(line))
        assert engine.steps > steps_at_first  # generation went on after the first text left
        assert len(pieces) > 3 and "".join(pieces) == answer  # greedy: the same answer


def test_hybrid_streams_the_fastest_heads_text_as_it_is_generated(tiny_model_dir: Path) -> None:
    s = settings_with(local_specs(tiny_model_dir, 2, max_tokens=400, temperature=0.0))
    council = Council(s)
    with TestClient(create_app(s, council)) as client:
        ask = {"prompt": "Tell me about rivers.", "memory": False}
        whole = client.post("/hybrid", json=ask).json()
        assert council.ctx is not None
        [engine] = council.ctx.pool.models.values()
        deltas: list[str] = []
        events: list[dict[str, Any]] = []
        with client.stream("POST", "/hybrid", json={**ask, "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = (line for line in r.iter_lines() if line.startswith("data: "))
            for line in lines:
                if line == "data: [DONE]":
                    break
                event = json.loads(line[6:])
                events.append(event)
                if "delta" in event:
                    if not deltas:
                        steps_at_first = engine.steps
                    deltas.append(event["delta"])
        assert line == "data: [DONE]"
        assert engine.steps > steps_at_first  # generation went on after the first text left
        assert len(deltas) > 3 and "".join(deltas) == whole["answer"]  # greedy: same answer
        final = events[-1]
        assert final["answer"] == whole["answer"] and final["meta"]["chosen_model"] in ("h0", "h1")
        blank = client.post("/hybrid", json={"prompt": " ", "stream": True})
        assert blank.status_code == 400  # refused before any stream starts


def test_a_disconnected_stream_stops_its_row(tiny_model_dir: Path, tmp_path: Path) -> None:
    heads = local_specs(tiny_model_dir, 1, max_tokens=1024, temperature=2.0)
    config = write_config(tmp_path / "council.toml", heads, embedder="none", memory=False)
    with serving(config, tmp_path / "data") as proc:

        def model() -> dict[str, Any]:
            [m] = httpx.get(f"{proc.url}/health", timeout=HANG_GUARD_S).json()["models"]
            return dict(m)

        body = {**ASK, "max_tokens": 1024, "temperature": 2.0, "stream": True}
        with httpx.stream(
            "POST", f"{proc.url}/v1/chat/completions", json=body, timeout=HANG_GUARD_S
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and _content(line):
                    break  # the first token arrived: hang up mid-answer
        assert model()["running"] == 1 or model()["steps"] < 1024  # it was mid-answer
        deadline = time.monotonic() + HANG_GUARD_S
        while model()["running"]:
            assert time.monotonic() < deadline, "the row kept running after the disconnect"
            time.sleep(0.05)
        frozen = model()
        time.sleep(0.5)
        after = model()
        assert after["steps"] == frozen["steps"] and after["rows"] == 0  # stopped, unfinished
        assert frozen["steps"] < 1024
