"""Request bodies. Seed endpoints forbid unknown fields (a typo is an error); /v1 ignores
fields it does not use, as OpenAI clients send many optional ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from council.routing.selector import Hints
from council.toolcalls.offer import as_tools
from council.types import GenParams, Message, ToolCall

# What to send instead of an empty id, per field. An empty id is never a real one: "" for a
# conversation was stored as a dangling reference (SQLite's foreign key refused it: a 500).
ID_HINTS = {
    "user": "omit it to ask as the anonymous user",
    "conversation_id": "omit it to start a new conversation",
    "exchange_id": "send meta.exchange_id from the answer you are rating",
    "version": "omit it for the role's challenger, or send 'base' for no adapter",
    "dataset": "omit it for the newest dataset",
    "role": "send a role name such as 'core' (the default)",
}


def require_id(value: Any, info: ValidationInfo) -> Any:
    """A before-validator for id fields: "" or blank is a 400 naming the field and the fix.

    Before, so that it speaks first; the field's own min_length=1 stays for the schema."""
    return check_id(value, info.field_name or "id")


def check_id(value: Any, name: str, hint: str | None = None) -> Any:
    """Raise ValueError for an empty or blank id string; pass anything else through."""
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{name} must be a non-empty id; {hint or ID_HINTS.get(name, 'omit it')}")
    return value


class RouteHints(BaseModel):
    """Per-request hints for strategy "auto" (the selector); mixed into both request kinds."""

    tier: Literal["small", "large"] | None = Field(
        None, description='strategy "auto": small (courier) or large (master) heads'
    )
    max_cost_usd: float | None = Field(
        None, ge=0.0, description='strategy "auto": keep this request\'s predicted cost under'
    )

    def route_hints(self) -> Hints:
        return Hints(tier=self.tier, max_cost_usd=self.max_cost_usd)


class MemoryOptions(BaseModel):
    """Who is asking and how memory is used; mixed into both request kinds."""

    user: str | None = Field(None, min_length=1, description="Who is asking (memory is per user).")
    conversation_id: str | None = Field(
        None, min_length=1, max_length=200, description="Groups turns; omit for a new one."
    )
    memory: bool | None = Field(None, description="false: do not recall past exchanges.")
    rag: bool | None = Field(None, description="true/false: force or skip knowledge lookup.")

    _ids = field_validator("user", "conversation_id", mode="before")(require_id)

    def memory_options(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "conversation_id": self.conversation_id,
            "recall": self.memory,
            "rag": self.rag,
        }


class VoteRequest(RouteHints, MemoryOptions):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="The user's message.")
    strategy: str | None = Field(
        None, description="vote, weighted, consensus, best_of_n, rank, moa, debate, auto, ..."
    )
    num_models: int | None = Field(None, ge=1, description="How many heads sit on the ballot.")
    task_type: str | None = Field(None, description="code, math, creative, reasoning, general")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is blank; send the question text")
        return v


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str = "{}"


class ToolCallIn(BaseModel):
    """An assistant turn's call, as the client got it from an earlier answer."""

    model_config = ConfigDict(extra="ignore")
    id: str = ""
    type: str = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None  # an assistant's calls
    tool_call_id: str | None = None  # a tool turn: the call it answers
    name: str | None = None

    def to_message(self) -> Message:
        if isinstance(self.content, list):
            text = "\n".join(p.text or "" for p in self.content if p.type == "text")
        else:
            text = self.content or ""
        role = {"developer": "system"}.get(self.role, self.role)
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments)
                      for c in self.tool_calls or [])  # fmt: skip
        return Message(
            role,  # type: ignore[arg-type]
            text,
            tool_calls=calls or None,
            tool_call_id=self.tool_call_id if self.role == "tool" else None,
            name=self.name if self.role == "tool" else None,
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    """OpenAI's response_format.json_schema: a named schema (strict is accepted: local heads
    always decode under the grammar, and every reply is validated)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field("response", min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """{"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema":
    {"name", "schema", "strict"}}."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _needs_schema(self) -> ResponseFormat:
        given = self.json_schema is not None and self.json_schema.schema_ is not None
        if self.type == "json_schema" and not given:
            raise ValueError(
                'type "json_schema" needs json_schema: {"name": ..., "schema": {...}}; '
                'send {"type": "json_object"} for any JSON object'
            )
        return self

    def json_schema_of(self) -> dict[str, Any] | None:
        """GenParams.json_schema: None for text, {} for any JSON object, else the schema."""
        if self.type == "text":
            return None
        if self.type == "json_object" or self.json_schema is None:
            return {}
        return self.json_schema.schema_ or {}


class ChatCompletionRequest(RouteHints, MemoryOptions):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1, description="Council returns one answer per request.")
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(
        None, description="Only the chosen tokens' log-probabilities are served (0 or unset)."
    )
    tools: list[dict[str, Any]] | None = Field(
        None, description="Function tools the heads may call; the majority call wins."
    )
    tool_choice: str | dict[str, Any] | None = Field(
        None, description='"auto", "none", "required" or {"type": "function", ...}.'
    )
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # Council extensions (OpenAI clients pass them via extra_body)
    strategy: str | None = None
    num_models: int | None = Field(None, ge=1)
    task_type: str | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _no_alternatives(cls, v: int | None) -> int | None:
        if v:
            raise ValueError(
                "alternatives are not served, only the chosen tokens' log-probabilities: "
                "send logprobs: true without top_logprobs (or with 0)"
            )
        return v

    def stops(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def as_messages(self) -> list[Message]:
        """The turns; a tool result without a name takes its call's function name."""
        messages = [m.to_message() for m in self.messages]
        named = {c.id: c.name for m in messages for c in m.tool_calls or ()}
        return [
            replace(m, name=named.get(m.tool_call_id or ""))
            if m.role == "tool" and m.name is None
            else m
            for m in messages
        ]

    def params(self) -> GenParams:
        return GenParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            seed=self.seed,
            stop=self.stops(),
            tools=as_tools(self.tools, self.tool_choice, self.parallel_tool_calls),
            json_schema=self.response_format.json_schema_of() if self.response_format else None,
        )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exchange_id: str = Field(min_length=1, description="From meta.exchange_id of the answer.")
    rating: Literal[1, -1] = Field(description="1 = good answer, -1 = bad answer.")
    comment: str | None = Field(None, max_length=4000)
    correction: str | None = Field(
        None, description="With rating -1: what the answer should have been (learning's gold)."
    )

    _ids = field_validator("exchange_id", mode="before")(require_id)


def meta_of(verdict: Any) -> dict[str, Any]:
    """The council's meta block shared by /vote and /v1 (the `council` field)."""
    d: dict[str, Any] = verdict.to_dict()
    d.pop("answer")
    return d


class DocumentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="A name to cite it by.")
    text: str = Field(min_length=1, max_length=2_000_000, description="The document's text.")
    shared: bool | None = Field(
        None, description="true: every user may recall it (admins); default: yours alone."
    )


class HybridRequest(VoteRequest):
    """/hybrid's body: a ballot request, plus streaming the one head's text as generated."""

    stream: bool = Field(
        False,
        description="Send server-sent events: {'delta': text} as the head generates, then "
        "{'answer', 'meta'} and [DONE].",
    )
