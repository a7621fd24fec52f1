"""Tools and tool turns for a head whose chat template cannot take them: a system prompt that
lists the functions and says how to call one, and tool turns rendered as text."""

from __future__ import annotations

import json

from council.types import Message, Tools

CALL_FORMAT = '{"name": "<function name>", "arguments": {<arguments as its schema says>}}'


def tools_prompt(tools: Tools) -> str:
    """The functions and how to call them, as a system prompt (prompts are data: short)."""
    lines = ["You can call these functions:"]
    for f in tools.functions:
        if tools.forced not in (None, f.name):
            continue
        about = f" - {f.description}" if f.description else ""
        lines.append(f"- {f.name}{about}\n  parameters: {json.dumps(f.parameters)}")
    lines.append(
        f"To call a function, reply with only this JSON: {CALL_FORMAT}. "
        "To call several at once, reply with a JSON list of such objects."
    )
    if tools.forced is not None:
        lines.append(f"You must call {tools.forced}.")
    elif tools.calls_only:
        lines.append("You must call a function.")
    else:
        lines.append("If no function helps, answer in plain text instead.")
    return "\n".join(lines)


def with_tools_prompt(messages: list[Message], tools: Tools) -> list[Message]:
    """The tools prompt merged into the system message (or one added first)."""
    text = tools_prompt(tools)
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{text}"), *messages[1:]]
    return [Message("system", text), *messages]


def as_text_turns(messages: list[Message]) -> list[Message]:
    """Tool turns as plain turns, for a template with no tool roles: an assistant's calls as
    the JSON it would write, a tool's result as a user turn that says which call it answers."""
    out = []
    for m in messages:
        if m.role == "tool":
            who = m.name or "the function"
            ref = f" (call {m.tool_call_id})" if m.tool_call_id else ""
            out.append(Message("user", f"Result of {who}{ref}:\n{m.content}"))
        elif m.tool_calls:
            calls = [{"name": c.name, "arguments": _args(c.arguments_json)} for c in m.tool_calls]
            text = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
            out.append(Message("assistant", f"{m.content}\n{text}".strip()))
        else:
            out.append(Message(m.role, m.content))
    return out


def _args(arguments_json: str) -> object:
    try:
        return json.loads(arguments_json)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return arguments_json
