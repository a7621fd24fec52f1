"""Anthropic Messages requests, mapped onto the council's own chat request (the same path as
/v1/chat/completions), and the council's answer mapped back: stop reasons and usage."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from council.errors import InvalidRequestError
from council.server.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    MemoryOptions,
    RouteHints,
    ToolCallIn,
)
from council.types import Verdict

IMAGES = {"image", "document", "search_result"}
SERVER_TOOLS = {"server_tool_use", "web_search_tool_result"}
SEND_TEXT = "send the content as text blocks ({'type': 'text', 'text': ...}) or a string"
NO_SERVER_TOOLS = (
    "Anthropic's server tools (web search, code execution, ...) do not run here: offer your "
    "own tools ({'name', 'description', 'input_schema'}) and run them on your side."
)
# Anthropic's tool_choice types -> OpenAI's tool_choice
CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# Why the answer's text ended (Completion.finish_reason) -> Anthropic's stop_reason.
STOP_REASONS = {"length": "max_tokens", "stop": "end_turn", "content_filter": "refusal"}


class Block(BaseModel):
    """A content block: text, tool_use (an assistant's call) or tool_result (the user's
    answer to one); other fields (e.g. cache_control) are accepted and not used."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    text: str | None = None
    id: str | None = None  # tool_use
    name: str | None = None  # tool_use
    input: Any = None  # tool_use: the arguments
    tool_use_id: str | None = None  # tool_result
    content: str | list[Block] | None = None  # tool_result
    is_error: bool | None = None  # tool_result


def block_text(blocks: str | list[Block], where: str) -> str:
    """The text of a string or of text blocks; a 400 for any other kind of block."""
    if isinstance(blocks, str):
        return blocks
    for i, b in enumerate(blocks):
        if b.type in SERVER_TOOLS:
            raise InvalidRequestError(
                NO_SERVER_TOOLS, param=f"{where}.{i}", code="tools_unsupported"
            )
        if b.type in IMAGES:
            raise InvalidRequestError(
                f"{where}.{i} is a {b.type} block: this council reads text only; {SEND_TEXT}.",
                param=f"{where}.{i}",
                code="content_unsupported",
            )
        if b.type != "text" or b.text is None:
            raise InvalidRequestError(
                f"{where}.{i} is a {b.type!r} block without text; {SEND_TEXT}.",
                param=f"{where}.{i}",
                code="content_unsupported",
            )
    return "\n".join(b.text or "" for b in blocks)


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str | list[Block]

    def turns(self, where: str) -> list[ChatMessage]:
        """This message as chat turns: a user's tool_result blocks become tool turns (in
        order, before its text); an assistant's tool_use blocks become its tool_calls."""
        if isinstance(self.content, str):
            return [ChatMessage(role=self.role, content=self.content)]
        calls = [_call(b, f"{where}.{i}") for i, b in enumerate(self.content)
                 if b.type == "tool_use"]  # fmt: skip
        results = [_result(b, f"{where}.{i}") for i, b in enumerate(self.content)
                   if b.type == "tool_result"]  # fmt: skip
        rest = [b for b in self.content if b.type not in ("tool_use", "tool_result")]
        text = block_text(rest, where) if rest else ""
        if self.role == "assistant":
            return [ChatMessage(role="assistant", content=text, tool_calls=calls or None)]
        return [*results, *([ChatMessage(role="user", content=text)] if rest else [])]


def _call(b: Block, where: str) -> ToolCallIn:
    if not b.name or not isinstance(b.input, dict):
        raise InvalidRequestError(
            f"{where} is a tool_use block without a name or an input object; send "
            "{'type': 'tool_use', 'id': ..., 'name': ..., 'input': {...}}.",
            param=where,
            code="invalid_tool_use",
        )
    args = json.dumps(b.input, ensure_ascii=False)
    return ToolCallIn(id=b.id or "", function=FunctionCall(name=b.name, arguments=args))


def _result(b: Block, where: str) -> ChatMessage:
    if not b.tool_use_id:
        raise InvalidRequestError(
            f"{where} is a tool_result block without tool_use_id; send the id of the "
            "tool_use block it answers.",
            param=where,
            code="invalid_tool_result",
        )
    text = block_text(b.content, f"{where}.content") if b.content is not None else ""
    if b.is_error:
        text = f"Error: {text}"
    return ChatMessage(role="tool", content=text, tool_call_id=b.tool_use_id)


def openai_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Anthropic's tools ({name, description, input_schema}) as OpenAI function tools."""
    if not tools:
        return None
    out = []
    for i, t in enumerate(tools):
        if t.get("type") not in (None, "custom"):
            raise InvalidRequestError(
                f"tools.{i} is a {t.get('type')!r} tool. {NO_SERVER_TOOLS}",
                param=f"tools.{i}",
                code="tools_unsupported",
            )
        fn = {"name": t.get("name") or "", "description": t.get("description") or "",
              "parameters": t.get("input_schema") or {"type": "object"}}  # fmt: skip
        out.append({"type": "function", "function": fn})
    return out


