"""Prometheus metrics. One Metrics object per app, on its own registry (tests make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from council.config import HeadSpec
from council.types import Completion, Verdict

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160)
SHARE_BUCKETS = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CALL_BUCKETS = (1, 2, 3, 5, 8, 11, 16, 24, 32)


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
        # routing and escalation
        self.routes = Counter(
            "swarm_route_total",
            "Decisions by the strategy and tier that made them (courier, master, council).",
            ["strategy", "chosen_model"],
            registry=r,
        )
        self.head_calls = Histogram(
            "swarm_head_calls_per_decision",
            "Head completions one decision paid for (judges, reviews and rounds included).",
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.early_stops = Counter(
            "swarm_early_stop_total",
            "Decisions where the cheapest heads agreed and the rest were not asked.",
            registry=r,
        )
        self.cloud_retry = Counter(
            "swarm_cloud_retry_total",
            "Escalations to the next provider (CloudRetry), by provider and why.",
            ["provider", "reason"],
            registry=r,
        )
        self.answers = Counter(
            "swarm_answers_total",
            "Answers by where the deciding ballot ran (local or cloud).",
            ["source"],
            registry=r,
        )
        self.cloud_share = Gauge(
            "swarm_cloud_share_ratio",
            "Share of answers decided by a ballot with a cloud head (the local-first promise).",
            registry=r,
        )
        self.refusals = Counter(
            "swarm_governor_refusals_total",
            "Head calls the governor refused (local_only or the daily budget).",
            ["head", "reason"],
            registry=r,
        )
        self.spend_today = Gauge(
            "swarm_spend_today_usd", "Priced spend so far today (UTC), all heads.", registry=r
        )
        self.budget = Gauge(
            "swarm_daily_budget_usd", "The governor's daily budget (-1: no cap).", registry=r
        )
        # limits per key (quota/): labelled by the key's user name
        self.key_requests = Counter(
            "council_key_requests_total", "Requests admitted per key.", ["key"], registry=r
        )
        self.key_tokens = Counter(
            "council_key_tokens_total",
            "Tokens (in + out) of every head call a key's requests caused.",
            ["key", "head"],
            registry=r,
        )
        self.key_cost = Counter(
            "council_key_cost_usd_total",
            "Spend of every priced head call a key's requests caused.",
            ["key", "head"],
            registry=r,
        )
        self.key_rejections = Counter(
            "council_key_rejections_total",
            "Requests refused with 429, by key and the limit (rpm, tokens_per_day, usd_per_day).",
            ["key", "limit"],
            registry=r,
        )
        self._answers = {"local": 0, "cloud": 0}

    def observe_call(self, spec: HeadSpec, completions: list[Completion]) -> None:
        """Every head call, wherever it comes from (ballots, judges, rounds, learning jobs)."""
        for c in completions:
            self.head_latency.labels(spec.id).observe(c.latency_ms / 1000)
            if c.error:
                self.head_errors.labels(spec.id).inc()
            self.head_tokens.labels(spec.id, "in").inc(c.tokens_in)
            self.head_tokens.labels(spec.id, "out").inc(c.tokens_out)
            self.head_cost.labels(spec.id).inc(c.cost_usd)

    def observe_verdict(self, v: Verdict, cloud: bool = False) -> None:
        self.vote_latency.labels(v.strategy).observe(v.latency_ms / 1000)
        self.vote_results.labels(outcome(v)).inc()
        self.agreement.observe(v.confidence)
        self.agreement_last.set(v.confidence)
        self.routes.labels(v.strategy, v.chosen_model or "council").inc()
        self.head_calls.observe(v.head_calls)
        source = "cloud" if cloud else "local"
        self.answers.labels(source).inc()
        self._answers[source] += 1
        self.cloud_share.set(self._answers["cloud"] / sum(self._answers.values()))

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
