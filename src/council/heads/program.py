"""`program` heads: program-aided answers (PAL). The head's model writes one Python expression
for the question, shown a few worked examples; exec_safe evaluates it in a limited child
process; the value is the answer, and the ballot shows the expression that ran.

Small models that cannot count letters or carry digits can often write the expression that
does (`"banana".count("a")`): on 200 letter-counting questions the default model answered 20 %
right in words and 79-82 % right through a program. The head abstains, and so never counts as
dissent:
- when the question asks for neither a number nor a truth value, or gives no data to compute
  on (no number, nothing quoted); the model is then not asked at all;
- when the expression does not run, or computes nothing (a bare literal is the model's guess,
  not a program; `"x" == "x"` restates the question);
- when its value is not the kind the question asks for.

    [[heads]]
    id = "smol-program"
    kind = "program"
    model = "smollm2-135m-instruct"   # any local model; it shares the personas' batches
    system_prompt = "..."             # optional: a persona, put before the program prompt

Personas vary the programs little: on those 200 questions three program heads (no persona,
precise, reasoner) scored .785, .815 and .800, and at least one was right on .835.
"""

from __future__ import annotations

import ast
import asyncio
import io
import re
import time
import tokenize
from collections.abc import Set as AbstractSet
from dataclasses import replace

from council.heads.calculator import TIMEOUT_S
from council.heads.local import LocalHead
from council.heads.streaming import streaming_to
from council.learning.exec_safe import exec_safe
from council.types import Completion, GenParams, Message

SYSTEM = "Answer with one Python expression that computes the answer. Write the expression only."
# Worked examples of different kinds, so the model copies the method, not one answer's shape.
SHOTS = (
    ('How many times does the letter "a" appear in the text: "banana bread"?',
     '"banana bread".lower().count("a")'),
    ("What is 12 times 7 plus 3?", "12 * 7 + 3"),
    ('Is "level" the same read backwards? Answer True or False.', '"level" == "level"[::-1]'),
    ('How many times does the letter "t" appear in the text: "That tall tree"?',
     '"That tall tree".lower().count("t")'),
)  # fmt: skip
MAX_TOKENS = 64  # one expression; the stop at the newline ends it sooner
# What the question asks for: a truth value (a yes/no or true/false question) or a number (a
# count, an amount, arithmetic). Anything else ("Tell me about rivers.") gets no program: the
# head abstains before asking the model.
_TRUTH_ASKED = re.compile(
    r"^\W*(is|are|does|do|did|can|could|was|were|has|have|had|will|would|should)\b"
    r"|true or false|yes or no",
    re.IGNORECASE,
)
_NUMBER_ASKED = re.compile(
    r"\d|how (many|much|long|old|far|often)|\b(count|number|sum|total|product|difference"
    r"|average|calculate|compute)\b",
    re.IGNORECASE,
)
_DATA = re.compile(r"\d|\"[^\"]+\"|'[^']+'|“[^”]+”")  # a number, or a quoted text
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?")
_KINDS = frozenset({"truth", "number"})
KIND_NAMES = {"number": "number", "truth": "truth value"}
_FRACTION = re.compile(r"Fraction\((-?\d+), (\d+)\)")


def question_of(messages: list[Message]) -> str | None:
    """The last user turn's text (recalled memories and personas are other turns)."""
    for m in reversed(messages):
        if m.role == "user" and isinstance(m.content, str) and m.content.strip():
            return m.content.strip()
    return None


def asks_for(question: str) -> set[str]:
    """The kinds of answer the question asks for: "truth", "number", both or neither. Neither
    when it gives no data to compute on (no number, nothing quoted): "Is Paris the capital of
    France?" is knowledge, not a program."""
    kinds: set[str] = set()
    if not gives_data(question):
        return kinds
    if _TRUTH_ASKED.search(question):
        kinds.add("truth")
    if _NUMBER_ASKED.search(question):
        kinds.add("number")
    return kinds


def gives_data(question: str) -> bool:
    """Whether the question holds something to compute on: a number or a quoted text."""
    return _DATA.search(question) is not None


def program_messages(question: str) -> list[Message]:
    shots = [m for q, a in SHOTS for m in (Message("user", q), Message("assistant", a))]
    return [Message("system", SYSTEM), *shots, Message("user", question)]


