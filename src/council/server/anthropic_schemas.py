"""Anthropic Messages requests, mapped onto the council's own chat request (the same path as
/v1/chat/completions), and the council's answer mapped back: stop reasons and usage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from council.errors import InvalidRequestError
from council.server.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    MemoryOptions,
    RouteHints,
)
from council.types import Verdict

IMAGES = {"image", "document", "search_result"}
TOOLS = {"tool_use", "tool_result", "server_tool_use", "web_search_tool_result"}
SEND_TEXT = "send the content as text blocks ({'type': 'text', 'text': ...}) or a string"
NO_TOOLS = (
    "Tools are not supported on this server yet: send the request without tools, "
    "tool_choice and tool_use/tool_result blocks."
)
# Why the answer's text ended (Completion.finish_reason) -> Anthropic's stop_reason.
STOP_REASONS = {"length": "max_tokens", "stop": "end_turn", "content_filter": "refusal"}


class Block(BaseModel):
    """A content block; only text blocks are read (their other fields, e.g. cache_control,
    are accepted and not used)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    text: str | None = None


def block_text(blocks: str | list[Block], where: str) -> str:
    """The text of a string or of text blocks; a 400 for any other kind of block."""
    if isinstance(blocks, str):
        return blocks
    for i, b in enumerate(blocks):
        if b.type in TOOLS:
            raise InvalidRequestError(NO_TOOLS, param=f"{where}.{i}", code="tools_unsupported")
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
    tools: list[dict[str, Any]] | None = Field(None, description="Not supported yet: a 400.")
    tool_choice: dict[str, Any] | None = Field(None, description="Not supported yet: a 400.")
    output_config: dict[str, Any] | None = Field(
        None, description="effort is accepted and not used; format is not supported yet: a 400."
    )

    def refuse_unsupported(self) -> None:
        """Tools and structured output are refused, never ignored."""
        if self.tools or self.tool_choice:
            raise InvalidRequestError(
                NO_TOOLS, param="tools" if self.tools else "tool_choice", code="tools_unsupported"
            )
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
            ChatMessage(role=m.role, content=block_text(m.content, f"messages.{i}.content"))
            for i, m in enumerate(self.messages)
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


def stop_reason(v: Verdict) -> str:
    return STOP_REASONS.get(v.finish_reason, "end_turn")


def usage(v: Verdict) -> dict[str, int]:
    return {"input_tokens": v.tokens_in, "output_tokens": v.tokens_out}
