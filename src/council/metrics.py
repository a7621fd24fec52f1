"""Prometheus metrics. One Metrics object per app, on its own registry (tests make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from council.types import Verdict

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160)
SHARE_BUCKETS = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.vote_latency = Histogram(
            "swarm_vote_latency_seconds",
            "Wall time of one council decision.",
            ["strategy"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.vote_results = Counter(
            "swarm_vote_results_total",
            "Council decisions by outcome (unanimous, majority, plurality, no_consensus, failed).",
            ["outcome"],
            registry=r,
        )
        self.agreement = Histogram(
            "swarm_council_agreement",
            "Share of weight behind the winning answer.",
            buckets=SHARE_BUCKETS,
            registry=r,
        )
        self.agreement_last = Gauge(
            "swarm_council_agreement_last", "Agreement of the latest decision.", registry=r
        )
        self.head_latency = Histogram(
            "swarm_head_latency_seconds",
            "Latency of one head call.",
            ["head"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.head_errors = Counter(
            "swarm_head_errors_total", "Head calls that failed or timed out.", ["head"], registry=r
        )
        self.head_tokens = Counter(
            "swarm_head_tokens_total",
            "Tokens through each head.",
            ["head", "direction"],
            registry=r,
        )
        self.head_cost = Counter(
            "swarm_head_cost_usd_total",
            "Spend per head from catalogue prices.",
            ["head"],
            registry=r,
        )
        self.requests = Counter(
            "swarm_http_requests_total",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )

    def observe_verdict(self, v: Verdict) -> None:
        self.vote_latency.labels(v.strategy).observe(v.latency_ms / 1000)
        self.vote_results.labels(outcome(v)).inc()
        self.agreement.observe(v.confidence)
        self.agreement_last.set(v.confidence)
        for vote in v.votes:
            self.head_latency.labels(vote.head).observe(vote.latency_ms / 1000)
            if vote.error:
                self.head_errors.labels(vote.head).inc()
            self.head_tokens.labels(vote.head, "in").inc(vote.tokens_in)
            self.head_tokens.labels(vote.head, "out").inc(vote.tokens_out)
            self.head_cost.labels(vote.head).inc(vote.cost_usd)

    def observe_failure(self, strategy: str, latency_s: float) -> None:
        self.vote_latency.labels(strategy).observe(latency_s)
        self.vote_results.labels("failed").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def outcome(v: Verdict) -> str:
    if "no consensus" in v.notes:
        return "no_consensus"
    clusters = {vote.cluster for vote in v.votes if vote.cluster is not None}
    if len(clusters) <= 1:
        return "unanimous"
    return "majority" if v.confidence > 0.5 else "plurality"