def openai_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """Anthropic's tool_choice (auto, any, tool, none) as OpenAI's."""
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name") or ""}}
    if kind in CHOICES:
        return CHOICES[kind]
    raise InvalidRequestError(
        f"tool_choice type {kind!r} is not one of auto, any, tool or none.",
        param="tool_choice",
        code="invalid_tool_choice",
    )


class Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(
        None,
        description="Opaque, as Anthropic defines it (clients such as Claude Code send a "
        "session id here): accepted and never used as an identity. Your key says who you are; "
        "the council's `user` field (extra_body) names whose memory in single-user mode.",
    )


class MessagesBody(BaseModel):
    """What /v1/messages and /v1/messages/count_tokens share: the model and the prompt."""

    model_config = ConfigDict(extra="ignore")  # Anthropic clients send optional fields too

    model: str = Field(min_length=1, description='"council" or a head id (see /v1/models).')
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[dict[str, Any]] | None = Field(
        None, description="Your tools ({name, description, input_schema}); the council votes."
    )
    tool_choice: dict[str, Any] | None = Field(None, description="auto, any, tool or none.")
    output_config: dict[str, Any] | None = Field(
        None, description="effort is accepted and not used; format is not supported yet: a 400."
    )

    def refuse_unsupported(self) -> None:
        """Structured output is refused, never ignored."""
        if self.output_config and self.output_config.get("format"):
            raise InvalidRequestError(
                "output_config.format (structured output) is not supported on this server "
                "yet: send the request without it and ask for JSON in the prompt.",
                param="output_config.format",
                code="format_unsupported",
            )

    def chat_messages(self) -> list[ChatMessage]:
        """The system prompt and the turns as /v1/chat/completions messages (text only)."""
        self.refuse_unsupported()
        messages = [
            turn for i, m in enumerate(self.messages) for turn in m.turns(f"messages.{i}.content")
        ]
        if self.system is not None:
            system = block_text(self.system, "system")
            if system.strip():
                messages.insert(0, ChatMessage(role="system", content=system))
        return messages


class MessagesRequest(MessagesBody, RouteHints, MemoryOptions):
    """POST /v1/messages (Anthropic's Messages API), plus the council's own extensions."""

    model_config = ConfigDict(extra="ignore")

    max_tokens: int = Field(ge=1, description="Required, as Anthropic's API has it.")
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, description="Accepted; the heads do not use it.")
    stop_sequences: list[str] | None = None
    stream: bool = False
    metadata: Metadata | None = None
    # Council extensions (the Anthropic SDK passes them via extra_body)
    strategy: str | None = None
    num_models: int | None = Field(None, ge=1)
    task_type: str | None = None

    def parallel_refused(self) -> bool:
        return bool(self.tool_choice and self.tool_choice.get("disable_parallel_tool_use"))

    def as_chat(self) -> ChatCompletionRequest:
        """The same request as /v1/chat/completions takes (validated there, once)."""
        messages = self.chat_messages()
        user = self.user
        try:
            return ChatCompletionRequest(
                model=self.model,
                messages=messages,
                stream=self.stream,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_tokens,
                stop=self.stop_sequences,
                tools=openai_tools(self.tools),
                tool_choice=openai_choice(self.tool_choice),
                parallel_tool_calls=False if self.parallel_refused() else None,
                user=user,
                conversation_id=self.conversation_id,
                memory=self.memory,
                rag=self.rag,
                tier=self.tier,
                max_cost_usd=self.max_cost_usd,
                strategy=self.strategy,
                num_models=self.num_models,
                task_type=self.task_type,
            )
        except ValidationError as exc:  # every field was checked above; say so if not
            raise InvalidRequestError(f"Invalid request: {exc.errors()[0]['msg']}") from None


def stop_reason(v: Verdict, stops: list[str] | None = None) -> str:
    if v.tool_calls:
        return "tool_use"
    if stop_sequence(v, stops) is not None:
        return "stop_sequence"
    return STOP_REASONS.get(v.finish_reason, "end_turn")


def stop_sequence(v: Verdict, stops: list[str] | None) -> str | None:
    """The request's stop sequence that ended the answer (a head's own stops are not shown;
    only local heads can tell which one matched)."""
    return v.stop_sequence if v.stop_sequence in (stops or []) else None


def content_blocks(v: Verdict) -> list[dict[str, Any]]:
    """The answer as content blocks: its text, then a tool_use block per decided call."""
    blocks: list[dict[str, Any]] = []
    if v.answer or not v.tool_calls:
        blocks.append({"type": "text", "text": v.answer})
    for c in v.tool_calls or []:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c)})
    return blocks


def tool_input(c: Any) -> dict[str, Any]:
    """A decided call's arguments as an object (they passed its schema, so they parse)."""
    try:
        args = json.loads(c.arguments_json)
    except ValueError:
        return {}
    return args if isinstance(args, dict) else {}


def usage(v: Verdict) -> dict[str, int]:
    return {"input_tokens": v.tokens_in, "output_tokens": v.tokens_out}
