"""The nouns that flow through the council: messages in, completions and votes out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ABSTAINED = "abstain"  # finish_reason of a tool head that does not apply to the question


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    @classmethod
    def coerce(cls, m: Message | dict[str, Any]) -> Message:
        if isinstance(m, Message):
            return m
        return cls(role=m["role"], content=m.get("content") or "")


def as_messages(messages: str | list[Message] | list[dict[str, Any]]) -> list[Message]:
    """Accept a bare prompt, dicts in OpenAI shape or Messages."""
    if isinstance(messages, str):
        return [Message("user", messages)]
    return [Message.coerce(m) for m in messages]


def last_user_text(messages: list[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return m.content
    return messages[-1].content if messages else ""


@dataclass
class GenParams:
    """Per-call sampling settings; a head's own defaults fill what is None."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None


@dataclass
class Completion:
    """One answer from one head. A failed head carries `error` instead of raising."""

    head: str
    text: str = ""
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    finish_reason: str = "stop"
    error: str | None = None
    adapter: str | None = None  # the adapter version (or served model variant) that answered
    # Mean log-probability the model gave its own answer's tokens (its self-certainty); None
    # when the head cannot tell (an openai head without `logprobs = true`).
    logprob: float | None = None
    token_logprobs: list[tuple[str, float]] | None = field(default=None, repr=False)
    tool: str | None = None  # a tool head's account of what it ran ("calculator: 7 * 8")
    # A reader's answer is a span copied from recalled text: how well that text matched the
    # question (cosine). The ballot lets a well-grounded span outrank answers without it.
    grounding: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def abstained(self) -> bool:
        """A tool head said "cannot answer": not a failure, and not a vote either."""
        return self.finish_reason == ABSTAINED

    @property
    def answered(self) -> bool:
        """The completion is a vote: it did not fail and did not abstain."""
        return self.ok and not self.abstained


def mean_logprob(pairs: list[tuple[str, float]] | None) -> float | None:
    """The mean of (token, logprob) pairs: a head's self-certainty (None without tokens)."""
    return sum(lp for _, lp in pairs) / len(pairs) if pairs else None


@dataclass
class Vote:
    """How one completion fared in the ballot."""

    head: str
    answer: str
    extracted: str | None
    cluster: int | None
    weight: float
    latency_ms: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    won: bool = False
    adapter: str | None = None  # the adapter version that answered (None: the base model)
    logprob: float | None = None  # the head's self-certainty (Completion.logprob)
    abstained: bool = False  # a tool head that did not apply: no vote, no dissent


@dataclass
class Verdict:
    """The council's decision and everything needed to audit it."""

    answer: str
    votes: list[Vote]
    confidence: float
    strategy: str
    latency_ms: float
    cost_usd: float
    models_used: list[str]
    task_type: str = "general"
    tokens_in: int = 0
    tokens_out: int = 0
    notes: list[str] = field(default_factory=list)
    exchange_id: str | None = None  # set once the exchange is stored (send feedback with it)
    recalled: list[dict[str, Any]] = field(default_factory=list)  # memories and snippets used
    success: bool | None = None  # the label the exchange was stored with
    label_source: str | None = None
    # routing (routing/selector.py) and escalation (CloudRetry)
    head_calls: int = 0  # every head completion this decision paid for, judges included
    chosen_model: str | None = None  # courier (small tier), master (large), council (both)
    route: dict[str, Any] | None = None  # the plan: strategy, tier, early stop, reasons
    rounds: list[dict[str, Any]] = field(default_factory=list)  # multi-round detail
    escalated: bool = False  # CloudRetry replaced the first provider's answer
    escalation: list[dict[str, Any]] = field(default_factory=list)  # earlier providers' tries
    # (token, logprob) of the answer when it is one head's own text and the head told them
    answer_logprobs: list[tuple[str, float]] | None = field(default=None, repr=False)
    # why the answer's own text ended ("stop", "length"); "stop" for a synthesis
    finish_reason: str = "stop"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("answer_logprobs")  # served as OpenAI `logprobs` when asked, not in meta
        d["total_cost"] = self.cost_usd  # the ensemble seed's name for cost_usd
        return d
