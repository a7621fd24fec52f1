"""`council improve` against real processes: a running server (or none), the leader lock held
by another process, a cycle killed mid-training, the webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from council.adapters.registry import Registry
from council.config import Settings
from council.embeddings import Embedder
from council.jobs.lock import leader_lock
from council.learning.collector import Learner
from council.learning.cycle import Cycle
from council.storage import open_db
from tests.helpers import ServerProcess, local_specs, webhook_receiver, write_config


@pytest.fixture
def events() -> Any:
    with webhook_receiver() as received:
        yield received


def setup(
    tmp_path: Path, model: Path, webhook: str | None = None, **extra: Any
) -> tuple[Path, Path]:
    data = tmp_path / "data"
    heads = local_specs(model, 2, max_tokens=4)
    settings: dict[str, Any] = {"memory": True, "canary_probes": 0, "canary_window_s": 2,
                                "min_failures_to_train": 5, **extra}  # fmt: skip
    if webhook:
        settings["notification_webhook"] = webhook
    config = write_config(tmp_path / "council.toml", heads, **settings)
    s = Settings(heads=heads, data_dir=data, memory=True,
                 database_url=extra.get("database_url"))  # fmt: skip
    learner = Learner(s, embedder=Embedder("minilm"))
    for i in range(6):
        learner.collect_example(f"What is {i} plus {i + 7}?", f"ANSWER: {2 * i + 7}", 0.95, "math")
    learner.store.close()
    return config, data


def improve(config: Path, data: Path, server: str, *args: str, **popen: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(COUNCIL_CONFIG=str(config), COUNCIL_DATA_DIR=str(data))
    # a benchmark family: a few examples leave too little held-out traffic to judge on
    argv = [sys.executable, "-m", "council", "improve", "--server", server, "--blind", "5",
            "--control", "0", "--epochs", "1", "--family", "basic_arithmetic", *args]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)  # fmt: skip


def test_one_cycle_runs_every_step_and_reports_them(
    tmp_path: Path, tiny_model_dir: Path, events: Any, postgres_url: str
) -> None:
    """On Postgres: `council serve` and `council improve` on one database, every step's
    reads and writes there (the cycle's other tests here run on the SQLite file)."""
    got, url = events
    config, data = setup(tmp_path, tiny_model_dir, url, database_url=postgres_url)
    server = ServerProcess(config, data)
    try:
        server.wait_ready()
        proc = improve(config, data, server.url)
        output, _ = proc.communicate(timeout=600)
    finally:
        server.stop()
    assert proc.returncode == 0, output
    for step in ("preflight", "harvest", "freeze", "train", "gauntlet"):
        assert f"\n{step}" in output or output.startswith(step) or f" {step} " in output, output
    assert not (data / "council.db").exists()  # the store is the database, not a file
    store = open_db(postgres_url)
    run = dict(store.query("SELECT * FROM runs WHERE kind = 'improve'")[0])
    assert run["status"] == "succeeded" and run["finished_at"] is not None
    assert "gauntlet rejected" in output  # a random tiny model improves nothing: no deploy
    assert "deploy     skipped" in output and "cognitive map rebuilt" in output  # cleanup ran
    reg = Registry(store, data)
    assert reg.champion("core") is None and reg.aliases("core")["challenger"] is not None
    assert [e["event"] for e in got] == ["train_done"]


def test_a_second_cycle_exits_naming_the_lock_holder(tmp_path: Path, tiny_model_dir: Path) -> None:
    config, data = setup(tmp_path, tiny_model_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from council.config import Settings\n"
            "from council.jobs.lock import leader_lock\n"
            f"with leader_lock(Settings(data_dir={str(data)!r})):\n"
            "    print('held', flush=True); time.sleep(60)\n"
        )], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = improve(config, data, "http://127.0.0.1:9")
        output, _ = second.communicate(timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 1
    assert f"pid {holder.pid}" in output and "holds the 'improve' lock" in output, output
    assert not open_db(data / "council.db").query("SELECT * FROM runs")  # it never started


def test_a_cycle_killed_mid_training_leaves_the_champion_untouched(
    tmp_path: Path, tiny_model_dir: Path, events: Any
) -> None:
    got, url = events
    config, data = setup(tmp_path, tiny_model_dir, url)
    store = open_db(data / "council.db")
    server = ServerProcess(config, data)
    try:
        server.wait_ready()
        proc = improve(config, data, server.url, start_new_session=True)
        deadline = time.time() + 300
        step = None
        while time.time() < deadline and proc.poll() is None:
            rows = store.query("SELECT step FROM runs WHERE kind = 'improve'")
            step = rows[0]["step"] if rows else None
            if step == "train":
                break
            time.sleep(0.2)
        assert step == "train", proc.communicate()[0]
        os.killpg(proc.pid, signal.SIGKILL)  # the cycle and its training process
        proc.wait()
        reg = Registry(store, data)
        assert reg.aliases("core") == {"champion": None, "challenger": None, "previous": None}
        assert not reg.versions() and not reg.canaries()
        # The lock died with the process: the next cycle starts and marks the dead run failed.
        with leader_lock(Settings(data_dir=data)):
            pass
        nxt = improve(config, data, server.url)
        output, _ = nxt.communicate(timeout=600)
    finally:
        server.stop()
    assert nxt.returncode == 0, output
    assert "had died mid-cycle" in output
    statuses = [r["status"] for r in store.query("SELECT status FROM runs ORDER BY created_at")]
    assert statuses == ["failed", "succeeded"]
    assert "frozen by an earlier cycle that died before training" in output  # resumed
    assert [e["event"] for e in got] == ["train_done"]  # the killed training never finished


def test_without_a_server_the_cycle_runs_every_step_before_deploy_and_says_so(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config, data = setup(tmp_path, tiny_model_dir)
    proc = improve(config, data, "http://127.0.0.1:9")  # nothing listens there
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "no server at http://127.0.0.1:9 (only the deploy step needs one)" in output, output
    for step in ("preflight", "harvest", "freeze", "train", "gauntlet", "cleanup"):
        assert f"\n{step}" in output or output.startswith(step), output
    store = open_db(data / "council.db")
    run = dict(store.query("SELECT * FROM runs WHERE kind = 'improve'")[0])
    assert run["status"] == "succeeded" and run["finished_at"] is not None
    recorded = json.loads(run["steps_json"])
    assert "no server at http://127.0.0.1:9" in recorded[0]["detail"]  # the run record says so
    steps = [(s["name"], s["status"]) for s in recorded]
    assert [name for name, _ in steps][:5] == ["preflight", "harvest", "freeze", "train",
                                               "gauntlet"]  # fmt: skip
    assert all(status == "ok" for _, status in steps[:5]), steps
    reg = Registry(store, data)
    assert reg.champion("core") is None and reg.aliases("core")["challenger"] is not None


@pytest.mark.parametrize("canary", [True, False])
def test_without_a_server_deploy_changes_the_registry_and_validate_does_not_wait(
    tmp_path: Path, canary: bool
) -> None:
    data = tmp_path / "data"
    folder = data / "adapters" / "core" / "v1"
    folder.mkdir(parents=True)
    meta = {"version": "v1", "role": "core", "base_model_name": "m", "dataset_version": "ds0",
            "created_at": 1000.0, "final_loss": 0.5, "examples": 8}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    store = open_db(data / "council.db")
    cycle = Cycle(Settings(data_dir=data), store, server="http://127.0.0.1:9", canary=canary,
                  on_line=lambda line: None)  # fmt: skip
    cycle.registry.discover()
    cycle.result["adapter"] = "v1"
    deployed = cycle.deploy()
    assert "no server reachable at http://127.0.0.1:9" in deployed, deployed
    assert "a server started with this data dir applies it" in deployed
    assert ("runs its canary" in deployed) is canary
    assert cycle.registry.champion("core") == "v1"  # a server picks it up when it starts
    started = time.monotonic()
    validated = cycle.validate()
    assert time.monotonic() - started < 5  # nothing to wait for without a server
    state = cycle.registry.deployment(cycle.result["deployment"])["state"]
    assert state == ("canary" if canary else "confirmed")
    assert cycle.result["deployed"] is not canary
    if canary:
        assert "not watched: no server at http://127.0.0.1:9" in validated, validated
        assert "until a server starts with this data dir" in validated


def test_a_failing_step_stops_the_cycle_and_notifies(
    tmp_path: Path, tiny_model_dir: Path, events: Any
) -> None:
    got, url = events
    config, data = setup(tmp_path, tiny_model_dir, url, min_free_disk_gb=1e9)
    proc = improve(config, data, "http://127.0.0.1:9")  # no disk is that big: preflight fails
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "GB free under" in output, output
    assert "COUNCIL_MIN_FREE_DISK_GB" in output and "Free some space" in output
    run = open_db(data / "council.db").query("SELECT status, error FROM runs")[0]
    assert run["status"] == "failed" and "GB free under" in run["error"]
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        time.sleep(0.1)
    assert [e["event"] for e in got] == ["pipeline_error"]
    assert "preflight" in got[0]["text"]
