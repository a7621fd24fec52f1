"""The sections of Settings: server, heads, memory, routing, learning, deploy.

Each field is still set by its old flat name: `COUNCIL_<NAME>` in the environment, `name = ...` at
the top of council.toml (or inside its `[section]` table), or `Settings(name=...)`. `FLAT` maps
those names (and the seeds' variable names) onto (section, field); config.py does the routing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from council.catalogue import HeadSpec, packaged_catalogue


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "council"


class ServerSettings(Section):
    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_prompt_chars: int = Field(32_000, ge=1)
    admin_token: SecretStr | None = None  # COUNCIL_ADMIN_TOKEN; unset: admin API answers 403
    session_hours: float = Field(168.0, gt=0.0)  # a web page sign-in lasts this long
    max_messages: int = Field(256, ge=1)  # messages in one request
    max_body_bytes: int = Field(4_000_000, ge=1024)  # larger request bodies answer 413
    # Host headers served (DNS rebinding); None: loopback names and `host`, any when bound to
    # 0.0.0.0 or ::. The environment takes "a.example,b.example".
    allowed_hosts: Annotated[list[str] | None, NoDecode] = None

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: Any) -> Any:
        if isinstance(v, str):  # COUNCIL_ALLOWED_HOSTS=council.lan,localhost
            v = [h.strip() for h in v.split(",") if h.strip()]
        return v


class HeadsSettings(Section):
    specs: list[HeadSpec] = Field(default_factory=packaged_catalogue)  # COUNCIL_HEADS, [[heads]]
    hybrid_head: str | None = None  # head for /hybrid; default: highest speed score
    threads: int = Field(1, ge=1)  # torch threads per worker; 2 OpenMP threads collapse on 2 cores
    # decode steps choose between `threads` = 1 and every core, whichever a probe finds faster
    # (heads/threads.py); the results are the same either way. Council c=8 ran 1.6x faster
    # with it on a 2-core box whose second core was free (benchmarks/engine_load.py)
    adaptive_threads: bool = True
    batch_window_ms: float = Field(8.0, ge=0.0)
    # rows decoding at once; 8 councils (40 rows) fit: SmolLM2-135M, 1 thread, measured
    # 24 ms/row per step at 64 rows vs 37 at 32 (a step's cost grows far slower than its rows)
    max_batch: int = Field(64, ge=1)
    pack_weights: bool = True  # oneDNN-packed Linear weights: faster batches, one extra copy
    # the packed layers' dtype (heads/packing.py). float32: exact, a row's greedy text is the
    # same whatever shares its batch. bfloat16: ~1.5x faster decode steps on CPUs with AMX,
    # but greedy text can change with the batch. auto: bfloat16 where the CPU has AMX or
    # AVX512-BF16, else float32.
    weight_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    max_tokens_cap: int = Field(1024, ge=1)  # most tokens one head call may generate
    queue_size: int = Field(16, ge=1)  # rows waiting per loaded model; beyond it: 503
    # continuous: rows join and leave the running batch each step (heads/continuous.py); the
    # only engine since the micro-batch one ("batch") was measured against it and removed
    engine: Literal["continuous"] = "continuous"
    # prompt heads' K/V kept per local model (heads/prefixes.py), in tokens; 0 turns it off.
    # The five packaged personas' system turns take ~115; a council's prefill then runs only
    # each row's user turn (benchmarks/prefix_cache.py).
    prefix_cache_tokens: int = Field(2048, ge=0)

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_removed(cls, v: Any) -> Any:
        if v == "batch":
            raise ValueError(
                'the micro-batch engine ("batch") was removed; the continuous engine serves '
                "every local model now: delete `engine` from council.toml (or COUNCIL_ENGINE)"
            )
        return v

    @field_validator("specs")
    @classmethod
    def _unique_ids(cls, heads: list[HeadSpec]) -> list[HeadSpec]:
        seen: set[str] = set()
        for h in heads:
            if h.id in seen:
                raise ValueError(f"head id {h.id!r} appears twice; each head needs its own id")
            if h.id == "council":
                raise ValueError("head id 'council' is reserved for the ballot itself")
            seen.add(h.id)
        return heads

    @model_validator(mode="after")
    def _bf16_is_packed(self) -> HeadsSettings:
        if self.weight_dtype == "bfloat16" and not self.pack_weights:
            raise ValueError(
                "weight_dtype = bfloat16 is served through packed layers: set "
                "pack_weights = true, or weight_dtype = float32"
            )
        return self


class MemorySettings(Section):
    enabled: bool = True  # COUNCIL_MEMORY: record every exchange and recall past ones
    embedder: str = "minilm"  # "minilm" (packaged), a sentence-transformers folder, or "none"
    recall_k: int = Field(3, ge=0)  # past exchanges put into a prompt
    recall_min_score: float = Field(0.4, ge=-1.0, le=1.0)  # cosine similarity floor
    rag_mode: Literal["auto", "always", "never"] = "auto"
    rag_k: int = Field(5, ge=1)
    rag_min_score: float = Field(0.35, ge=-1.0, le=1.0)
    chunk_size: int = Field(800, ge=50)
    chunk_overlap: int = Field(100, ge=0)
    approx_threshold: int = Field(50_000, ge=1)  # vectors before HNSW replaces the flat index
    # Facts about each user, extracted from their turns (facts/); on since the recall benchmark
    # met its targets (benchmarks/memory_recall.py). COUNCIL_FACTS=false turns it off.
    facts: bool = True
    # head that extracts facts from users' turns: "none" (the default): rules and the verbatim
    # fallback only, the user's own statements, at no model cost; "auto": the fastest local
    # head; or a head id. The packaged 135M model's extraction was usable on 44 % of turns at
    # ~17 s each and prefixed junk to facts (benchmarks/memory_recall.py --extract), so it is
    # not the default; name a capable head here.
    fact_head: str | None = "none"
    fact_k: int = Field(5, ge=0)  # facts put into a prompt
    # cosine similarity floor for facts (a fact on the question's topic passes anyway); 0.4 from
    # benchmarks/memory_recall.py's trade-off between recall@5 and abstention
    fact_min_score: float = Field(0.4, ge=-1.0, le=1.0)
    embed_max_inputs: int = Field(256, ge=1)  # texts in one /v1/embeddings request
    # COUNCIL_DATABASE_URL: postgresql://user:password@host:5432/db moves the store (and its
    # vectors, into pgvector) to Postgres; unset, it is council.db in the data dir.
    database_url: str | None = None
    # COUNCIL_DATABASE_POOL_SIZE: the most Postgres connections one process holds (each
    # request's transaction takes one for its length); unused on SQLite.
    database_pool_size: int = Field(8, ge=1, le=1000)
    # COUNCIL_EMBED_BATCH_MS: how long a short encode (a question, an exchange) waits for other
    # requests' to join it in one model call (council/microbatch.py); 0: no wait, though texts
    # queued while the embedder is busy still go together.
    embed_batch_ms: float = Field(2.0, ge=0.0, le=100.0)


class RoutingSettings(Section):
    """Strategies, routing, escalation and the governor (routing/, server/admin_api.py)."""

    strategy: str = "vote"
    judge: str | None = None  # head id that judges best_of_n; default: highest quality
    cluster_threshold: float = Field(0.85, gt=0.0, le=1.0)
    success_threshold: float = Field(0.7, ge=0.0, le=1.0)  # agreement that labels a success
    # CloudRetry order; the environment takes "local,vllm,openai" (PROVIDER_PRIORITY too)
    provider_priority: Annotated[list[str], NoDecode] = ["local", "vllm", "openai"]
    escalate_below: float = Field(0.5, ge=0.0, le=1.0)  # CloudRetry under this confidence
    escalate_on_verifier: bool = True  # ... and when a verifier (arithmetic) rejects the answer
    early_stop_k: int = Field(2, ge=1)  # `auto`: ask the cheapest k heads first
    early_stop_confidence: float = Field(1.0, gt=0.0, le=1.0)  # ... and stop if they agree so
    # `auto`: the first head alone settles a question when its certainty is within its own
    # top share of recent answers in the domain (routing/certainty.py); None: never alone
    early_stop_alone_share: float | None = Field(0.7, gt=0.0, le=1.0)
    chairman: str | None = None  # `rank` synthesiser; default: the highest-quality member
    rank_max_tokens: int = Field(64, ge=8)  # a review is a short ranking, not an essay
    moa_layers: int = Field(2, ge=1)  # proposer layers (the first answers the question)
    moa_proposers: int | None = Field(None, ge=1)  # default: every member
    moa_aggregator: str | None = None  # default: the highest-quality member
    debate_rounds: int = Field(2, ge=1)  # revision rounds; stops early once all agree
    clone_samples: int = Field(5, ge=2)  # `clone_dispatch`: samples of one head
    clone_head: str | None = None  # default: the highest-quality member
    clone_temperature: float = Field(0.7, gt=0.0, le=2.0)  # greedy clones would all agree
    governor_enabled: bool = True  # enforce daily_budget_usd (the governor's `enabled`)
    daily_budget_usd: float | None = Field(None, ge=0.0)  # None: no cap on priced heads
    local_only: bool = True  # learning jobs never call a paid (priced) head unless False

    @field_validator("provider_priority", mode="before")
    @classmethod
    def _split_providers(cls, v: Any) -> Any:
        if isinstance(v, str):  # PROVIDER_PRIORITY=local,vllm,openai
            v = [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, list) and not v:
            raise ValueError("provider_priority needs at least one provider, e.g. local")
        return v


class LearningSettings(Section):
    """Learning data and the nightly cycle (the seeds' names are accepted as variables too)."""

    agent0: str = "council"  # "council" (the ballot votes on rewrites) or a head id
    agent0_samples: int = Field(2, ge=1)  # independent rewrites when Agent-0 is one head
    agent0_max_tokens: int = Field(256, ge=16)
    quality_threshold: float = Field(0.7, ge=0.0, le=1.0)  # examples below are rejected
    quality_judge: str | None = None  # a head that scores rewrites 1-10 (optional signal)
    near_duplicate: float = Field(0.95, gt=0.0, le=1.0)  # cosine above which examples collide
    min_failures_to_train: int = Field(5, ge=1)
    enable_oracle_refinement: bool = False
    force_arbiter: bool = False
    oracle_head: str | None = None  # default: the highest-quality head
    arbiter_head: str | None = None  # default: the highest-quality head other than the oracle
    min_free_disk_gb: float = Field(2.0, ge=0.0)  # the cycle's preflight
    keep_datasets: int = Field(10, ge=1)  # retention after each cycle (newest kept) ...
    keep_adapters: int = Field(5, ge=1)  # ... per role; aliased versions are always kept
    keep_runs: int = Field(50, ge=1)  # run logs
    # share of each frozen dataset held out (by question hash) to judge adapters on, never trained
    heldout_share: float = Field(0.2, ge=0.0, lt=1.0)
    # rehearsal examples (past successes, the base's own general answers) per training example,
    # against forgetting (learning/rehearsal.py); 0: train on the night's dataset alone
    rehearsal: float = Field(1.0, ge=0.0, le=4.0)
    # gradient accumulation of the nightly training (4 rows per step): steps = examples x
    # epochs / (4 x grad_accum); `council train --grad-accum` overrides it
    grad_accum: int = Field(8, ge=1, le=64)
    # reasoning-gym family: the gate's gain set and canary probes only while held-out traffic is
    # too thin to decide (then a control family); `council gauntlet --target` benchmarks it
    gauntlet_family: str = "basic_arithmetic"
    # the gate's non-inferiority margin on replay and controls, in accuracy points (rule.py)
    gate_margin_pp: float = Field(5.0, gt=0.0, lt=50.0)
    # tokens each gate answer may use: set it to what users' requests allow, since a replayed
    # answer re-asked with another budget can end differently
    gate_max_tokens: int = Field(96, ge=8, le=2048)
    # past successes the gate replays (all of the replay half when fewer): enough that a
    # challenger losing a few can be shown non-inferior (at a 5 pp margin and a 2 % loss rate,
    # 100 items never decide; 300 do), so "wait for more traffic" can end
    gate_replay: int = Field(300, ge=0, le=5000)
    # the gauntlet's blind pairwise judge for held-out questions nothing else can check
    # (default: the best local head; none: such questions are skipped and counted)
    judge_head: str | None = None


class DeploySettings(Section):
    """Adapters in production: canary, rollback, notifications, shared state."""

    canary_share: float = Field(0.5, gt=0.0, le=1.0)  # share of a role's calls on the new one
    canary_window_s: float = Field(60.0, gt=0.0)  # the monitor window ...
    canary_requests: int = Field(40, ge=1)  # ... or this many observed calls, whichever first
    canary_min_samples: int = Field(10, ge=1)  # judged calls before a verdict may roll back
    canary_probes: int = Field(24, ge=0)  # gold items the old champion gets right, re-asked
    rollback_threshold_success: float = Field(0.85, ge=0.0, le=1.0)
    # ms a canary's p95 may exceed the old champion's p95 measured alongside
    rollback_threshold_latency: float = Field(1000.0, gt=0.0)
    notification_webhook: str | None = None  # Slack/Discord-compatible incoming webhook URL
    redis_url: str | None = None  # COUNCIL_REDIS_URL: the cycle's leader lock lives in Redis


class LimitsSettings(Section):
    """Default limits per API key (quota/); `council users limits NAME` overrides them per user.
    None: unlimited. Counted over every head call a request causes."""

    rpm: int | None = Field(None, ge=0)  # requests per minute (a moving window)
    tokens_per_day: int | None = Field(None, ge=0)  # tokens in + out, per UTC day
    usd_per_day: float | None = Field(None, ge=0.0)  # spend on priced heads, per UTC day


SECTIONS: dict[str, type[Section]] = {
    "server": ServerSettings,
    "heads": HeadsSettings,
    "memory": MemorySettings,
    "routing": RoutingSettings,
    "learning": LearningSettings,
    "deploy": DeploySettings,
    "limits": LimitsSettings,
}
# Flat names that differ from the field's own name (the flat name is what users write).
RENAMED = {("heads", "specs"): "heads", ("memory", "enabled"): "memory"}
# The seeds' environment variable names, without the COUNCIL_ prefix.
SEED_ENV = {
    "min_failures_to_train": "MIN_FAILURES_TO_TRAIN",
    "enable_oracle_refinement": "ENABLE_ORACLE_REFINEMENT",
    "force_arbiter": "FORCE_ARBITER",
    "provider_priority": "PROVIDER_PRIORITY",
    "rollback_threshold_success": "ROLLBACK_THRESHOLD_SUCCESS",
    "rollback_threshold_latency": "ROLLBACK_THRESHOLD_LATENCY",
    "notification_webhook": "NOTIFICATION_WEBHOOK",
}


def _flat_names() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for section, model in SECTIONS.items():
        for field in model.model_fields:
            names[RENAMED.get((section, field), field)] = (section, field)
    return names


FLAT: dict[str, tuple[str, str]] = _flat_names()  # flat name -> (section, field)
