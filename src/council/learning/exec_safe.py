"""exec_safe: evaluate arithmetic and small Python expressions without letting them escape.

Two walls. First the AST: only expressions, literals, comprehensions, arithmetic, comparisons,
calls to a short list of pure builtins (ALLOWED_CALLS) and attributes from a short list of
pure methods of plain values (ALLOWED_METHODS); no imports, no names starting with '_', no
lambdas or statements; constant exponents, shifts and repetitions are bounded. Then the
process: the checked expression runs in a fresh `python -I` child that checks again that its
bytecode names nothing off those lists, evaluates with only the allowed builtins, and runs under
CPU-time and address-space limits and a wall-clock timeout, so a runaway
`sum(range(10**12))` or a memory bomb kills only the child. Whatever the child prints, the
parent answers a Result and never raises.
"""

from __future__ import annotations

import ast
import json
import re
import resource
import subprocess
import sys
from dataclasses import dataclass

ALLOWED_CALLS = frozenset(
    (
        *("abs", "all", "any", "bool", "dict", "divmod", "enumerate", "float", "int", "len"),
        *("list", "max", "min", "pow", "range", "reversed", "round", "set", "sorted", "str"),
        *("sum", "tuple", "zip"),
        "Fraction",  # fractions.Fraction: exact arithmetic (the calculator head's)
    )
)
# The only attributes an expression may name: pure methods of str, int, float, list, tuple,
# dict and set. An allow-list, because any other attribute name may reach a frame, generator
# or code object (`g.gi_frame.f_back.f_builtins` reaches `__import__`). Left out on purpose:
# format and format_map ("{0.__class__}" fields look attributes up by name), padding (zfill,
# center, ljust: a width of 10**9 is a memory bomb), encode/decode/translate.
ALLOWED_METHODS = frozenset(
    (
        *("upper", "lower", "title", "capitalize", "casefold", "swapcase"),  # str
        *("strip", "lstrip", "rstrip", "removeprefix", "removesuffix"),
        *("split", "rsplit", "splitlines", "partition", "rpartition", "join", "replace"),
        *("find", "rfind", "rindex", "startswith", "endswith"),
        *("isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace"),
        *("isupper", "islower", "istitle"),
        *("bit_length", "bit_count", "is_integer", "as_integer_ratio", "conjugate"),  # numbers
        *("count", "index", "append", "extend", "insert", "pop", "remove", "copy"),  # list
        *("sort", "reverse", "keys", "values", "items", "get"),  # list, dict
        *("union", "intersection", "difference", "symmetric_difference"),  # set
        *("issubset", "issuperset", "isdisjoint", "add", "discard"),
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
MAX_SHIFT = 10_000
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
        source.encode("utf-8")  # the child reads UTF-8: it must run exactly what was checked
    except UnicodeEncodeError:
        raise Refused("expression has unpaired surrogate characters; send plain text") from None
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise Refused(f"not a single Python expression: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, deep nesting
        raise Refused(f"not a single Python expression: {type(exc).__name__}") from None
    bound = {
        n.id for c in ast.walk(tree) if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target) if isinstance(n, ast.Name)
    }  # fmt: skip
    if shadowed := sorted(bound & ALLOWED_CALLS):
        # `[int(10, 10**8) for int in [pow]]` would call pow past its bound under another name
        raise Refused(f"loop variable {shadowed[0]!r} hides a builtin; pick another name")
    # Names first, then attributes, then shapes and sizes, so that the reason given is the
    # root one: "calling 'open'" for open(f).read(), "gi_frame" for g.gi_frame.f_back[...]().
    for rule in (_check_name, _check_attribute, _check_shape):
        for node in ast.walk(tree):
            rule(node, bound)
    return tree


def _check_name(node: ast.AST, bound: set[str]) -> None:
    if not isinstance(node, ALLOWED_NODES):
        raise Refused(f"{type(node).__name__} is not allowed")
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Name) and func.id not in ALLOWED_CALLS:
        raise Refused(f"calling {func.id!r} is not allowed")
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise Refused(f"name {node.id!r} is not allowed")
        if node.id not in ALLOWED_CALLS and node.id not in bound:
            raise Refused(
                f"unknown name {node.id!r} (only builtins: {', '.join(sorted(ALLOWED_CALLS))})"
            )


def _check_attribute(node: ast.AST, bound: set[str]) -> None:
    if not isinstance(node, ast.Attribute):
        return
    if node.attr not in ALLOWED_METHODS:
        # Name the innermost refused attribute of a chain: gi_frame in g.gi_frame.f_back.
        node = [n for n in ast.walk(node) if isinstance(n, ast.Attribute)
                and n.attr not in ALLOWED_METHODS][-1]  # fmt: skip
        raise Refused(
            f"attribute {node.attr!r} is not allowed; only these methods are: "
            f"{', '.join(sorted(ALLOWED_METHODS))}"
        )
    if not isinstance(node.ctx, ast.Load):
        raise Refused(f"assigning to attribute {node.attr!r} is not allowed")


def _check_shape(node: ast.AST, bound: set[str]) -> None:
    if isinstance(node, ast.Call):
        _check_call(node)
    if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
        _check_format_spec(node.format_spec)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        _bounded(node.right, MAX_EXPONENT, "exponent")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.LShift):
        _bounded(node.right, MAX_SHIFT, "shift")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if _is_sequence(side):  # "x" * n and [0] * n build n items at once
                _bounded(other, MAX_REPEAT, "repetition")


