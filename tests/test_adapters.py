"""The adapter registry (aliases, deployments, rollback chain), on SQLite and Postgres
(`store_where`), and the canary's verdicts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from council.adapters.canary import CanaryWatch
from council.adapters.registry import Registry
from council.errors import AdapterError, AdapterNotFoundError
from council.storage import open_db


def registry(
    tmp_path: Path, *versions: str, role: str = "core", where: Path | str | None = None
) -> Registry:
    reg = Registry(open_db(where or tmp_path / "council.db"), tmp_path)
    for i, v in enumerate(versions):
        folder = tmp_path / "adapters" / role / v
        folder.mkdir(parents=True)
        meta = {"version": v, "role": role, "base_model_name": "m", "dataset_version": f"ds{i}",
                "created_at": 1000.0 + i, "final_loss": 0.5, "examples": 8}  # fmt: skip
        (folder / "meta.json").write_text(json.dumps(meta))
    reg.discover()
    return reg


def test_deploys_and_rollbacks_keep_the_previous_champion_known(
    tmp_path: Path, store_where: Path | str
) -> None:
    reg = registry(tmp_path, "v1", "v2", "v3", where=store_where)
    assert reg.aliases("core") == {"champion": None, "challenger": None, "previous": None}
    reg.deploy("core", "v1", canary=False)
    reg.deploy("core", "v2", canary=False)
    reg.set_challenger("core", "v3")
    reg.deploy("core", "v3", canary=False)
    assert reg.aliases("core") == {"champion": "v3", "challenger": None, "previous": "v2"}
    back = reg.rollback("core", "worse answers")
    assert (back["version"], back["previous"], back["action"]) == ("v2", "v3", "rollback")
    # The restored champion's own predecessor becomes `previous` again: a second rollback works.
    assert reg.aliases("core") == {"champion": "v2", "challenger": None, "previous": "v1"}
    reg.rollback("core", "still worse")
    reg.rollback("core", "back to base")
    assert reg.aliases("core") == {"champion": None, "challenger": None, "previous": None}
    with pytest.raises(AdapterError, match="nothing to roll back"):
        reg.rollback("core", "again")
    actions = [(d["action"], d["version"], d["state"]) for d in reg.history("core")]
    assert actions[:3] == [("rollback", None, "confirmed"), ("rollback", "v1", "confirmed"),
                           ("rollback", "v2", "confirmed")]  # fmt: skip
    # A confirmed deployment stays confirmed (it served); the rollback row records the change.
    assert ("deploy", "v3", "confirmed") in actions


def test_a_canary_blocks_a_second_deploy_until_its_verdict(
    tmp_path: Path, store_where: Path | str
) -> None:
    reg = registry(tmp_path, "v1", "v2", where=store_where)
    dep = reg.deploy("core", "v1", canary=True, share=0.5, window_s=30, requests=10)
    assert dep["state"] == "canary" and reg.champion("core") == "v1"
    assert [c["id"] for c in reg.canaries()] == [dep["id"]]
    with pytest.raises(AdapterError, match="still being watched"):
        reg.deploy("core", "v2")
    reg.confirm(dep["id"], {"probes": {"ok": 5, "total": 5}})
    assert reg.deployment(dep["id"])["state"] == "confirmed"
    dep2 = reg.deploy("core", "v2", canary=True)
    reg.rollback("core", "probes failed", summary={"probes": {"ok": 0, "total": 5}})
    assert reg.deployment(dep2["id"])["state"] == "rolled_back"
    assert reg.deployment(dep2["id"])["summary"]["probes"]["ok"] == 0
    assert reg.aliases("core")["champion"] == "v1" and not reg.canaries()


def test_bad_requests_say_what_to_do(tmp_path: Path, store_where: Path | str) -> None:
    reg = registry(tmp_path, "v1", where=store_where)
    with pytest.raises(AdapterNotFoundError, match=r"No adapter version 'nope'.*v1"):
        reg.deploy("core", "nope")
    with pytest.raises(AdapterError, match="trained for role 'core', not 'coder'"):
        reg.deploy("coder", "v1")
    reg.deploy("core", "v1", canary=False)
    with pytest.raises(AdapterError, match="already the champion"):
        reg.deploy("core", "v1", canary=False)


def test_discover_skips_unfinished_trainings(tmp_path: Path, store_where: Path | str) -> None:
    reg = registry(tmp_path, "v1", where=store_where)
    half = tmp_path / "adapters" / "core" / ".train-v2-x"
    half.mkdir(parents=True)
    (half / "meta.json").write_text(json.dumps({"version": "v2"}))
    assert reg.discover() == 0 and [v["version"] for v in reg.versions()] == ["v1"]


def watch(**kw) -> CanaryWatch:  # type: ignore[no-untyped-def]
    dep = {"id": 1, "version": "new", "previous": "old", "window_s": 60.0, "requests": 40}
    dep.update(kw.pop("dep", {}))
    return CanaryWatch(dep, min_samples=5, success_threshold=0.85, latency_threshold_ms=1000, **kw)


def test_canary_rolls_back_on_failed_probes_before_the_window_ends() -> None:
    w = watch(probes_planned=10)
    for ok in [True, False, False, False, True]:
        w.observe_probe(ok)
    outcome, reason = w.verdict()  # type: ignore[misc]
    assert outcome == "rollback" and reason == "probes success rate 0.40 < 0.85 (2/5 probes)"


def test_canary_rolls_back_on_live_errors_and_on_latency() -> None:
    w = watch(probes_planned=0)
    for ok in [True, True, False, False, True]:
        w.observe_candidate(ok, 100.0)
    assert w.verdict()[0] == "rollback"  # type: ignore[index]
    slow = watch(probes_planned=0, baseline_ms=[900.0] * 20)
    for _ in range(5):
        slow.observe_candidate(True, 2500.0)
    outcome, reason = slow.verdict()  # type: ignore[misc]
    assert outcome == "rollback" and "p95 latency 2500 ms > baseline 900 ms + 1000 ms" in reason
    fine = watch(probes_planned=0, baseline_ms=[900.0] * 20)
    for _ in range(5):
        fine.observe_candidate(True, 1500.0)  # slower, but within the allowed increase
    assert fine.verdict() is None


def test_canary_confirms_after_its_window_or_its_requests() -> None:
    w = watch(probes_planned=3)
    for _ in range(3):
        w.observe_probe(True)
    assert w.verdict() is None  # window still open
    assert w.verdict(now=time.time() + 61) == (
        "confirm", "canary passed: probes 3/3 probes")  # fmt: skip
    busy = watch(probes_planned=0, dep={"requests": 6})
    for _ in range(6):
        busy.observe_candidate(True, 10.0)
    assert busy.verdict() == ("confirm", "canary passed: live 6/6 live calls")
    waiting = watch()  # probes still being prepared: no verdict even after the window
    assert waiting.verdict(now=time.time() + 61) is None


def test_store_metrics_expose_training_gauntlet_and_deployments(
    tmp_path: Path, store_where: Path | str
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from council.jobs.runs import Runs
    from council.learning.gauntlet import Item, Outcome, compare
    from council.learning.ledger import record_gauntlet_report
    from council.learning.store_metrics import StoreMetrics

    reg = registry(tmp_path, "v1", where=store_where)
    items = [Item("basic_arithmetic", f"q{i}", "1", "target") for i in range(10)]
    champion = Outcome([i < 2 for i in range(10)], [10.0] * 10, [""] * 10)
    challenger = Outcome([i < 5 for i in range(10)], [12.0] * 10, [""] * 10)
    report = compare(items, champion, challenger, "basic_arithmetic", ("base", "v1"))
    record_gauntlet_report(reg.store, "core", report)
    reg.deploy("core", "v1", canary=False)
    runs = Runs(reg.store, tmp_path)
    runs.update(runs.create("improve"), status="failed", error="boom")
    registry_ = CollectorRegistry()
    registry_.register(StoreMetrics(reg.store))
    text = generate_latest(registry_).decode()
    for line in [
        "swarm_lora_train_total 1.0", "autogen_training_completed_total 1.0",
        "swarm_lora_loss_last 0.5", "autogen_training_loss 0.5",
        "autogen_quality_improvement_ratio 2.5",
        'autogen_gauntlet_accuracy{family="basic_arithmetic",side="challenger"} 0.5',
        "autogen_deployment_success_total 1.0", "autogen_rollback_triggered_total 0.0",
        'council_adapter_champion{role="core",version="v1"} 1.0',
        'autogen_cycle_runs_total{outcome="failed"} 1.0',
        'autogen_cycle_runs_total{outcome="succeeded"} 0.0',
    ]:  # fmt: skip
        assert line in text, line


def test_retention_keeps_aliased_versions_and_their_datasets(
    tmp_path: Path, store_where: Path | str
) -> None:
    import os

    from council.learning.cycle import retain

    reg = registry(tmp_path, "v1", "v2", "v3", "v4", where=store_where)
    for i in range(4):
        folder = tmp_path / "datasets" / f"ds{i}"
        folder.mkdir(parents=True)
        with reg.store.tx() as db:
            db.execute("INSERT INTO datasets VALUES (?, ?, 1, 'x', ?)", (f"ds{i}", str(folder), i))
    reg.deploy("core", "v1", canary=False)  # the oldest is the champion: it must stay
    stale = tmp_path / "adapters" / "core" / ".train-v9-old"
    fresh = tmp_path / "adapters" / "core" / ".train-v10-now"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (0, 0))
    assert retain(reg.store, reg, tmp_path, keep_datasets=1, keep_adapters=1) == {
        "datasets": 2, "adapters": 2}  # fmt: skip
    kept = {v["version"]: v["retired"] for v in reg.versions()}
    assert kept == {"v1": False, "v2": True, "v3": True, "v4": False}
    assert not (tmp_path / "adapters" / "core" / "v2").exists()
    assert (tmp_path / "datasets" / "ds0").exists()  # the champion's dataset
    assert (tmp_path / "datasets" / "ds3").exists()  # the newest
    assert not (tmp_path / "datasets" / "ds1").exists()
    assert not stale.exists() and fresh.exists()
