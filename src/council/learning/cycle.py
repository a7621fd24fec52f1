"""The nightly improvement cycle (`council improve`): one leader, steps timed, champion safe.

  preflight → harvest → freeze → train → gauntlet → canary deploy → validate → cleanup

Preflight checks the disk has room and there is enough to learn from. Only the deploy step
needs a server (a server runs the canary): without one the deployment is still recorded in the
registry, the next server started with this data dir applies it (and watches its canary), and
the run says so instead of waiting. A failing step ends the run `failed` with the champion
untouched (only the deploy step changes it, and only through the registry, which the canary
can undo).
Training runs as its own process with its own thread budget. Only one cycle runs at a time
across processes and hosts (jobs/lock.py). Every step lands in the run record.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from council.adapters import ledger as adapter_ledger
from council.adapters import registry as adapters
from council.config import Settings
from council.errors import StepFailed
from council.jobs.lock import leader_lock
from council.jobs.notify import notify
from council.jobs.runs import Runs, train_command
from council.learning import ledger
from council.memory.store import Store

STALE_TRAINING_S = 24 * 3600


class NothingToDo(Exception):
    """Preflight found too little to learn from: the run ends `skipped`."""


class Cycle:
    def __init__(
        self, settings: Settings, store: Store, *, server: str | None = None, role: str = "core",
        since: str = "7d", blind: int = 100, control: int = 40, epochs: float = 3.0,
        learning_rate: float = 2e-4, canary: bool = True, family: str | None = None,
        on_line: Callable[[str], None] = print,
    ):  # fmt: skip
        self.settings = settings
        self.store = store
        self.server = server or f"http://{settings.server.host}:{settings.server.port}"
        self.role, self.since, self.blind, self.control = role, since, blind, control
        self.epochs, self.learning_rate, self.canary = epochs, learning_rate, canary
        # None: judged on held-out traffic (rule.py); a family: a benchmark of that family
        self.family = family
        if blind and family:  # a typo fails now, not after an hour of training
            from council.learning.gauntlet import check_family

            check_family(family)
        self.runs = Runs(store, settings.server.data_dir)
        self.registry = adapters.Registry(store, settings.server.data_dir)
        self.on_line = on_line
        self.steps: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.run_id = ""

    # driver ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        with leader_lock(self.settings, "improve") as lease:
            self.run_id = self.runs.create("improve", {"role": self.role, "since": self.since,
                                                       "holder": lease.describe()})  # fmt: skip
            self.say(f"run {self.run_id} ({lease.describe()})")
            for stale in self.runs.abandon_dead("improve", keep=self.run_id):
                self.say(f"run {stale} had died mid-cycle (marked failed; champion untouched)")
            self.runs.update(self.run_id, status="running")
            self.registry.discover()
            try:
                for name, step in self.plan():
                    self.step(name, step)
                status = "succeeded"
            except NothingToDo as why:
                status, self.result["skipped"] = "skipped", str(why)
                self.say(f"nothing to do: {why}")
            except Exception as exc:
                status = "failed"
                self.runs.update(self.run_id, status=status, steps=self.steps, result=self.result,
                                 error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                self.say(f"FAILED: {exc} (the champion is untouched)")
                notify(self.settings, "pipeline_error",
                       f"Improvement cycle {self.run_id} failed at {self.steps[-1]['name']}: "
                       f"{exc}", {"run": self.run_id})  # fmt: skip
                raise
            self.runs.update(self.run_id, status=status, step="done", progress=1.0,
                             steps=self.steps, result=self.result)  # fmt: skip
            return {"run_id": self.run_id, "status": status, **self.result}

    def plan(self) -> list[tuple[str, Callable[[], Any]]]:
        return [
            ("preflight", self.preflight), ("harvest", self.harvest), ("freeze", self.freeze),
            ("train", self.train), ("gauntlet", self.gauntlet), ("deploy", self.deploy),
            ("validate", self.validate), ("cleanup", self.cleanup),
        ]  # fmt: skip

    def step(self, name: str, fn: Callable[[], Any]) -> None:
        if self.result.get("stop") and name != "cleanup":  # retention and the map always run
            self.steps.append({"name": name, "status": "skipped", "seconds": 0.0,
                               "detail": self.result["stop"]})  # fmt: skip
            self.say(f"{name:<10} skipped: {self.result['stop']}")
            return
        started = time.perf_counter()
        entry: dict[str, Any] = {"name": name, "status": "running"}
        self.steps.append(entry)
        self.runs.update(self.run_id, step=name, steps=self.steps,
                         progress=len(self.steps) / len(self.plan()))  # fmt: skip
        try:
            detail = fn()
        except BaseException as exc:
            entry.update(status="failed", seconds=round(time.perf_counter() - started, 2),
                         detail=str(exc))  # fmt: skip
            raise
        entry.update(status="ok", seconds=round(time.perf_counter() - started, 2),
                     detail=detail)  # fmt: skip
        self.say(f"{name:<10} {entry['seconds']:8.1f}s  {detail}")

    def say(self, line: str) -> None:
        self.on_line(line)
        if self.run_id:
            self.runs.log(self.run_id, line)

    # steps -----------------------------------------------------------------------------
    def server_health(self) -> dict[str, Any] | None:
        """The server's /health, or None when nothing answers there (only deploy cares)."""
        try:
            health = httpx.get(f"{self.server}/health", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return None
        return health if isinstance(health, dict) else {}

    def preflight(self) -> str:
        health = self.server_health()
        server = (
            f"no server at {self.server} (only the deploy step needs one)"
            if health is None else f"server {health.get('status', 'ok')}"
        )  # fmt: skip
        free_gb = shutil.disk_usage(self.settings.server.data_dir).free / 1e9
        if free_gb < self.settings.learning.min_free_disk_gb:
            raise StepFailed(
                f"Only {free_gb:.1f} GB free under {self.settings.server.data_dir}; the cycle "
                f"needs {self.settings.learning.min_free_disk_gb:g} GB (COUNCIL_MIN_FREE_DISK_GB). "
                "Free some space (old datasets and adapters go with retention)."
            )
        from council.learning.harvest import failures, parse_since

        pending = len(failures(self.store, parse_since(self.since)))
        fresh = self._unfrozen_examples()
        need = self.settings.learning.min_failures_to_train
        untrained = self._untrained_dataset()
        if untrained:
            return f"dataset {untrained} was never trained on (an earlier cycle died): resuming"
        if pending + fresh < need:
            raise NothingToDo(
                f"{pending} new failures and {fresh} new examples since the last dataset; "
                f"training needs {need} (MIN_FAILURES_TO_TRAIN)"
            )
        return (f"{server}, {free_gb:.0f} GB free, "
                f"{pending} failures + {fresh} examples to learn from")  # fmt: skip

    def _untrained_dataset(self) -> str | None:
        """The newest dataset, when no adapter was trained on it (a cycle died first)."""
        return ledger.untrained_dataset(self.store, self.settings.learning.min_failures_to_train)

    def _unfrozen_examples(self) -> int:
        return ledger.unfrozen_examples(self.store, self.settings.learning.quality_threshold)

    def harvest(self) -> str:
        from council.council import Council
        from council.learning.harvest import harvest

        async def go() -> Any:
            council = Council(self.settings)
            try:
                return await harvest(council, since=self.since)
            finally:
                await council.close()

        report = asyncio.run(go())
        counts = {s: report.count(s) for s in ("accepted", "rejected", "failed")}
        self.result["harvest"] = counts
        return f"{report.considered} failures: " + ", ".join(f"{n} {k}" for k, n in counts.items())

    def freeze(self) -> str:
        from council.learning.datasets import freeze

        fresh = self._unfrozen_examples()
        untrained = self._untrained_dataset()
        if untrained and fresh < self.settings.learning.min_failures_to_train:
            self.result["dataset"] = untrained
            return (f"{untrained}: frozen by an earlier cycle that died before training"
                    + self._enough_traffic())  # fmt: skip
        if fresh < self.settings.learning.min_failures_to_train:
            self.result["stop"] = (
                f"{fresh} new examples < MIN_FAILURES_TO_TRAIN "
                f"({self.settings.learning.min_failures_to_train}): no training tonight"
            )
            return self.result["stop"]
        learning = self.settings.learning
        manifest = freeze(self.store, self.settings.server.data_dir / "datasets",
                          min_quality=learning.quality_threshold,
                          heldout_share=learning.heldout_share)  # fmt: skip
        held = manifest["splits"]["heldout"]["examples"]
        said = f"{manifest['version']}: {manifest['examples']} examples, {held} held out"
        if manifest["examples"] < learning.min_failures_to_train:
            self.result["stop"] = (
                f"{said}; {manifest['examples']} to train on < MIN_FAILURES_TO_TRAIN "
                f"({learning.min_failures_to_train}): no training tonight, waiting for traffic"
            )
            return self.result["stop"]
        self.result["dataset"] = manifest["version"]
        return said + self._enough_traffic()

    def _enough_traffic(self) -> str:
        """Judged on traffic (no family given), the gate needs enough held-out questions to
        decide; with fewer, training now could only end in "wait": stop before training."""
        if self.family is not None or not self.blind:
            return ""
        from council.learning.gate_sets import gain_set
        from council.learning.judge import judge_spec
        from council.learning.rule import min_items_gain

        judge = judge_spec(self.settings)
        _, asked, unscorable = gain_set(self.store, None, self.blind, judged=judge is not None)
        need = min_items_gain()
        if len(asked) < need:
            self.result["stop"] = (
                f"{len(asked)} held-out questions the gate can score ({unscorable} it cannot"
                f"{'' if judge else ': no judge_head'}) < {need}, the fewest on which its test "
                "can decide: no training tonight, waiting for more traffic"
            )
            return "; " + self.result["stop"]
        return f"; {len(asked)} held-out questions to judge on"

    def train(self) -> str:
        argv, env = train_command(self.settings, role=self.role, dataset=self.result["dataset"],
                                  epochs=self.epochs, learning_rate=self.learning_rate)  # fmt: skip
        log = self.runs.log_path(self.run_id)
        with log.open("a") as sink:
            code = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, env=env).returncode
        if code != 0:
            raise StepFailed(f"training exited with {code}; see {log}")
        version = self.registry.aliases(self.role)["challenger"]
        meta = self.registry.get(version) if version else None
        if meta is None or meta["dataset_version"] != self.result["dataset"]:
            raise StepFailed(f"training finished but registered no adapter; see {log}")
        self.result["adapter"] = version
        return f"{version} (final loss {meta['final_loss']:.4f}, {meta['duration_s']:.0f}s)"

    def gauntlet(self) -> str:
        from council.embeddings import Embedder
        from council.learning.gauntlet import run_gauntlet

        report = asyncio.run(run_gauntlet(
            self.settings, self.store, Embedder(self.settings.memory.embedder),
            adapter=self.result["adapter"], against="champion", blind=self.blind,
            control=self.control, role=self.role, target=self.family,
        ))  # fmt: skip
        self.result["gauntlet"] = {"verdict": report["verdict"], "reasons": report["reasons"],
                                   "rule": report["rule"], "report": report["path"]}  # fmt: skip
        if report["verdict"] == "wait":
            self.result["stop"] = "gauntlet: too few items to decide, waiting for more " \
                "traffic: " + "; ".join(report["reasons"])  # fmt: skip
        elif report["verdict"] != "promote":
            self.result["stop"] = "gauntlet rejected the challenger: " + "; ".join(
                report["reasons"]
            )
        return f"{report['verdict']}: " + "; ".join(report["reasons"])

    def deploy(self) -> str:
        reason = f"cycle {self.run_id}: gauntlet passed"
        adapter = self.result["adapter"]
        dep = adapters.deploy(
            self.settings, self.registry, self.role, adapter, canary=self.canary, reason=reason
        )
        self.result["deployment"] = dep["id"]
        done = f"deployment {dep['id']}: {dep['previous'] or 'base'} → {adapter} ({dep['state']})"
        if self.server_health() is None:
            self.result["no_server"] = self.server
            return (
                f"{done}; no server reachable at {self.server}: the champion is changed in the "
                "registry, and a server started with this data dir applies it"
                + (" and runs its canary" if dep["state"] == "canary" else "")
            )
        return done

    def validate(self, poll_s: float = 1.0) -> str:
        dep = self.registry.deployment(self.result["deployment"])
        if "no_server" in self.result and dep["state"] == "canary":
            self.result["deployed"] = False
            return (
                f"not watched: no server at {self.result['no_server']} runs the canary of "
                f"{dep['version']}; it stays a canary until a server starts with this data dir, "
                "which confirms it or rolls it back (see `council adapters list`)"
            )
        deadline = time.time() + dep["window_s"] + 300  # the window, probes and some slack
        while dep["state"] == "canary" and time.time() < deadline:
            time.sleep(poll_s)
            dep = self.registry.deployment(dep["id"])
        self.result["deployed"] = dep["state"] == "confirmed"
        if dep["state"] == "canary":
            raise StepFailed(
                f"the canary of {dep['version']} got no verdict in time: is the server at "
                f"{self.server} running with this data dir? The canary stays; roll it back "
                "with `council rollback` if needed."
            )
        return f"{dep['state']}: {dep['reason']}"

    def cleanup(self) -> str:
        s = self.settings
        removed = retain(
            self.store,
            self.registry,
            s.server.data_dir,
            s.learning.keep_datasets,
            s.learning.keep_adapters,
        )
        logs = self.runs.prune(s.learning.keep_runs)
        from council.routing import cognitive_map

        cognitive_map.write(s.server.data_dir, self.store)
        return (
            f"removed {removed['datasets']} datasets, {removed['adapters']} adapters, "
            f"{logs} logs; cognitive map rebuilt"
        )


