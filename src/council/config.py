"""Settings: one object, passed in. COUNCIL_* environment variables win over council.toml,
which wins over the packaged head catalogue (catalogue.toml)."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from council.errors import ConfigError

DEFAULT_MODEL = "smollm2-135m-instruct"


class HeadSpec(BaseModel):
    """One catalogue entry: how to reach a head and what it is worth."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    kind: str = "local"
    model: str = DEFAULT_MODEL
    # openai-compatible heads
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 120.0
    # persona and sampling defaults
    system_prompt: str | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    # catalogue data (the ensemble seed's TOP_MODELS, as data)
    cost_in_per_1k: float = Field(0.0, ge=0.0)
    cost_out_per_1k: float = Field(0.0, ge=0.0)
    quality: float = Field(5.0, ge=0.0, le=10.0)
    speed: float = Field(5.0, ge=0.0, le=10.0)
    specializations: list[str] = Field(default_factory=list)
    enabled: bool = True
    # routing: heads of one provider sit on one ballot; CloudRetry walks provider_priority
    provider: str = Field("local", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    tier: Literal["small", "large"] = "small"  # the selector's courier (small) / master (large)
    cloud: bool | None = None  # leaves this network; None: an openai head on a public host
    role: str = "core"  # adapters are trained and promoted per role; heads on a role share them
    # openai heads: ask for token log-probabilities (vLLM, llama.cpp and OpenAI serve them);
    # the mean is the head's self-certainty, which early stop can trust. Local heads always do.
    logprobs: bool = False

    @property
    def reports_logprobs(self) -> bool:
        return self.kind == "local" or self.logprobs

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.cost_in_per_1k + tokens_out * self.cost_out_per_1k) / 1000.0

    @property
    def priced(self) -> bool:
        return self.cost_in_per_1k > 0 or self.cost_out_per_1k > 0

    @property
    def is_cloud(self) -> bool:
        """Whether prompts sent to this head leave the machine's network (local_only refuses)."""
        if self.cloud is not None:
            return self.cloud
        return self.kind == "openai" and not _private_host(self.base_url)


