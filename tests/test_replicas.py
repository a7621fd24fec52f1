"""Replicas: two real `council serve` processes on one store (a Postgres database, each with a
data dir of its own; or one shared SQLite data dir) and one real redis-server act as one
service: a shared per-key limit and governor, one canary verdict applied by both, one webhook
per event, a fact told to one recalled by the other, and no acknowledged exchange lost when one
is killed under load. Then the Redis-backed pieces on their own (certainty, once-only claims)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.pg_fixtures import new_database
from tests.test_lock import redis_server  # noqa: F401  (a fixture)

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


@dataclass
class Pair:
    """Two replicas and what the tests need of them."""

    a: ServerProcess
    b: ServerProcess
    key: str  # alice's API key (limited to 4 requests a minute, as every key here)
    bob: str  # bob's, for the facts
    posts: list[dict[str, Any]]  # the webhooks received
    settings: Settings  # opens the store the replicas share


# Where the pair keeps its store. "sqlite" (one data dir shared by both) passes the same tests,
# but a second pair costs a minute or two of server start on a busy box: the suite runs the one
# topology that spans hosts, and tests/test_durability.py kills a server on SQLite.
PAIRS = ["postgres"]


@pytest.fixture(scope="module", params=PAIRS)
def replicas(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: str,  # noqa: F811
) -> Iterator[Pair]:
    """Two servers on one store, one Redis and a vLLM fake, started once per backend: on
    Postgres each has a data dir of its own (what separate hosts have), on SQLite they share
    one (the file is the store)."""
    import redis

    shared = redis_server.rsplit("/", 1)[0] + "/1"  # db 1: the tests' redis_url flushes db 0
    redis.Redis.from_url(shared).flushdb()
    tmp_path = tmp_path_factory.mktemp(f"replicas-{request.param}")
    url = new_database(request.getfixturevalue("postgres_server")) if (
        request.param == "postgres") else None  # fmt: skip
    dirs = [tmp_path / "a", tmp_path / "b"] if url else [tmp_path / "data"] * 2
    adapter_on_disk(dirs[0], VERSION)
    settings = Settings(data_dir=dirs[0], database_url=url)
    store = open_store(settings)  # migrated here: the two servers may start together
    try:
        key, bob = (Users(store).add(name)[1] for name in ("alice", "bob"))
    finally:
        store.close()
    with ThreadServer(fake_vllm()) as vllm, webhook_receiver() as (posts, hook):
        head = HeadSpec(id="vllm", kind="openai", provider="vllm", base_url=f"{vllm.url}/v1",
                        model="base-model", role="core")  # fmt: skip
        config = write_config(
            tmp_path / "council.toml", [head], redis_url=shared, admin_token=TOKEN,
            notification_webhook=hook, memory=True, recall_k=0,
            fact_head="none", rpm=4, canary_probes=0, canary_min_samples=2, canary_share=1.0,
            canary_window_s=600, canary_requests=6, **({"database_url": url} if url else {}),
        )  # fmt: skip
        servers: list[ServerProcess] = []
        try:
            servers = [ServerProcess(config, data) for data in dirs]
            for server in servers:
                server.wait_ready(timeout=300)  # a hang guard: a busy box starts slowly
            yield Pair(servers[0], servers[1], key, bob, posts, settings)
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


def test_a_key_is_limited_and_a_switch_flipped_across_both_replicas(replicas: Pair) -> None:
    a, b = replicas.a, replicas.b
    alice = {"Authorization": f"Bearer {replicas.key}"}
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
    replicas: Pair,
) -> None:
    """Six calls decide the canary, three through each replica: the verdict needs the
    follower's calls to reach the leader. One confirmation, one webhook per event."""
    a, b, posts = replicas.a, replicas.b, replicas.posts
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


def test_a_fact_told_through_one_replica_is_recalled_through_the_other(replicas: Pair) -> None:
    """A's worker learns the fact into the shared store; B's next request recalls it."""
    bob = {"Authorization": f"Bearer {replicas.bob}"}
    told = httpx.post(f"{replicas.a.url}/vote", headers=bob, timeout=30,
                      json={"prompt": "Please remember: my cat is called Zorblax."})  # fmt: skip
    assert told.status_code == 200, told.text

    def learnt() -> list[dict[str, Any]]:
        r = httpx.get(f"{replicas.a.url}/api/memories", headers=bob, timeout=10)
        return list(r.json()["memories"])

    wait_until(learnt, "replica A to learn the fact")
    assert not learnt()[1:], learnt()  # learnt once, though both replicas run a fact worker
    q = {"prompt": "What is the name of my cat?", "conversation_id": "later"}
    meta = httpx.post(f"{replicas.b.url}/vote", json=q, headers=bob, timeout=30).json()["meta"]
    facts = [m for m in meta["recalled"] if m["kind"] == "fact"]
    assert facts and "Zorblax" in facts[0]["text"], meta["recalled"]
    assert facts[0]["source"] == told.json()["meta"]["exchange_id"]


def test_kill_9_of_one_replica_under_load_loses_no_acknowledged_exchange(replicas: Pair) -> None:
    """Two clients per replica write exchanges; A is killed mid-request. Every exchange a 200
    acknowledged is in the store, and B answers on, every request. (Kills A: the last test
    of the pair.)"""
    acked: dict[str, list[str]] = {"a": [], "b": []}
    failed: list[str] = []
    stop = threading.Event()

    def client(name: str, server: ServerProcess, n: int) -> None:
        with httpx.Client(base_url=server.url, headers=ADMIN, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = http.post("/vote", json={"prompt": f"{name}{n} question {i}"})
                except httpx.HTTPError as exc:
                    if name == "b":  # the survivor must not fail
                        failed.append(repr(exc))
                    return  # A died mid-request: that one was never acknowledged
                if r.status_code == 200:
                    acked[name].append(r.json()["meta"]["exchange_id"])
                elif name == "b":
                    failed.append(f"{r.status_code} {r.text[:200]}")

    pairs = [("a", replicas.a), ("b", replicas.b)]
    threads = [threading.Thread(target=client, args=(*p, n)) for p in pairs for n in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked["a"]) >= 10, "A to answer under load", timeout=120)
        replicas.a.proc.kill()  # SIGKILL while both of A's clients have requests in flight
        replicas.a.proc.wait(timeout=30)
        after = len(acked["b"])
        wait_until(lambda: len(acked["b"]) >= after + 10, "B to answer on", timeout=120)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failed, failed[:3]
    store = open_store(replicas.settings)
    try:
        rows = store.query("SELECT id FROM exchanges")
    finally:
        store.close()
    stored = {r[0] for r in rows}
    lost = [e for e in acked["a"] + acked["b"] if e not in stored]
    assert not lost, f"{len(lost)} of {len(acked['a']) + len(acked['b'])} acknowledged lost"


@pytest.fixture
def redis_url(redis_server: str) -> str:  # noqa: F811
    """The module's Redis, db 0 emptied (the replicas above keep theirs in db 1)."""
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


def test_the_certainty_history_is_one_across_replicas(redis_url: str) -> None:
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
    redis_url: str,
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
    redis_url: str,
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
