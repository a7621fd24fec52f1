"""JSON schemas of tools: a request's function schemas checked once (a 400 says why), a
proposed call's arguments checked against its function's schema, and the schema of "a call
to one of these functions" that a local head decodes under (GenParams.json_schema)."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from council.errors import InvalidRequestError
from council.structured.applicable import problem
from council.types import FunctionTool, ToolCall, Tools

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what OpenAI accepts as a function name
MAX_TOOLS = 128  # as OpenAI


def check_tools(tools: Tools, param: str = "tools") -> None:
    """Every function has a usable name and a valid JSON schema; tool_choice names one of
    them. Raises InvalidRequestError (400) naming the tool and the fix."""
    if len(tools.functions) > MAX_TOOLS:
        raise InvalidRequestError(
            f"{len(tools.functions)} tools; send at most {MAX_TOOLS}.", param=param
        )
    seen: set[str] = set()
    for i, fn in enumerate(tools.functions):
        where = f"{param}[{i}]"
        if not NAME_RE.match(fn.name):
            raise InvalidRequestError(
                f"{where} has the name {fn.name!r}; a function name has 1 to 64 letters, "
                "digits, '_', '.' or '-'.",
                param=where,
                code="invalid_tool",
            )
        if fn.name in seen:
            raise InvalidRequestError(
                f"{where}: two tools are named {fn.name!r}; give each function its own name.",
                param=where,
                code="invalid_tool",
            )
        seen.add(fn.name)
        check_parameters(fn, where)
    forced = tools.forced
    if forced is not None and forced not in seen:
        known = ", ".join(sorted(seen)) or "none"
        raise InvalidRequestError(
            f"tool_choice names the function {forced!r}, which is not among the tools "
            f"({known}); name one of them or send tool_choice 'auto'.",
            param="tool_choice",
            code="invalid_tool_choice",
        )
    if tools.calls_only and not tools.functions:
        raise InvalidRequestError(
            f"tool_choice {tools.choice!r} needs tools: send the functions in `tools`.",
            param="tool_choice",
            code="invalid_tool_choice",
        )


def check_parameters(fn: FunctionTool, where: str) -> None:
    """A function's `parameters` is a JSON schema of an object (as OpenAI requires)."""
    schema = fn.parameters
    why = problem(schema)
    if why is not None:
        raise InvalidRequestError(
            f"{where} ({fn.name}): parameters {why}.",
            param=f"{where}.parameters",
            code="invalid_tool_schema",
        )
    if schema and schema.get("type", "object") != "object":
        raise InvalidRequestError(
            f"{where} ({fn.name}): parameters has type {schema.get('type')!r}; a function's "
            "parameters must be a schema of type 'object'.",
            param=f"{where}.parameters",
            code="invalid_tool_schema",
        )


def call_problem(call: ToolCall, tools: Tools) -> str | None:
    """Why a proposed call cannot be made (None: it can): an unknown or unwanted function,
    arguments that are not a JSON object, or arguments its schema refuses."""
    fn = next((f for f in tools.functions if f.name == call.name), None)
    if fn is None:
        return f"calls {call.name!r}, which is not among the tools"
    if tools.forced is not None and call.name != tools.forced:
        return f"calls {call.name!r}, but tool_choice asked for {tools.forced!r}"
    try:
        args = json.loads(call.arguments_json)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        return f"{call.name}: arguments are not JSON ({exc})"
    if not isinstance(args, dict):
        return f"{call.name}: arguments are {type(args).__name__}, not a JSON object"
    try:
        error = next(iter(Draft202012Validator(fn.parameters).iter_errors(args)), None)
    except Exception as exc:  # e.g. a $ref that cannot be resolved here: no call passes it
        return f"{call.name}: its schema cannot be applied ({type(exc).__name__}: {exc})"
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
        return f"{call.name}: {path}: {error.message}"
    return None


def call_schema(tools: Tools, parallel: bool = False) -> dict[str, Any]:
    """The JSON a local head may write to call a function: {"name", "arguments"} for one of
    the tools (only the forced one under a named tool_choice); or a list of them if parallel."""
    functions = [f for f in tools.functions if tools.forced in (None, f.name)]
    one = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": f.name},
                    "arguments": f.parameters or {"type": "object"},
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for f in functions
        ]
    }
    if not parallel:
        return one
    return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
