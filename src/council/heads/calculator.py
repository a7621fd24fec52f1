"""The calculator tool: the arithmetic in the question, evaluated exactly through exec_safe.

It answers only questions that are clearly arithmetic: an expression (verify.find_expression)
and, around it, nothing but a few asking words ("What is", "Calculate", "=", "?"). Any other
number or word ("3 apples", "2024-01-05", "in base 2") means the question is more than the
expression, and the calculator abstains rather than answer a different question.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from council.heads.tools import ToolAnswer
from council.learning.exec_safe import exec_safe
from council.types import Message, last_user_text
from council.verify import find_expression, to_python, with_operators

# Words that may stand around the expression of a plain arithmetic question.
ASKING = frozenset(
    [
        "what",
        "whats",
        "is",
        "are",
        "the",
        "value",
        "of",
        "calculate",
        "compute",
        "evaluate",
        "work",
        "out",
        "find",
        "solve",
        "simplify",
        "result",
        "answer",
        "please",
        "tell",
        "me",
        "give",
        "how",
        "much",
        "equals",
        "equal",
        "to",
        "exact",
        "exactly",
        "do",
        "you",
        "get",
        "s",
        "can",
    ]
)
_WORD = re.compile(r"[^\W\d_]+|\d")
_PUNCT_OK = set(" \t\n=?.,:;!'\"()")
# exec_safe's own 2 s is for runaway code; this expression is already checked, and on a busy
# box starting its interpreter alone took over 2 s (the calculator abstained on "6 * 9").
TIMEOUT_S = 15.0
_RESULT = re.compile(r"Fraction\((-?\d+), (\d+)\)")


class Calculator:
    exact = True  # computed from the question alone

    def answer(self, messages: list[Message]) -> ToolAnswer:
        question = last_user_text(messages)
        expr = find_expression(question)
        if expr is None:
            return ToolAnswer(None, "no arithmetic in the question")
        rest = with_operators(question).replace(expr, " ", 1)
        extra = [w for w in _WORD.findall(rest.lower()) if w not in ASKING]
        odd = {ch for ch in rest if not ch.isalnum() and ch not in _PUNCT_OK}
        if extra or odd:
            why = ", ".join([*extra[:3], *sorted(odd)[:3]])
            return ToolAnswer(None, f"the question is more than the arithmetic {expr} ({why})")
        python = exact(to_python(expr))
        if python is None:
            return ToolAnswer(None, f"{expr} is not plain arithmetic")
        result = exec_safe(python, timeout_s=TIMEOUT_S)
        value = _fraction(result.value) if result.ok else None
        if value is None:
            return ToolAnswer(None, f"{expr} did not evaluate ({result.error or result.value})")
        # Fraction's str is the ballot's key form: "56", "-4", "7/3".
        return ToolAnswer(f"{expr} = {value}", f"{expr} = {value} (exec_safe, exact fractions)")


class _Exact(ast.NodeTransformer):
    """Every number becomes Fraction('n'), so / divides exactly; exponents stay literal
    integers (exec_safe bounds literal exponents only)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node.left = self.visit(node.left)
        if not isinstance(node.op, ast.Pow):
            node.right = self.visit(node.right)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            text = repr(node.value)
            return ast.Call(ast.Name("Fraction", ast.Load()), [ast.Constant(text)], [])
        return node


def exact(python: str) -> str | None:
    """The expression with exact numbers, or None when it is not an expression."""
    try:
        tree = ast.parse(python, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    # Multiply by Fraction(1) so a lone power (2 ** 3) still comes back as a Fraction.
    return f"Fraction(1) * ({ast.unparse(_Exact().visit(tree))})"


def _fraction(value: str | None) -> Fraction | None:
    m = _RESULT.fullmatch(value or "")
    return Fraction(int(m[1]), int(m[2])) if m else None
