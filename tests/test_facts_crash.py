"""A true kill -9 between the reply and the fact extraction: a `council serve` subprocess whose
fact head is an OpenAI-compatible upstream that holds the extraction request until released."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from council.config import HeadSpec
from tests.helpers import ServerProcess, ThreadServer, write_config

ZORBLAX = "Please remember: my cat is called Zorblax."


def upstream(asked: threading.Event, release: threading.Event) -> FastAPI:
    """Ballot heads answer at once; the fact head ("slow") waits for `release`."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        model, text = body["model"], body["messages"][-1]["content"]
        if model == "slow":
            asked.set()
            release.wait(timeout=120)
            reply = "NONE" if "Message:" not in text or "Zorblax" not in text else (
                "My cat is called Zorblax")  # fmt: skip
        else:
            reply = f"answer from {model}"
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": reply}}  # fmt: skip
        usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                "choices": [choice], "usage": usage}  # fmt: skip

    return app


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_a_kill_9_after_the_reply_loses_no_fact(tmp_path: Path) -> None:
    asked, release = threading.Event(), threading.Event()
    with ThreadServer(upstream(asked, release)) as remote:
        url = f"{remote.url}/v1"
        heads = [
            HeadSpec(id="a", kind="openai", provider="vllm", base_url=url, model="a"),
            HeadSpec(
                id="x", kind="openai", provider="vllm", base_url=url, model="slow", enabled=False
            ),
        ]
        config = write_config(tmp_path / "council.toml", heads, facts=True, fact_head="x",
                              embedder="minilm", memory=True)  # fmt: skip
        data = tmp_path / "data"
        first = ServerProcess(config, data)
        try:
            first.wait_ready()
            r = httpx.post(f"{first.url}/vote", json={"prompt": ZORBLAX}, timeout=60)
            assert r.status_code == 200, r.text  # the reply was sent
            assert asked.wait(timeout=60), "the fact head was never asked"
            first.proc.kill()  # SIGKILL while the extraction waits on the fact head
            first.proc.wait(timeout=30)
        finally:
            if first.proc.poll() is None:
                first.proc.kill()
        db = data / "council.db"
        assert rows(db, "SELECT COUNT(*) FROM fact_jobs") == [(1,)]  # durably queued
        assert rows(db, "SELECT COUNT(*) FROM facts") == [(0,)]  # not extracted yet

        release.set()  # the fact head answers from now on
        second = ServerProcess(config, data)
        try:
            second.wait_ready()
            deadline = time.monotonic() + 120
            while not (memories := httpx.get(f"{second.url}/api/memories").json()["memories"]):
                assert time.monotonic() < deadline, "the job was not redone at start"
                time.sleep(0.2)
            assert [m["text"] for m in memories] == ["My cat is called Zorblax"]
            q = {"prompt": "What is the name of my cat?", "conversation_id": "later"}
            meta = httpx.post(f"{second.url}/vote", json=q, timeout=60).json()["meta"]
            assert [m["text"] for m in meta["recalled"] if m["kind"] == "fact"] == [
                "My cat is called Zorblax"
            ]
        finally:
            second.stop()
    assert rows(db, "SELECT COUNT(*) FROM fact_jobs") == [(0,)]
