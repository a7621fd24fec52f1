"""A request's tools as the council takes them: OpenAI-shaped dicts ({"type": "function",
"function": {name, description, parameters}}) or FunctionTools, and tool_choice as OpenAI
has it ("auto", "none", "required" or {"type": "function", "function": {"name": ...}})."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from council.errors import InvalidRequestError
from council.toolcalls.schema import check_tools
from council.types import TOOL_CHOICES, FunctionTool, GenParams, Tools

# Strategies that vote over the heads' own proposals, so a tool call can win as it was made;
# the others write a new answer (a synthesis, a ranking): a tools request votes instead.
TOOL_STRATEGIES = {"vote", "weighted", "consensus", "specialization"}


def as_tools(
    tools: list[dict[str, Any]] | list[FunctionTool] | None,
    tool_choice: str | dict[str, Any] | None = None,
    parallel: bool | None = None,
) -> Tools | None:
    """The request's Tools, checked (a 400 says what is wrong); None without tools."""
    if not tools:
        if tool_choice in (None, "none", "auto"):
            return None
        raise InvalidRequestError(
            f"tool_choice {tool_choice!r} needs tools: send the functions in `tools`.",
            param="tool_choice",
            code="invalid_tool_choice",
        )
    functions = tuple(_function(t, i) for i, t in enumerate(list(tools)))
    offered = Tools(functions, _choice(tool_choice), parallel is not False)
    check_tools(offered)
    return offered


def _function(t: Any, i: int) -> FunctionTool:
    if isinstance(t, FunctionTool):
        return t
    fn = t.get("function") if isinstance(t, dict) else None
    if (
        not isinstance(t, dict)
        or t.get("type", "function") != "function"
        or not isinstance(fn, dict)
    ):
        raise InvalidRequestError(
            f"tools[{i}] is not a function tool; send {{'type': 'function', 'function': "
            "{'name': ..., 'parameters': {...}}}.",
            param=f"tools[{i}]",
            code="invalid_tool",
        )
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise InvalidRequestError(
            f"tools[{i}].function.parameters must be a JSON schema object.",
            param=f"tools[{i}].function.parameters",
            code="invalid_tool_schema",
        )
    return FunctionTool(str(fn.get("name") or ""), str(fn.get("description") or ""), params)


def _choice(choice: str | dict[str, Any] | None) -> str:
    if choice is None:
        return "auto"
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") == "function" and isinstance(name, str) and name:
            return name
    raise InvalidRequestError(
        f"tool_choice {choice!r} is not one of 'auto', 'none', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}.",
        param="tool_choice",
        code="invalid_tool_choice",
    )


def with_tools(
    params: GenParams | None,
    tools: list[dict[str, Any]] | list[FunctionTool] | None,
    tool_choice: str | dict[str, Any] | None,
) -> GenParams | None:
    """The call's params with the Python API's tools and tool_choice (checked) in them."""
    if tools is None and tool_choice is None:
        return params
    return replace(params or GenParams(), tools=as_tools(tools, tool_choice))


def tool_strategy(name: str, params: GenParams | None) -> tuple[str, list[str]]:
    """The strategy a request runs: `vote` for one with tools whose strategy cannot make
    a call win as proposed (with a note that says so)."""
    tools = params.tools if params is not None else None
    if tools is None or not tools.active or name in TOOL_STRATEGIES:
        return name, []
    return "vote", [f"tools: strategy {name} writes its own answer, so the heads voted"]