def _private_host(url: str | None) -> bool:
    """True for loopback, private-network and .local hosts (a LAN vLLM box is not "cloud")."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost" or host.endswith((".local", ".lan", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "council"


def packaged_catalogue() -> list[HeadSpec]:
    text = resources.files("council").joinpath("catalogue.toml").read_text()
    return [HeadSpec(**h) for h in tomllib.loads(text)["heads"]]


class Settings(BaseSettings):
    """Everything configurable. Env: COUNCIL_<NAME>; file: council.toml or $COUNCIL_CONFIG."""

    model_config = SettingsConfigDict(env_prefix="COUNCIL_", extra="forbid", populate_by_name=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    heads: list[HeadSpec] = Field(default_factory=packaged_catalogue)
    strategy: str = "vote"
    judge: str | None = None  # head id that judges best_of_n; default: highest quality
    hybrid_head: str | None = None  # head for /hybrid; default: highest speed score
    threads: int = Field(1, ge=1)  # torch threads per worker; 2 OpenMP threads collapse on 2 cores
    batch_window_ms: float = Field(8.0, ge=0.0)
    max_batch: int = Field(32, ge=1)
    pack_weights: bool = True  # oneDNN-packed Linear weights: faster batches, one extra copy
    max_prompt_chars: int = Field(32_000, ge=1)
    embedder: str = "minilm"  # "minilm" (packaged), a sentence-transformers folder, or "none"
    cluster_threshold: float = Field(0.85, gt=0.0, le=1.0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # memory and RAG
    memory: bool = True  # record every exchange and recall past ones
    recall_k: int = Field(3, ge=0)  # past exchanges put into a prompt
    recall_min_score: float = Field(0.4, ge=-1.0, le=1.0)  # cosine similarity floor
    success_threshold: float = Field(0.7, ge=0.0, le=1.0)  # agreement that labels a success
    rag_mode: Literal["auto", "always", "never"] = "auto"
    rag_k: int = Field(5, ge=1)
    rag_min_score: float = Field(0.35, ge=-1.0, le=1.0)
    chunk_size: int = Field(800, ge=50)
    chunk_overlap: int = Field(100, ge=0)
    approx_threshold: int = Field(50_000, ge=1)  # vectors before HNSW replaces the flat index
    # learning data (the seeds' names are accepted as environment variables too)
    agent0: str = "council"  # "council" (the ballot votes on rewrites) or a head id
    agent0_samples: int = Field(2, ge=1)  # independent rewrites when Agent-0 is one head
    agent0_max_tokens: int = Field(256, ge=16)
    quality_threshold: float = Field(0.7, ge=0.0, le=1.0)  # examples below are rejected
    quality_judge: str | None = None  # a head that scores rewrites 1-10 (optional signal)
    near_duplicate: float = Field(0.95, gt=0.0, le=1.0)  # cosine above which examples collide
    min_failures_to_train: int = Field(
        5, ge=1, validation_alias=AliasChoices("min_failures_to_train", "MIN_FAILURES_TO_TRAIN")
    )
    enable_oracle_refinement: bool = Field(
        False,
        validation_alias=AliasChoices("enable_oracle_refinement", "ENABLE_ORACLE_REFINEMENT"),
    )
    force_arbiter: bool = Field(
        False, validation_alias=AliasChoices("force_arbiter", "FORCE_ARBITER")
    )
    oracle_head: str | None = None  # default: the highest-quality head
    arbiter_head: str | None = None  # default: the highest-quality head other than the oracle
    local_only: bool = True  # learning jobs never call a paid (priced) head unless False
    # routing, escalation and the governor (see routing/selector.py, routing/, admin_api.py)
    provider_priority: Annotated[list[str], NoDecode] = Field(
        ["local", "vllm", "openai"],
        validation_alias=AliasChoices(
            "provider_priority", "COUNCIL_PROVIDER_PRIORITY", "PROVIDER_PRIORITY"
        ),
    )  # CloudRetry order; env takes "local,vllm,openai"
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
    admin_token: SecretStr | None = None  # COUNCIL_ADMIN_TOKEN; unset: admin API answers 403
    # adapters in production: deploy, canary, rollback, the nightly cycle (learning/cycle.py)
    canary_share: float = Field(0.5, gt=0.0, le=1.0)  # share of a role's calls on the new one
    canary_window_s: float = Field(60.0, gt=0.0)  # the monitor window ...
    canary_requests: int = Field(40, ge=1)  # ... or this many observed calls, whichever first
    canary_min_samples: int = Field(10, ge=1)  # judged calls before a verdict may roll back
    canary_probes: int = Field(24, ge=0)  # gold items the old champion gets right, re-asked
    rollback_threshold_success: float = Field(
        0.85, ge=0.0, le=1.0,
        validation_alias=AliasChoices("rollback_threshold_success", "ROLLBACK_THRESHOLD_SUCCESS"),
    )  # fmt: skip
    rollback_threshold_latency: float = Field(
        1000.0, gt=0.0,
        validation_alias=AliasChoices("rollback_threshold_latency", "ROLLBACK_THRESHOLD_LATENCY"),
    )  # fmt: skip  # ms a canary's p95 may exceed the old champion's p95 measured alongside
    notification_webhook: str | None = Field(
        None,
        validation_alias=AliasChoices("notification_webhook", "NOTIFICATION_WEBHOOK",
                                      "COUNCIL_NOTIFICATION_WEBHOOK"),
    )  # fmt: skip  # Slack/Discord-compatible incoming webhook URL
    redis_url: str | None = None  # COUNCIL_REDIS_URL: the cycle's leader lock lives in Redis
    min_free_disk_gb: float = Field(2.0, ge=0.0)  # the cycle's preflight
    keep_datasets: int = Field(10, ge=1)  # retention after each cycle (newest kept) ...
    keep_adapters: int = Field(5, ge=1)  # ... per role; aliased versions are always kept
    keep_runs: int = Field(50, ge=1)  # run logs

    @field_validator("heads")
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

    @field_validator("provider_priority", mode="before")
    @classmethod
    def _split_providers(cls, v: Any) -> Any:
        if isinstance(v, str):  # PROVIDER_PRIORITY=local,vllm,openai
            v = [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, list) and not v:
            raise ValueError("provider_priority needs at least one provider, e.g. local")
        return v

    @model_validator(mode="after")
    def _routing_references(self) -> Settings:
        ids = {h.id for h in self.heads}
        for name in ("chairman", "moa_aggregator", "clone_head"):
            ref = getattr(self, name)
            if ref is not None and ref not in ids:
                raise ValueError(f"{name}={ref!r} names no head; known: {', '.join(sorted(ids))}")
        for h in self.heads:
            if h.enabled and h.provider not in self.provider_priority:
                raise ValueError(
                    f"head {h.id!r} has provider {h.provider!r}, which provider_priority "
                    f"({','.join(self.provider_priority)}) does not list; add it there"
                )
        return self

    @model_validator(mode="after")
    def _references_exist(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.memory and self.embedder == "none":
            raise ValueError("memory needs an embedder: set embedder, or memory = false")
        ids = {h.id for h in self.heads}
        for name in ("judge", "hybrid_head", "quality_judge", "oracle_head", "arbiter_head"):
            ref = getattr(self, name)
            if ref is not None and ref not in ids:
                raise ValueError(f"{name}={ref!r} names no head; known: {', '.join(sorted(ids))}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("COUNCIL_CONFIG", "council.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return init_settings, env_settings, toml

    @property
    def enabled_heads(self) -> list[HeadSpec]:
        return [h for h in self.heads if h.enabled]

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into a ConfigError that names the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc or 'settings'}: {err['msg']}")
        raise ConfigError(
            "Invalid configuration (fix council.toml or the COUNCIL_* variable named):\n"
            + "\n".join(lines)
        ) from None