def expression_of(text: str) -> str:
    """The expression in the model's reply: its first line, without code fences or a prefix,
    and without a value the model wrote after it (`50 * 19 = 1050`) or a name it assigned
    the expression to (`n = "ab".count("a")`)."""
    line = text.strip().strip("`").strip()
    line = line.removeprefix("python").strip().splitlines()[0] if line else ""
    return _unassigned(line.removeprefix("ANSWER:").strip())


def _unassigned(line: str) -> str:
    """`EXPR = GUESS` -> EXPR, `NAME = EXPR` -> EXPR; anything else as it is. Only a line that
    is no expression and holds one `=` (outside strings, `==`, keyword arguments) is cut: the
    value is exec_safe's to compute, never the model's guess."""
    try:
        ast.parse(line, mode="eval")
        return line  # already an expression (`f(x, key=1)`, `"a=b".count("=")`)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return line
    depth, cuts = 0, []
    for t in tokens:
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        elif t.type == tokenize.OP and t.string == "=" and depth == 0:
            cuts.append(t.start[1])
    if len(cuts) != 1:
        return line
    left, right = line[: cuts[0]].strip(), line[cuts[0] + 1 :].strip()
    return right if left.isidentifier() else left


def computes(expr: str) -> bool:
    """Whether the expression does something (an operator, a call, a subscript), rather than
    being a literal the model guessed."""
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte
        return False
    for n in ast.walk(tree):  # `"x" == "x"` only restates the question
        if isinstance(n, ast.Compare) and all(
            ast.dump(c) == ast.dump(n.left) for c in n.comparators
        ):
            return False
    return any(isinstance(n, ast.BinOp | ast.Call | ast.Compare | ast.Subscript | ast.BoolOp)
               for n in ast.walk(tree))  # fmt: skip


def answer_of(value: str | None, wanted: AbstractSet[str] = _KINDS) -> str | None:
    """The ballot's text for a value's repr: a number or n/d where a number is `wanted`,
    True/False where a truth value is; None for anything else."""
    if value is None:
        return None
    if value in ("True", "False"):
        return value if "truth" in wanted else None
    if "number" not in wanted:
        return None
    if m := _FRACTION.fullmatch(value):
        return m[1] if m[2] == "1" else f"{m[1]}/{m[2]}"
    return value if _NUMBER.fullmatch(value) else None


class ProgramHead(LocalHead):
    """A local model that answers by writing an expression exec_safe evaluates."""

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        started = time.perf_counter()
        question = question_of(messages)
        if question is None:
            return self.abstained("no question to write a program for", started, n)
        if not gives_data(question):
            why = "the question gives nothing to compute on (no number, nothing quoted)"
            return self.abstained(why, started, n)
        wanted = asks_for(question)
        if not wanted:
            return self.abstained("the question asks for no number or truth value", started, n)
        asked = GenParams(temperature=0.0, max_tokens=MAX_TOKENS, stop=["\n"])
        if params is not None and params.max_tokens is not None:
            asked = replace(asked, max_tokens=min(MAX_TOKENS, params.max_tokens))
        with streaming_to(None):  # the expression is not the answer: nothing streams
            [wrote] = await super().complete(program_messages(question), n=1, params=asked)
        if not wrote.ok:
            return [replace(wrote) for _ in range(n)]
        expr = expression_of(wrote.text)
        if not computes(expr):
            why = f"wrote {expr[:80]!r}, which computes nothing"
            return self.abstained(why, started, n, wrote)
        result = await asyncio.to_thread(exec_safe, expr, TIMEOUT_S)
        text = answer_of(result.value, wanted) if result.ok else None
        if text is None:
            kind = " or a ".join(KIND_NAMES[k] for k in sorted(wanted))
            failed = (
                (result.error or "failed")
                if not result.ok
                else (f"gave {str(result.value)[:40]}, not a {kind}")
            )
            return self.abstained(f"ran {expr[:80]}: {failed}", started, n, wrote)
        ms = (time.perf_counter() - started) * 1000
        # greedy: n samples are n copies of the one answer
        return [replace(wrote, text=text, latency_ms=ms, tool=f"ran {expr} = {text}")
                for _ in range(n)]  # fmt: skip
