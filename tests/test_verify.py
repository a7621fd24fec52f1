"""The arithmetic verifier and the gate's number-aware near-duplicate rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.embeddings import Embedder
from council.learning.collector import Learner
from council.verify import UnsafeExpression, find_expression, safe_arithmetic, verify_answer
from tests.helpers import settings_with


@pytest.mark.parametrize(
    ("question", "expression"),
    [
        ("What is 17 * 23?", "17 * 23"),
        ("Calculate ( 5 * 3 ).", "( 5 * 3 )"),
        ("Calculate ( 3 * -5 + -9 ).", "( 3 * -5 + -9 )"),
        ("Calculate 6 / ( 2 + 1 ).", "6 / ( 2 + 1 )"),
        ("What is 7 times 8?", "7 * 8"),
        ("What is (2+3)^2?", "(2+3)^2"),
        ("I have 3 apples and 2 pears", None),
        ("Tell me about Paris", None),
    ],
)
def test_find_expression(question: str, expression: str | None) -> None:
    assert find_expression(question) == expression


@pytest.mark.parametrize(
    ("question", "answer", "verdict"),
    [
        ("Calculate ( 3 * -5 + -9 ).", "The answer is -24.", True),
        ("What is 17 * 23?", "391", True),
        ("What is 17 * 23?", "It is 390.", False),
        ("What is 1/2 + 1/4?", "0.75", True),
        ("What is 17 * 23?", "I cannot say", False),
        ("Who wrote Dune?", "Frank Herbert", None),
    ],
)
def test_verify_answer(question: str, answer: str, verdict: bool | None) -> None:
    assert verify_answer(question, answer) is verdict


@pytest.mark.parametrize(
    "expr",
    [
        *("2 ** 1000", "1 / 0", "__import__('os')", "9" * 300 + " * 9"),
        "9" * 150 + " ** 64",  # 9,600 digits: past the int-to-str limit, must not raise it
        *("1e999", "1e999999 + 1", "0.1e-999", "\x00"),
    ],
)
def test_safe_arithmetic_refuses(expr: str) -> None:
    with pytest.raises(UnsafeExpression):
        safe_arithmetic(expr)


@pytest.mark.parametrize(
    "question",
    [
        "What is " + "9" * 150 + " ^ 64?",  # over 4,300 digits: was a ValueError, then a 500
        "What is " + "9" * 90 + " * " + "9" * 20 + "?",  # exact, but past the vote's key size
    ],
)
def test_results_too_large_to_check_get_no_verdict(question: str) -> None:
    assert verify_answer(question, "42") is None


@pytest.mark.parametrize("answer", ["9" * 10_000, "1e999999", "Answer: " + "9" * 5000 + "/7"])
def test_huge_answers_are_wrong_not_errors(answer: str) -> None:
    assert verify_answer("What is 17 * 23?", answer) is False


def test_arithmetic_examples_with_other_numbers_are_not_near_duplicates(tmp_path: Path) -> None:
    s = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    learner = Learner(s, embedder=Embedder("minilm"))
    assert learner.collect_example("Calculate 23 + 45.", "ANSWER: 68", 0.95, "math")
    assert learner.collect_example("Calculate 21 + 45.", "ANSWER: 66", 0.95, "math")  # differs
    assert learner.collect_example("Calculate  23 + 45 .", "ANSWER: 68.", 0.95) is None  # same
