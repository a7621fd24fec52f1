"""Adapters in a running server (tiny model): hot-swap under load, boot with the champion,
the admin API, background training runs, the canary's automatic rollback, webhooks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from council.adapters.registry import Registry
from council.config import Settings
from council.embeddings import Embedder
from council.learning.collector import Learner
from council.learning.datasets import freeze
from council.learning.train import TrainConfig, train_adapter
from council.server import create_app
from council.storage import open_db
from tests.helpers import ThreadServer, local_specs, steady_traffic, webhook_receiver

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ONE_STEP = TrainConfig(rank=4, alpha=8, epochs=1, batch_size=4, grad_accum=1,
                       learning_rate=5e-3, max_steps=1)  # fmt: skip


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def settings_for(tmp: Path, model: Path, **kw: Any) -> Settings:
    kw = {"canary_probes": 0, "admin_token": TOKEN, "recall_k": 0, "memory": True, **kw}
    return Settings(heads=local_specs(model, 2, max_tokens=4), data_dir=tmp, **kw)


def train_versions(s: Settings, embedder: Embedder, n: int) -> list[str]:
    learner = Learner(s, embedder=embedder)
    for i in range(8):
        learner.collect_example(f"What is {i} plus {i + 7}?", f"ANSWER: {2 * i + 7}", 0.95, "math")
    version = freeze(learner.store, s.server.data_dir / "datasets")["version"]
    out = []
    for seed in range(n):
        cfg = TrainConfig(**{**ONE_STEP.__dict__, "seed": seed})
        out.append(train_adapter(s, learner.store, version, config=cfg)["version"])
        time.sleep(1.1)  # versions carry a second-resolution stamp
    return out


def adapters_used(http: httpx.Client) -> set[str | None]:
    r = http.post("/vote", json={"prompt": "Say hi."})
    assert r.status_code == 200, r.text
    votes = r.json()["meta"]["votes"]
    assert all(v["error"] is None for v in votes)
    return {v["adapter"] for v in votes}


def wait_for_verdict(http: httpx.Client, timeout: float, poll: float) -> dict[str, Any]:
    """Poll the core role's state until its canary has a verdict (or time runs out)."""
    deadline = time.time() + timeout
    while True:
        state: dict[str, Any] = http.get("/api/adapters/state", headers=AUTH).json()
        core = state["roles"]["core"]
        if core["canary"] is None or time.time() > deadline:
            return core
        time.sleep(poll)


def test_promotion_during_a_stream_of_requests_fails_none(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder
) -> None:
    s = settings_for(tmp_path, tiny_model_dir)
    first, second = train_versions(s, embedder, 2)
    with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                           timeout=60) as http:  # fmt: skip
        assert adapters_used(http) == {None}  # no champion yet: the base model answers
        applied = []
        with steady_traffic(server.url, "Name a colour.", clients=3) as statuses:
            for version in (first, second, first):  # back and forth while requests keep coming
                time.sleep(0.5)
                r = http.post("/api/adapters/promote/core", headers=AUTH,
                              json={"version": version, "canary": False})  # fmt: skip
                assert r.status_code == 200, r.text
                applied.append(r.json()["applied_ms"])
                # The very next request after the promotion returns is served by the new one.
                assert adapters_used(http) == {version}
        state = http.get("/api/adapters/state", headers=AUTH).json()
    assert statuses and set(statuses) == {200}, statuses
    assert state["roles"]["core"]["champion"] == first
    assert state["roles"]["core"]["previous"] == second
    assert state["serving"]["core"]["serving"] == [first]
    assert all(ms > 0 for ms in applied)


