"""The head catalogue: what a head is (HeadSpec) and the packaged default list."""

from __future__ import annotations

import ipaddress
import tomllib
from importlib import resources
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

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
    max_tokens_cap: int | None = Field(None, ge=1)  # None: the server's COUNCIL_MAX_TOKENS_CAP
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    # local heads on a base model: a completion-style prompt from prompts/<name>.yaml (few-shot
    # Q/A, with its own stop strings) instead of the tokenizer's chat template
    prompt_template: str | None = Field(None, pattern=r"^[a-z0-9_]+$")
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
    # tool heads (kind = "tool"): which deterministic tool answers (heads/tools.py TOOLS)
    tool: str | None = None

    @property
    def in_process(self) -> bool:
        """Whether the head runs a model loaded in this process (local and program heads)."""
        return self.kind in ("local", "program")

    @property
    def reports_logprobs(self) -> bool:
        return self.in_process or self.logprobs

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


def packaged_catalogue() -> list[HeadSpec]:
    text = resources.files("council").joinpath("catalogue.toml").read_text()
    return [HeadSpec(**h) for h in tomllib.loads(text)["heads"]]
