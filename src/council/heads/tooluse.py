"""Tools for a local head: in its chat template's own tool format when the template has one,
else a system prompt that lists them, with tool turns rendered as text; what it wrote read
back as calls; and the JSON schema of a call it decodes under when a call is required (or,
under "auto", the grammar of free text or such a call)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from council.toolcalls.parse import parse_calls, prose
from council.toolcalls.prompt import as_text_turns, with_tools_prompt
from council.toolcalls.schema import call_schema
from council.types import GenParams, Message, ToolCall, Tools


@dataclass(frozen=True)
class TemplateTools:
    """What a chat template can take: a `tools` list, and tool turns (calls and results)."""

    tools: bool = False
    turns: bool = False

    @classmethod
    def of(cls, template: Any) -> TemplateTools:
        """Read from the Jinja source: templates that render tools use the `tools` variable;
        ones that render tool turns test for the "tool" role and read `tool_calls`."""
        if not isinstance(template, str):
            return cls()
        turns = "tool_calls" in template and ("'tool'" in template or '"tool"' in template)
        return cls(tools="tools" in template, turns=turns)


def prepare(
    messages: list[Message], params: GenParams, can: TemplateTools
) -> tuple[list[Message], list[dict[str, Any]] | None, GenParams]:
    """The prompt, the tools for the template (None: in the prompt or none) and the params
    (a call's JSON schema when one is required and the caller set none)."""
    if not can.turns:
        messages = as_text_turns(messages)
    tools = params.tools
    if tools is None or not tools.active:
        return messages, None, params
    if params.json_schema is None and tools.calls_only:
        params = replace(params, json_schema=call_schema(tools, parallel=tools.parallel))
    elif params.json_schema is None and not can.tools:  # auto, tools in a prompt: a call
        # the head begins is decoded under the tools' schemas; text stays free
        params = replace(params, text_or_call=call_schema(tools, parallel=tools.parallel))
    if can.tools:
        offered = [f.to_openai() for f in tools.functions if tools.forced in (None, f.name)]
        return messages, offered, params
    return with_tools_prompt(messages, tools), None, params


def read_calls(text: str, tools: Tools | None) -> tuple[str, list[ToolCall] | None]:
    """The text and the calls a local head wrote (None: it answered text, or no tools were
    offered); with calls, the text is only what it wrote around them."""
    calls = parse_calls(text) if tools is not None and tools.active else None
    return (text, None) if calls is None else (prose(text), calls)