def _check_call(node: ast.Call) -> None:
    func = node.func
    if not isinstance(func, (ast.Name, ast.Attribute)):
        # `[pow][0](10, 10**9)` would call a builtin past the checks made on its name
        raise Refused("only builtins and allowed methods can be called, by name")
    if isinstance(func, ast.Name) and func.id == "pow":
        exp = node.args[1] if len(node.args) > 1 else None
        exp = next((k.value for k in node.keywords if k.arg == "exp"), exp)
        if exp is not None:
            _bounded(exp, MAX_EXPONENT, "exponent")


def _check_format_spec(spec: ast.expr) -> None:
    """Format specs are literal text with bounded widths: f"{x:{w}}" could pad by any w."""
    parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
    for part in parts:
        if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
            raise Refused("nested fields in a format spec are not allowed; write the spec out")
        for digits in re.findall(r"\d+", part.value):
            if len(digits) > 6 or int(digits) > MAX_REPEAT:
                raise Refused(f"format width {digits[:12]} is larger than {MAX_REPEAT}")


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


# The child's own wall, in case an escape slips past check(): every name its bytecode uses
# (globals and attributes alike, in nested code too) must be on the lists it is given.
_CHILD = r"""
import json, sys, types
allowed, methods = json.loads(sys.argv[1]), json.loads(sys.argv[2])
try:
    code = compile(sys.stdin.buffer.read().decode("utf-8"), "<exec_safe>", "eval")
    todo, names = [code], set()
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    extra = sorted(names - set(allowed) - set(methods))
    if extra:
        raise PermissionError(f"names outside the allow-list: {', '.join(extra)}")
    import builtins, fractions
    env = {"__builtins__": {k: getattr(builtins, k, None) or getattr(fractions, k)
                            for k in allowed}}
    value = eval(code, env, {})
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
    lists = (json.dumps(sorted(ALLOWED_CALLS)), json.dumps(sorted(ALLOWED_METHODS)))
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD, *lists],
            input=source.strip().encode("utf-8"), capture_output=True, timeout=timeout_s,
            preexec_fn=_limits, env={}, cwd="/",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Result(False, error=f"timed out after {timeout_s:g}s")
    except (OSError, subprocess.SubprocessError) as exc:  # could not start the child
        return Result(False, error=f"evaluation failed ({type(exc).__name__}: {exc})")
    stdout = proc.stdout.decode("utf-8", "replace")
    return parse_child(proc.returncode, stdout, proc.stderr.decode("utf-8", "replace"))


def parse_child(returncode: int, stdout: str, stderr: str) -> Result:
    """The child's one JSON object as a Result; any other output is an error Result."""
    if returncode != 0 or not stdout:
        why = "memory or CPU limit" if returncode < 0 else (stderr.strip()[-200:] or "no output")
        return Result(False, error=f"evaluation failed ({why})")
    try:
        data = json.loads(stdout)
    except (ValueError, RecursionError):  # not JSON, or a number past the int digit limit
        data = None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("ok"), bool)
        or not all(isinstance(data.get(k), (str, type(None))) for k in ("value", "error"))
    ):
        return Result(False, error=f"evaluation failed (unexpected output {stdout[:80]!r})")
    return Result(data["ok"], data.get("value"), data.get("error"))
