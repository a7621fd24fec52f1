"""Whether a client's JSON schema can be applied at all, checked once before any head is asked:
`response_format` schemas (structured/grammar.py) and tools' `parameters` (toolcalls/schema.py)
both go through `problem`, and each caller wraps the answer in its own 400."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MAX_DEPTH = 32  # nesting a schema may have: deeper ones would exhaust the validator's stack


def nesting(value: Any) -> int:
    """How deeply a JSON value nests objects and arrays (iteratively: no stack to exhaust)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            todo += [(c, d + 1) for c in (v.values() if isinstance(v, dict) else v)]
    return deepest


def problem(schema: dict[str, Any]) -> str | None:
    """What stops `schema` from being applied, said as the end of a sentence whose subject is
    the schema ("... nests deeper than 32 levels; flatten it"); None when it can be applied."""
    if nesting(schema) > MAX_DEPTH:
        return f"nests deeper than {MAX_DEPTH} levels; flatten it"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        return (f"is not a valid JSON schema at {path}: {exc.message}; fix it "
                "(https://json-schema.org)")  # fmt: skip
    try:  # a $ref that never ends or does not resolve fails here, not on every answer
        list(Draft202012Validator(schema).iter_errors({}))
    except RecursionError:
        return "cannot be applied: it refers to itself without end; give the recursion a base case"
    except Exception as exc:
        return (f"cannot be applied ({type(exc).__name__}: {exc}); keep every $ref inside the "
                "schema (#/$defs/...)")  # fmt: skip
    return None
