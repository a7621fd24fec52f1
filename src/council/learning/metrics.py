"""Learning metrics (autogen_*), registered beside the council's on the same registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from council.metrics import Metrics


class LearningMetrics:
    def __init__(self, metrics: Metrics):
        r = metrics.registry
        self.rewrite_success_rate = Gauge(
            "autogen_agent0_rewrite_success_rate",
            "Share of Agent-0 rewrites that passed the quality gate in the last harvest.",
            registry=r,
        )
        self.harvest = Counter(
            "autogen_harvest_total", "Harvested failures by outcome (accepted, rejected, failed).",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.examples = Gauge(
            "autogen_training_examples", "Training examples in the store.", registry=r
        )
        self.dataset_examples = Gauge(
            "autogen_dataset_examples", "Examples in the latest frozen dataset.", registry=r
        )
        self.datasets = Counter(
            "autogen_datasets_frozen_total", "Dataset versions frozen.", registry=r
        )


def learning_metrics(metrics: Metrics) -> LearningMetrics:
    """One LearningMetrics per Metrics object (a registry refuses duplicate names)."""
    found: LearningMetrics | None = getattr(metrics, "learning", None)
    if found is None:
        found = LearningMetrics(metrics)
        metrics.learning = found  # type: ignore[attr-defined]
    return found