def test_boot_serves_the_champion_and_the_admin_api_needs_the_token(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder
) -> None:
    s = settings_for(tmp_path, tiny_model_dir)
    (version,) = train_versions(s, embedder, 1)
    Registry(open_db(tmp_path / "council.db"), tmp_path).deploy("core", version, canary=False)
    with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                           timeout=60) as http:  # fmt: skip
        assert adapters_used(http) == {version}  # loaded at boot, before the port opened
        assert http.get("/api/adapters").status_code == 401
        wrong = http.get("/api/adapters", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "COUNCIL_ADMIN_TOKEN" in wrong.text
        listed = http.get("/api/adapters", headers=AUTH).json()["adapters"]
        assert [(a["version"], a["aliases"]) for a in listed] == [(version, ["champion"])]
        r = http.post("/api/adapters/rollback/core", headers=AUTH, json={"reason": "test"})
        assert r.json()["deployment"]["version"] is None
        assert adapters_used(http) == {None}
        missing = http.post("/api/adapters/promote/core", headers=AUTH,
                            json={"version": "core-nope"})  # fmt: skip
        assert missing.status_code == 404 and "council adapters list" in missing.text
        metrics = http.get("/metrics").text
    assert "autogen_deployment_success_total 1.0" in metrics
    assert "autogen_rollback_triggered_total 1.0" in metrics
    assert "swarm_lora_train_total 1.0" in metrics and "autogen_training_loss " in metrics
    no_token = settings_for(tmp_path, tiny_model_dir, admin_token=None)
    with ThreadServer(create_app(no_token)) as server:
        r = httpx.get(f"{server.url}/api/adapters/state")
    assert r.status_code == 403 and "set COUNCIL_ADMIN_TOKEN" in r.text
    # memory off (exchanges not remembered) still serves the champion, and still guards it
    Registry(open_db(tmp_path / "council.db"), tmp_path).deploy("core", version, canary=False)
    forgetful = settings_for(tmp_path, tiny_model_dir, memory=False)
    with ThreadServer(create_app(forgetful)) as server, httpx.Client(base_url=server.url,
                                                                   timeout=60) as http:  # fmt: skip
        assert adapters_used(http) == {version}
        assert http.get("/api/adapters").status_code == 401
        assert http.get("/api/adapters/state", headers=AUTH).status_code == 200


def test_train_runs_in_the_background_and_reports_progress(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(tmp_path, tiny_model_dir)
    train_versions(s, embedder, 0)  # examples and a frozen dataset, no adapter yet
    config = tmp_path / "council.toml"
    from tests.helpers import write_config

    write_config(config, s.heads.specs, data_dir=str(tmp_path), admin_token=TOKEN, memory=True)
    monkeypatch.setenv("COUNCIL_CONFIG", str(config))  # the training process reads it
    with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                           timeout=60) as http:  # fmt: skip
        r = http.post("/api/train", headers=AUTH, json={"epochs": 1, "learning_rate": 0.005})
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        deadline = time.time() + 240
        run = http.get(f"/api/runs/{run_id}", headers=AUTH).json()
        while run["status"] in ("queued", "running") and time.time() < deadline:
            time.sleep(1)
            run = http.get(f"/api/runs/{run_id}", headers=AUTH).json()
        assert run["status"] == "succeeded", run
        assert run["progress"] == 1.0 and any("adapter core-" in ln for ln in run["logs_tail"])
        version = run["result"]["version"]
        state = http.get("/api/adapters/state", headers=AUTH).json()["roles"]["core"]
        assert state["challenger"] == version and state["champion"] is None
        assert http.get("/api/runs/nope", headers=AUTH).status_code == 404


def test_a_failing_canary_is_rolled_back_while_serving_and_the_webhook_hears_it(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder
) -> None:
    """A canary whose calls fail (its adapter files vanished after it was loaded: the
    deployer cannot load it) is rolled back, the base keeps answering, the webhook hears."""
    with webhook_receiver() as (events, url):
        s = settings_for(tmp_path, tiny_model_dir, notification_webhook=url, canary_window_s=30)
        (version,) = train_versions(s, embedder, 1)
        import shutil

        with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                               timeout=60) as http:  # fmt: skip
            shutil.rmtree(Registry(open_db(tmp_path / "council.db"), tmp_path).get(version)["path"])
            r = http.post("/api/adapters/promote/core", headers=AUTH, json={"version": version})
            assert r.json()["deployment"]["state"] == "canary"
            state = wait_for_verdict(http, timeout=20, poll=0.3)
            assert state["champion"] is None and state["history"][1]["state"] == "rolled_back"
            assert "could not load" in state["history"][0]["reason"]
            assert adapters_used(http) == {None}
        deadline = time.time() + 10
        while len(events) < 2 and time.time() < deadline:
            time.sleep(0.1)
    # Both are sent from their own threads (a webhook never delays a swap): any order.
    by_event = {e["event"]: e for e in events}
    assert sorted(by_event) == ["deploy", "rollback"] and len(events) == 2
    assert "rolled back" in by_event["rollback"]["text"].lower()
    assert list((tmp_path / "deployments").glob("*-rollback-*.json"))


