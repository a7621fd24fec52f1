"""A canary's verdict: keep the new champion, or roll back to the previous one.

Two kinds of evidence, judged separately (the worse one decides):

* probes: items with a known right answer that the previous champion answers correctly,
  asked again through the new one: users' held-out traffic (checked or corrected) and replay
  items (past successes), the gauntlet's own sets; reasoning-gym families at a seed of their
  own only while there is no traffic yet. The previous champion's
  success rate on them is 1.0 by construction, so ROLLBACK_THRESHOLD_SUCCESS (0.85) reads
  "keeps at least 85 % of what the old champion got right". A small model gets most
  open questions wrong; an absolute success rate over arbitrary traffic would roll back
  every adapter on such a model, a good one included.
* live calls served by the new version: an error, a timeout or an empty answer fails.

Latency: the new version's p95 over its calls may exceed the previous champion's p95,
measured on this machine just before and alongside the canary, by at most
ROLLBACK_THRESHOLD_LATENCY ms. An absolute 1000 ms would fail every call on a CPU-only box
where one answer takes seconds; the product runs on such boxes, so the threshold is the
allowed increase over the measured baseline.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@dataclass
class CanaryWatch:
    deployment: dict[str, Any]
    min_samples: int
    success_threshold: float
    latency_threshold_ms: float
    baseline_ms: list[float] = field(default_factory=list)  # the previous champion's calls
    candidate_ms: list[float] = field(default_factory=list)
    live_ok: int = 0
    live_total: int = 0
    probe_ok: int = 0
    probe_total: int = 0
    probes_planned: int | None = None  # None: the probe set is still being prepared
    started: float = field(default_factory=time.time)

    @property
    def version(self) -> str | None:
        return self.deployment["version"]

    def observe_candidate(self, ok: bool, latency_ms: float) -> None:
        self.live_total += 1
        self.live_ok += ok
        if ok:
            self.candidate_ms.append(latency_ms)

    def observe_baseline(self, latency_ms: float) -> None:
        self.baseline_ms.append(latency_ms)

    def observe_probe(self, ok: bool) -> None:
        self.probe_total += 1
        self.probe_ok += ok

    def rates(self) -> dict[str, float | None]:
        live = self.live_ok / self.live_total if self.live_total >= self.min_samples else None
        enough = min(self.min_samples, self.probes_planned or 0)
        probes = self.probe_ok / self.probe_total if self.probe_total and (
            self.probe_total >= enough) else None  # fmt: skip
        return {"live": live, "probes": probes}

    def verdict(self, now: float | None = None) -> tuple[str, str] | None:
        """("rollback" | "confirm", reason), or None while the window is still open."""
        now = time.time() if now is None else now
        for kind, rate in self.rates().items():
            if rate is not None and rate < self.success_threshold:
                return "rollback", (
                    f"{kind} success rate {rate:.2f} < {self.success_threshold:.2f} "
                    f"({self._counts(kind)})"
                )
        cand, base = p95(self.candidate_ms), p95(self.baseline_ms)
        if (
            cand is not None and base is not None and len(self.candidate_ms) >= self.min_samples
            and cand > base + self.latency_threshold_ms
        ):  # fmt: skip
            return "rollback", (
                f"p95 latency {cand:.0f} ms > baseline {base:.0f} ms + "
                f"{self.latency_threshold_ms:.0f} ms"
            )
        window_over = (
            now - self.started >= self.deployment["window_s"]
            or self.live_total >= self.deployment["requests"]
        )
        probes_done = self.probes_planned is not None and self.probe_total >= self.probes_planned
        if window_over and probes_done:
            rates = self.rates()
            judged = [f"{k} {self._counts(k)}" for k, r in rates.items() if r is not None]
            return "confirm", "canary passed: " + (", ".join(judged) or "no traffic to judge")
        return None

    def _counts(self, kind: str) -> str:
        if kind == "live":
            return f"{self.live_ok}/{self.live_total} live calls"
        return f"{self.probe_ok}/{self.probe_total} probes"

    def summary(self) -> dict[str, Any]:
        cand, base = p95(self.candidate_ms), p95(self.baseline_ms)
        return {
            "version": self.version,
            "previous": self.deployment["previous"],
            "window_s": round(time.time() - self.started, 1),
            "live": {"ok": self.live_ok, "total": self.live_total},
            "probes": {"ok": self.probe_ok, "total": self.probe_total,
                       "planned": self.probes_planned},
            "latency_ms": {
                "candidate": {"p50": _median(self.candidate_ms), "p95": cand,
                              "n": len(self.candidate_ms)},
                "baseline": {"p50": _median(self.baseline_ms), "p95": base,
                             "n": len(self.baseline_ms)},
            },
            "thresholds": {"success": self.success_threshold,
                           "latency_ms_over_baseline": self.latency_threshold_ms},
        }  # fmt: skip


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None
