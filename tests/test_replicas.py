"""Replicas: two real `council serve` processes on one data dir and one real redis-server act
as one service (a shared per-key limit and governor, one canary verdict applied by both, one
webhook per event); and the Redis-backed pieces on their own (certainty, once-only claims)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from council.config import HeadSpec, Settings
from council.jobs import schedule
from council.jobs.notify import notify
from council.routing.certainty import RedisCertaintyHistory, certainty_history
from council.routing.governor import Governor
from council.shared import claim_once
from council.storage import open_store
from council.users.keys import Users
from tests.helpers import ServerProcess, ThreadServer, webhook_receiver, write_config
from tests.test_lock import redis_server, redis_url  # noqa: F401  (fixtures)

TOKEN = "s3cret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
VERSION = "core-v1"


def fake_vllm() -> FastAPI:
    """vLLM's edge: adapters load by name, and an answer says which model served it."""
    app = FastAPI()

    @app.post("/v1/load_lora_adapter")
    async def load(request: Request) -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        model = (await request.json())["model"]
        message = {"role": "assistant", "content": f"served by {model}"}
        usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": usage}  # fmt: skip

    return app


def adapter_on_disk(data: Path, version: str) -> None:
    folder = data / "adapters" / "core" / version
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "meta.json").write_text(json.dumps({
        "version": version, "role": "core", "base_model_name": "base-model",
        "dataset_version": "ds", "created_at": 1000.0,
    }))  # fmt: skip


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: str,  # noqa: F811
) -> Iterator[tuple[ServerProcess, ServerProcess, str, list[dict[str, Any]]]]:
    """(A, B, alice's key, webhook posts): two servers on one data dir, Redis and vLLM fake.
    Started once for the module (a server takes a while to start on a busy machine)."""
    import redis

    redis.Redis.from_url(redis_server).flushall()
    tmp_path = tmp_path_factory.mktemp("replicas")
    data = tmp_path / "data"
    adapter_on_disk(data, VERSION)
    settings = Settings(data_dir=data)
    store = open_store(settings)  # migrated here: the two servers may start together
    try:
        key = Users(store).add("alice")[1]
    finally:
        store.close()
    with ThreadServer(fake_vllm()) as vllm, webhook_receiver() as (posts, hook):
        head = HeadSpec(id="vllm", kind="openai", provider="vllm", base_url=f"{vllm.url}/v1",
                        model="base-model", role="core")  # fmt: skip
        config = write_config(
            tmp_path / "council.toml", [head], redis_url=redis_server, admin_token=TOKEN,
            notification_webhook=hook, memory=True, recall_k=0,
            fact_head="none", rpm=4, canary_probes=0, canary_min_samples=2, canary_share=1.0,
            canary_window_s=600, canary_requests=6,
        )  # fmt: skip
        servers: list[ServerProcess] = []
        try:
            servers = [ServerProcess(config, data) for _ in range(2)]
            for server in servers:
                server.wait_ready(timeout=300)  # a hang guard: a busy box starts slowly
            yield servers[0], servers[1], key, posts
        finally:
            for server in servers:
                server.stop()


