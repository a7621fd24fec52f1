"""Training, gauntlet, deployment and cycle metrics, read from the store at scrape time.

Training runs in its own process, `council improve` may run from cron, and a server restarts:
counters kept in one process's memory would miss or forget most of it. The store records
every adapter, gauntlet report, deployment and run, so /metrics derives these from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from council.adapters import ledger as adapters
from council.jobs import ledger as jobs
from council.learning import ledger as learning
from council.memory.store import Store

CYCLE_OUTCOMES = ("succeeded", "failed", "skipped")


class StoreMetrics(Collector):
    def __init__(self, store: Store):
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time

    def collect(self) -> Iterator[Metric]:
        yield from self._training()
        yield from self._gauntlet()
        yield from self._deployments()
        yield from self._cycles()

    def _training(self) -> Iterator[Metric]:
        trained = adapters.count_adapters(self.store)
        for name in ("swarm_lora_train", "autogen_training_completed"):
            yield CounterMetricFamily(name, "LoRA adapters trained.", value=trained)
        meta = adapters.newest_meta(self.store)
        if meta is not None:
            if meta.get("final_loss") is not None:
                for name in ("swarm_lora_loss_last", "autogen_training_loss"):
                    yield GaugeMetricFamily(
                        name, "Final training loss of the newest adapter.", meta["final_loss"]
                    )
            yield GaugeMetricFamily(
                "autogen_training_duration_seconds",
                "Wall time of the newest adapter's training.",
                meta.get("duration_s", 0.0),
            )

    def _gauntlet(self) -> Iterator[Metric]:
        row = learning.latest_gauntlet_report(self.store)
        if row is None:
            return
        if row["ratio"] is not None:
            yield GaugeMetricFamily(
                "autogen_quality_improvement_ratio",
                "Challenger / champion accuracy on the target family (latest gauntlet).",
                row["ratio"],
            )
        acc = GaugeMetricFamily(
            "autogen_gauntlet_accuracy",
            "Accuracy per family in the latest gauntlet.",
            labels=["family", "side"],
        )
        for fam, r in json.loads(row["report_json"])["families"].items():
            for side in ("champion", "challenger"):
                acc.add_metric([fam, side], r[side]["accuracy"])
        yield acc

    def _deployments(self) -> Iterator[Metric]:
        ok, rolled = adapters.count_deployments(self.store)
        yield CounterMetricFamily(
            "autogen_deployment_success",
            "Deployments confirmed (immediately, or after their canary).",
            value=ok,
        )
        yield CounterMetricFamily(
            "autogen_rollback_triggered", "Rollbacks (automatic or by hand).", value=rolled
        )
        champ = GaugeMetricFamily(
            "council_adapter_champion", "1 for each role's champion version.",
            labels=["role", "version"],
        )  # fmt: skip
        for r in adapters.champions(self.store):
            champ.add_metric([r["role"], r["version"] or "base"], 1.0)
        yield champ

    def _cycles(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "autogen_cycle_runs", "Improvement cycles by outcome.", labels=["outcome"]
        )
        counts = {o: 0 for o in CYCLE_OUTCOMES}
        for status, n in jobs.improve_counts(self.store).items():
            if status in counts:
                counts[status] = n
        for outcome, n in counts.items():
            runs.add_metric([outcome], n)
        yield runs
        last = jobs.last_improve_seconds(self.store)
        if last is not None:
            yield GaugeMetricFamily(
                "autogen_cycle_duration_seconds", "Wall time of the latest cycle.", last
            )