def retain(store: Store, registry: adapters.Registry, data_dir: Path, keep_datasets: int,
           keep_adapters: int) -> dict[str, int]:  # fmt: skip
    """Delete old dataset folders and adapter files; aliased adapters and their datasets stay."""
    aliased = {v for a in registry.all_aliases().values() for v in a.values() if v}
    gone_adapters = 0
    for role in registry.roles():
        live = [a for a in registry.versions(role) if not a["retired"]]
        for a in live[: max(0, len(live) - keep_adapters)]:
            if a["version"] in aliased:
                continue
            shutil.rmtree(a["path"], ignore_errors=True)
            adapter_ledger.retire(store, a["version"])
            gone_adapters += 1
    needed = {a["dataset_version"] for a in registry.versions() if a["version"] in aliased}
    rows = ledger.dataset_rows(store, newest_first=True)
    gone_datasets = 0
    for r in rows[keep_datasets:]:
        if r["version"] in needed or not Path(r["path"]).exists():
            continue
        shutil.rmtree(r["path"], ignore_errors=True)
        gone_datasets += 1
    # Half-written trainings left by a crash or kill -9 (never registered). A day's margin:
    # a training started through /api/train may be writing one right now.
    for tmp in (data_dir / "adapters").glob("*/.train-*"):
        if time.time() - tmp.stat().st_mtime > STALE_TRAINING_S:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"datasets": gone_datasets, "adapters": gone_adapters}
