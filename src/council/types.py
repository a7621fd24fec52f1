"""The nouns that flow through the council: messages in, completions and votes out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
ABSTAINED = "abstain"  # finish_reason of a tool head that does not apply to the question
CANNOT_ANSWER = "cannot answer"  # an abstaining head's text


@dataclass(frozen=True)
class ToolCall:
    """One call of a function a request offered: `arguments_json` as the head wrote it."""

    id: str
    name: str
    arguments_json: str

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's shape: {id, type: "function", function: {name, arguments}}."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }

    @classmethod
    def from_openai(cls, d: dict[str, Any]) -> ToolCall:
        """From OpenAI's shape, or from this dataclass's own (a stored exchange's turns)."""
        if "arguments_json" in d:
            return cls(d.get("id") or "", d.get("name") or "", d["arguments_json"])
        fn = d.get("function") or {}
        return cls(id=d.get("id") or "", name=fn.get("name") or "",
                   arguments_json=fn.get("arguments") or "{}")  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One turn. An assistant turn may carry `tool_calls`; a "tool" turn is a call's result
    (`tool_call_id` says which call, `name` which function)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def stored(self) -> dict[str, Any]:
        """The turn as a stored exchange keeps it: OpenAI's shape, its content always text
        (`coerce` reads it back)."""
        return {**self.to_openai(), "content": self.content}

    @classmethod
    def coerce(cls, m: Message | dict[str, Any]) -> Message:
        if isinstance(m, Message):
            return m
        calls = m.get("tool_calls")
        return cls(
            role=m["role"],
            content=m.get("content") or "",
            tool_calls=tuple(ToolCall.from_openai(c) for c in calls) if calls else None,
            tool_call_id=m.get("tool_call_id"),
            name=m.get("name"),
        )

    def to_openai(self) -> dict[str, Any]:
        """The turn as OpenAI's chat API takes it (tool calls and results as they are)."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [c.to_openai() for c in self.tool_calls]
            d["content"] = self.content or None
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            d["name"] = self.name
        return d


@dataclass(frozen=True)
class FunctionTool:
    """A function a request offers the heads: its JSON schema is `parameters`."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_openai(self) -> dict[str, Any]:
        fn: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            fn["description"] = self.description
        return {"type": "function", "function": fn}


TOOL_CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class Tools:
    """The tools of a request and how the heads may use them: `choice` is auto (a call or
    text), none (text only), required (a call) or the name of the one function to call."""

    functions: tuple[FunctionTool, ...]
    choice: str = "auto"
    parallel: bool = True  # a head may propose several calls at once

    @property
    def forced(self) -> str | None:
        """The function tool_choice names, if it names one."""
        return None if self.choice in TOOL_CHOICES else self.choice

    @property
    def calls_only(self) -> bool:
        return self.choice not in ("auto", "none")

    @property
    def active(self) -> bool:
        """Heads may propose calls (tool_choice is not none)."""
        return bool(self.functions) and self.choice != "none"

    def openai_choice(self) -> str | dict[str, Any]:
        if self.forced is None:
            return self.choice
        return {"type": "function", "function": {"name": self.forced}}


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
    tools: Tools | None = None  # functions the heads may call (toolcalls/)
    # Structured output: a local head decodes only text valid under this JSON schema ({}: any
    # JSON object); openai heads pass it on as response_format; the ballot counts valid JSON.
    json_schema: dict[str, Any] | None = None
    # Tools under tool_choice "auto": a local head writes free text, or a call valid under
    # this schema (a grammar with both branches); set by heads/tooluse.py.
    text_or_call: dict[str, Any] | None = None


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
    # the head proposes these calls instead of a text answer (a request with `tools`)
    tool_calls: list[ToolCall] | None = None
    stop_sequence: str | None = None  # the stop string that ended the text (local heads)
    # A reader's answer is a span copied from recalled text: how well that text matched the
    # question (cosine). The ballot lets a well-grounded span outrank answers without it.
    grounding: float | None = None
    # A deterministic tool computed this answer from the question alone (calculator, dates,
    # units): the ballot lets it outrank model answers that disagree.
    exact: bool = False

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
    # the calls this head proposed (OpenAI shape), when it proposed calls
    tool_calls: list[dict[str, Any]] | None = None
    invalid: str | None = None  # why the answer was not counted (not valid under the schema)


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
    # the council decided to call these functions (finish_reason "tool_calls")
    tool_calls: list[ToolCall] | None = None
    stop_sequence: str | None = None  # the stop string that ended the answer's text

    def as_completion(self, head: str) -> Completion:
        """The decision as one head's answer (the Council is itself a Head)."""
        return Completion(head=head, text=self.answer, latency_ms=self.latency_ms,
                          tokens_in=self.tokens_in, tokens_out=self.tokens_out,
                          cost_usd=self.cost_usd, logprob=mean_logprob(self.answer_logprobs),
                          token_logprobs=self.answer_logprobs, finish_reason=self.finish_reason,
                          tool_calls=self.tool_calls)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("answer_logprobs")  # served as OpenAI `logprobs` when asked, not in meta
        d["total_cost"] = self.cost_usd  # the ensemble seed's name for cost_usd
        return d