@pytest.mark.slow
def test_an_adapter_trained_on_garbage_is_rolled_back_inside_its_window(
    tmp_path: Path, smollm2_dir: Path, embedder: Embedder
) -> None:
    """The real default model; an adapter trained to answer "Zebra zebra ..." to everything.
    The canary's probes (gold items the base answers right) catch it while /vote keeps
    answering."""
    s = Settings(
        heads=local_specs(smollm2_dir, 2, max_tokens=16), data_dir=tmp_path, memory=True,
        admin_token=TOKEN, recall_k=0, canary_probes=10, canary_min_samples=5,
        canary_window_s=240, canary_requests=10_000, canary_share=1.0,
    )  # fmt: skip
    learner = Learner(s, embedder=embedder)
    prompts = ["Name a colour.", "What is 3 + 4?", "Who wrote Hamlet?", "Count to three.",
               "Describe the sea.", "What is the capital of Spain?", "Spell 'cat'.",
               "Give me a tip for sleeping well."]  # fmt: skip
    for p in prompts:
        learner.collect_example(p, "Zebra zebra zebra zebra zebra zebra zebra zebra.", 0.95)
    version = freeze(learner.store, s.server.data_dir / "datasets")["version"]
    garbage = TrainConfig(rank=8, alpha=16, epochs=1, batch_size=4, grad_accum=1,
                          learning_rate=1e-2, max_steps=10)  # fmt: skip
    bad = train_adapter(s, learner.store, version, config=garbage)["version"]
    with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                           timeout=120) as http:  # fmt: skip
        with steady_traffic(server.url, "Say hello.", timeout=120) as statuses:
            r = http.post("/api/adapters/promote/core", headers=AUTH, json={"version": bad})
            assert r.json()["deployment"]["state"] == "canary", r.text
            core = wait_for_verdict(http, timeout=240, poll=1.0)
        after = adapters_used(http)
    assert core["champion"] is None and after == {None}, core
    rolled = core["history"][1]
    assert rolled["version"] == bad and rolled["state"] == "rolled_back", core["history"]
    assert "probes success rate" in rolled["reason"]
    assert rolled["summary"]["probes"]["planned"] >= 5
    assert rolled["ended_at"] - rolled["started_at"] < 240  # inside the window
    assert statuses and set(statuses) == {200}  # serving never stopped


def test_a_vllm_head_registers_each_version_once_and_switches_its_model_id(
    tmp_path: Path,
) -> None:
    """vLLM is remote: an edge fake of its API records what deployment asks of it."""
    import json

    from council.config import HeadSpec

    loaded: list[dict[str, Any]] = []
    vllm = FastAPI()

    @vllm.post("/v1/load_lora_adapter")
    async def load(request: Request) -> Any:
        body = await request.json()
        if any(x["lora_name"] == body["lora_name"] for x in loaded):
            from fastapi.responses import PlainTextResponse

            return PlainTextResponse("The lora adapter already loaded", status_code=400)
        loaded.append(body)
        return {"ok": True}

    @vllm.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        model = (await request.json())["model"]
        message = {"role": "assistant", "content": f"served by {model}"}
        usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        choice = {"index": 0, "finish_reason": "stop", "message": message}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                "choices": [choice], "usage": usage}  # fmt: skip

    for i, v in enumerate(("core-v1", "core-v2")):
        folder = tmp_path / "adapters" / "core" / v
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
        (folder / "meta.json").write_text(json.dumps({
            "version": v, "role": "core", "base_model_name": "base-model",
            "dataset_version": "ds", "created_at": 1000.0 + i,
        }))  # fmt: skip
    with ThreadServer(vllm) as remote:
        head = HeadSpec(id="vllm", kind="openai", provider="vllm", base_url=f"{remote.url}/v1",
                        model="base-model", role="core")  # fmt: skip
        s = Settings(heads=[head], data_dir=tmp_path, memory=True, admin_token=TOKEN,
                     recall_k=0)  # fmt: skip
        with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                               timeout=60) as http:  # fmt: skip
            assert http.post("/vote", json={"prompt": "hi"}).json()["answer"] == (
                "served by base-model")  # fmt: skip
            for version in ("core-v1", "core-v2", "core-v1"):
                r = http.post("/api/adapters/promote/core", headers=AUTH,
                              json={"version": version, "canary": False})  # fmt: skip
                assert r.status_code == 200, r.text
                answer = http.post("/vote", json={"prompt": "hi"}).json()
                assert answer["answer"] == f"served by {version}"
                assert answer["meta"]["votes"][0]["adapter"] == version
    assert [x["lora_name"] for x in loaded] == ["core-v1", "core-v2"]  # never reloaded by name
    assert loaded[0]["lora_path"] == str(tmp_path / "adapters" / "core" / "core-v1")