def vote(server: ServerProcess, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/vote", json={"prompt": "hi"}, headers=headers, timeout=30)


def core(server: ServerProcess) -> dict[str, Any]:
    state = httpx.get(f"{server.url}/api/adapters/state", headers=ADMIN, timeout=10).json()
    return {**state["roles"]["core"], "watching": state["serving"]["core"]["canary"]}


def wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout  # a hang guard, not a timing assertion
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_key_is_limited_and_a_switch_flipped_across_both_replicas(
    replicas: tuple[ServerProcess, ServerProcess, str, list[dict[str, Any]]],
) -> None:
    a, b, key, _ = replicas
    alice = {"Authorization": f"Bearer {key}"}
    codes = [vote(server, alice).status_code for server in (a, b, a, b)]
    assert codes == [200] * 4
    for server in (a, b):  # the minute's four requests are spent on both
        refused = vote(server, alice)
        assert refused.status_code == 429, refused.text
        assert "4 requests per minute" in refused.json()["error"]["message"]
    r = httpx.post(f"{a.url}/api/config/governor", headers=ADMIN, json={"force_arbiter": True})
    assert r.status_code == 200, r.text
    seen = httpx.get(f"{b.url}/api/config/governor", headers=ADMIN, timeout=10).json()
    assert seen["force_arbiter"] is True


def test_a_canary_is_judged_once_on_both_replicas_calls_and_applied_by_both(
    replicas: tuple[ServerProcess, ServerProcess, str, list[dict[str, Any]]],
) -> None:
    """Six calls decide the canary, three through each replica: the verdict needs the
    follower's calls to reach the leader. One confirmation, one webhook per event."""
    a, b, _, posts = replicas
    r = httpx.post(f"{b.url}/api/adapters/promote/core", headers=ADMIN,
                   json={"version": VERSION}, timeout=30)  # fmt: skip
    assert r.status_code == 200 and r.json()["deployment"]["state"] == "canary", r.text
    wait_until(lambda: all(core(s)["watching"] for s in (a, b)), "both replicas to watch")
    for server in (a, a, a, b, b, b):
        answer = vote(server, ADMIN).json()
        assert answer["meta"]["votes"][0]["adapter"] == VERSION
    wait_until(lambda: core(a)["canary"] is None, "the verdict")
    wait_until(lambda: all(core(s)["watching"] is None for s in (a, b)), "both to apply it")
    history = core(a)["history"]
    judged = [h for h in history if h["version"] == VERSION]
    assert [h["state"] for h in judged] == ["confirmed"], history
    assert judged[0]["summary"]["live"] == {"ok": 6, "total": 6}
    for server in (a, b):
        assert core(server)["champion"] == VERSION
        assert vote(server, ADMIN).json()["meta"]["votes"][0]["adapter"] == VERSION
    wait_until(lambda: len(posts) >= 2, "the webhooks", timeout=10)
    time.sleep(2)  # two more polls of each replica: a second sender would have posted by now
    texts = sorted(p["text"].splitlines()[0] for p in posts)
    assert len(posts) == 2, texts
    assert texts[0].startswith("Deployed core-v1 as core champion (canary passed")
    assert texts[1].startswith("core: base → core-v1 (canary")


def test_the_certainty_history_is_one_across_replicas(redis_url: str) -> None:  # noqa: F811
    one, two = RedisCertaintyHistory(redis_url, min_samples=3), RedisCertaintyHistory(redis_url)
    assert isinstance(certainty_history(Settings(redis_url=redis_url)), RedisCertaintyHistory)
    for logprob in (-0.1, -0.2, -0.3, -0.4):
        one.add("h1", "math", logprob)
    two.min_samples = 3
    assert two.count("h1", "math") == 4 and two.count("h1", "chat") == 0
    assert two.threshold("h1", "math", 0.5) == -0.2
    small = RedisCertaintyHistory(redis_url, size=2)
    small.add("h2", "math", -1.0)
    small.add("h2", "math", -2.0)
    small.add("h2", "math", -3.0)
    assert small.count("h2", "math") == 2  # trimmed to the newest


def test_without_redis_the_history_stays_in_process(tmp_path: Path) -> None:
    assert type(certainty_history(Settings(data_dir=tmp_path))).__name__ == "CertaintyHistory"


def test_governor_switches_live_in_redis_and_seed_from_the_file(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "governor.json").write_text(json.dumps({"local_only": True}))
    first = Governor(Settings(data_dir=tmp_path / "one", redis_url=redis_url))
    second = Governor(Settings(data_dir=tmp_path / "two", redis_url=redis_url))
    assert second.state().local_only is True  # seeded from the first replica's file
    second.update({"daily_budget_usd": 2.5})
    first.update({"force_arbiter": True})
    for g in (first, second):  # one field per switch: neither change is lost
        s = g.state()
        assert (s.local_only, s.daily_budget_usd, s.force_arbiter) == (True, 2.5, True)


def test_each_webhook_event_is_sent_once_across_replicas(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    with webhook_receiver() as (posts, hook):
        replicas = [Settings(data_dir=tmp_path / n, redis_url=redis_url,
                             notification_webhook=hook) for n in "ab"]  # fmt: skip
        sent = [notify(s, "deploy", "core: v1 live", key="deployment:7:confirmed")
                for s in replicas]  # fmt: skip
        sent += [notify(s, "pipeline_error", "cycle failed: disk") for s in replicas]
        sent += [notify(replicas[0], "deploy", "core: v2 live", key="deployment:8:confirmed")]
    assert sent == [True, False, True, False, True]
    assert [p["text"] for p in posts] == ["core: v1 live", "cycle failed: disk", "core: v2 live"]


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_the_nightly_cycle_is_claimed_by_one_replica(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    a, b = (Settings(data_dir=tmp_path, redis_url=url) for _ in range(2))
    night = time.strftime("%Y-%m-%d", time.localtime())
    assert claim_once(a, f"nightly:{night}", 60)
    assert schedule.run_cycle(b) == schedule.SKIPPED  # no child started for the second
    assert not (tmp_path / "runs" / "nightly.log").exists()
    assert claim_once(b, "nightly:another-night", 60)
