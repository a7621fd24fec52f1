"""Verifiers: checks that tell whether an answer is right without asking a model.

The arithmetic verifier finds an arithmetic expression in a question, evaluates it exactly
(AST walk over numbers and + - * / ** with bounds, never `eval`), and compares it with the
number extracted from the answer.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

from council.ballot.normalize import canonical_number, extract_answer

MAX_EXPONENT = 64
MAX_DIGITS = 200
# Sizes are compared with this, never measured with str(): str() of an int past 4,300 digits
# raises ValueError (Python's int-to-str limit), and (10**199) ** 64 gets there.
_TOO_BIG = 10**MAX_DIGITS
_LITERAL_EXPONENT = re.compile(r"(?<=[\d.])[eE]([+-]?\d+)")
_EXPR = re.compile(r"[-+(\d][\d\s.,+\-*/×÷x^()]*[\d)]|\d")
_OPS = {"×": "*", "÷": "/", "^": "**"}


class UnsafeExpression(ValueError):
    """The expression uses something other than numbers and + - * / ** (or is too large)."""


def _check(value: Fraction) -> Fraction:
    if abs(value.numerator) >= _TOO_BIG or value.denominator >= _TOO_BIG:
        raise UnsafeExpression(f"result has more than {MAX_DIGITS} digits")
    return value


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    number = node.value if isinstance(node, ast.Constant) else None
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        if not math.isfinite(number):  # 1e999 parses as inf
            raise UnsafeExpression(f"number {number} is too large")
        return _check(Fraction(str(number)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _eval(node.operand)
        return v if isinstance(node.op, ast.UAdd) else -v
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return _check(left + right)
        if isinstance(node.op, ast.Sub):
            return _check(left - right)
        if isinstance(node.op, ast.Mult):
            return _check(left * right)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise UnsafeExpression("division by zero")
            return _check(left / right)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > MAX_EXPONENT:
                raise UnsafeExpression(f"exponents must be whole numbers up to {MAX_EXPONENT}")
            if left == 0 and right < 0:
                raise UnsafeExpression("division by zero")
            return _check(left ** int(right))
    raise UnsafeExpression(f"{type(node).__name__} is not allowed in arithmetic")


def to_python(expr: str) -> str:
    """Arithmetic as people write it ("7 × 8", "2^3", "1,000 x 3") in Python's spelling."""
    text = expr.strip()
    for sym, op in _OPS.items():
        text = text.replace(sym, op)
    return re.sub(r"(?<=\d)\s*x\s*(?=\d)", "*", text).replace(",", "")


def safe_arithmetic(expr: str) -> Fraction:
    """Evaluate + - * / ** over numbers exactly; raises UnsafeExpression for anything else."""
    text = to_python(expr)
    if len(text) > 500:
        raise UnsafeExpression("expression longer than 500 characters")
    for m in _LITERAL_EXPONENT.finditer(text):  # 1e-999 would parse as 0.0, silently
        if abs(int(m[1])) > MAX_DIGITS:
            raise UnsafeExpression(f"number exponents must be at most {MAX_DIGITS}")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"not an arithmetic expression: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, deep nesting
        raise UnsafeExpression(f"not an arithmetic expression: {type(exc).__name__}") from None
    return _eval(tree)


_WORDS = [
    (re.compile(r"\s+(?:times|multiplied by)\s+", re.I), " * "),
    (re.compile(r"\s+(?:divided by|over)\s+", re.I), " / "),
    (re.compile(r"\s+plus\s+", re.I), " + "),
    (re.compile(r"\s+minus\s+", re.I), " - "),
]


def find_expression(question: str) -> str | None:
    """The longest run in the question that parses as arithmetic with at least one operator."""
    question = with_operators(question)
    best = None
    for m in _EXPR.finditer(question):
        cand = _balanced(m.group(0).strip().rstrip(".,"))
        if not re.search(r"\d\s*[-+*/×÷x^]\s*[\d(-]", cand):
            continue
        try:
            safe_arithmetic(cand)
        except UnsafeExpression:
            continue
        if best is None or len(cand) > len(best):
            best = cand
    return best


def with_operators(question: str) -> str:
    """The question with spelled-out operators as symbols ("7 times 8" -> "7 * 8")."""
    for pattern, op in _WORDS:
        question = pattern.sub(op, question)
    return question


def _balanced(text: str) -> str:
    """Drop unmatched parentheses at the ends ("( 5 * 3" or "5 * 3 )" around a sentence)."""
    while text.count("(") > text.count(")") and text.startswith(("(", "-(", "+(")):
        text = text[text.index("(") + 1 :].strip()
    while text.count(")") > text.count("(") and text.endswith(")"):
        text = text[:-1].strip()
    return text


def verify_answer(question: str, answer: str) -> bool | None:
    """True/False when the question is checkable arithmetic, None when no verifier applies."""
    expr = find_expression(question)
    if expr is None:
        return None
    gold = safe_arithmetic(expr)
    # More digits than the vote's keys hold (normalize bounds them): not checkable, no verdict.
    key = canonical_number(f"{gold.numerator}/{gold.denominator}")
    if key is None:
        return None
    got = extract_answer(answer)
    if got.kind != "number" or got.key is None:
        return False
    return got.key == key
