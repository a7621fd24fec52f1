"""exec_safe: evaluate arithmetic and small Python expressions without letting them escape.

Two walls. First the AST: only expressions, literals, comprehensions, arithmetic, comparisons,
calls to a short list of pure builtins and non-underscore methods; no imports, no names
starting with '_', no attribute starting with '_', no lambdas or statements; constant
exponents and repetitions are bounded. Then the process: the checked expression runs in a
fresh `python -I` child with CPU-time and address-space limits and a wall-clock timeout, so a
runaway `sum(range(10**12))` or a memory bomb kills only the child.
"""

from __future__ import annotations

import ast
import json
import resource
import subprocess
import sys
from dataclasses import dataclass

ALLOWED_CALLS = frozenset(
    (
        *("abs", "all", "any", "bool", "dict", "divmod", "enumerate", "float", "int", "len"),
        *("list", "max", "min", "pow", "range", "reversed", "round", "set", "sorted", "str"),
        *("sum", "tuple", "zip"),
    )
)
ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.Call, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple,
    ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.Store, ast.keyword, ast.JoinedStr, ast.FormattedValue,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)  # fmt: skip
MAX_SOURCE = 2000
MAX_EXPONENT = 10_000
MAX_REPEAT = 100_000
TIMEOUT_S = 2.0
MEMORY_BYTES = 256 * 1024 * 1024
CPU_SECONDS = 2


class Refused(ValueError):
    """The expression is not allowed; the message says what was refused."""


@dataclass(frozen=True)
class Result:
    ok: bool
    value: str | None = None  # repr of the value
    error: str | None = None


def check(source: str) -> ast.Expression:
    """Parse and validate; raises Refused with the reason."""
    if len(source) > MAX_SOURCE:
        raise Refused(f"expression longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise Refused(f"not a single Python expression: {exc.msg}") from None
    bound = {
        n.id for c in ast.walk(tree) if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target) if isinstance(n, ast.Name)
    }  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise Refused(f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise Refused(f"name {node.id!r} is not allowed")
            if node.id not in ALLOWED_CALLS and node.id not in bound:
                raise Refused(
                    f"unknown name {node.id!r} (only builtins: {', '.join(sorted(ALLOWED_CALLS))})"
                )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise Refused(f"attribute {node.attr!r} is not allowed")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id not in ALLOWED_CALLS
        ):
            raise Refused(f"calling {node.func.id!r} is not allowed")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _bounded(node.right, MAX_EXPONENT, "exponent")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if _is_sequence(side):  # "x" * n and [0] * n build n items at once
                    _bounded(other, MAX_REPEAT, "repetition")
    return tree


def _is_sequence(node: ast.AST) -> bool:
    if isinstance(node, (ast.List, ast.Tuple, ast.ListComp, ast.JoinedStr)):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))


def _bounded(node: ast.AST, limit: int, what: str) -> None:
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
    if isinstance(value, (int, float)) and abs(value) > limit:
        raise Refused(f"{what} {value} is larger than {limit}")
    if not isinstance(node, (ast.Constant, ast.UnaryOp)):
        raise Refused(f"{what} must be a literal number (at most {limit})")


_CHILD = r"""
import json, sys
src = sys.stdin.read()
allowed = json.loads(sys.argv[1])
import builtins
env = {"__builtins__": {k: getattr(builtins, k) for k in allowed}}
try:
    value = eval(compile(src, "<exec_safe>", "eval"), env, {})
    out = {"ok": True, "value": repr(value)[:10000]}
except BaseException as exc:
    out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
sys.stdout.write(json.dumps(out))
"""


def _limits() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def exec_safe(source: str, timeout_s: float = TIMEOUT_S) -> Result:
    """Evaluate a checked expression in a limited child process; never raises."""
    try:
        check(source)
    except Refused as exc:
        return Result(False, error=f"refused: {exc}")
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(sorted(ALLOWED_CALLS))],
            input=source.strip(), capture_output=True, text=True, timeout=timeout_s,
            preexec_fn=_limits, env={}, cwd="/",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Result(False, error=f"timed out after {timeout_s:g}s")
    if proc.returncode != 0 or not proc.stdout:
        why = (
            "memory or CPU limit"
            if proc.returncode < 0
            else (proc.stderr.strip()[-200:] or "no output")
        )
        return Result(False, error=f"evaluation failed ({why})")
    data = json.loads(proc.stdout)
    return Result(data["ok"], data.get("value"), data.get("error"))
