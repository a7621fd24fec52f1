"""exec_safe: useful expressions evaluate; every escape is refused or contained."""

from __future__ import annotations

import pytest

from council.learning.exec_safe import Refused, check, exec_safe


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("17 * 23", "391"),
        ("(2 + 3) ** 2 - 1", "24"),
        ("7 / 2", "3.5"),
        ("sum(range(101))", "5050"),
        ("max([x * x for x in range(5)])", "16"),
        ("'strawberry'.count('r')", "3"),
        ("sorted({3, 1, 2})", "[1, 2, 3]"),
        ("round(2 ** 0.5, 3)", "1.414"),
    ],
)
def test_allowed_expressions_evaluate(source: str, value: str) -> None:
    r = exec_safe(source)
    assert r.ok and r.value == value, r


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("__import__('os').system('id')", "not allowed"),
        ("import os", "single Python expression"),
        ("open('/etc/passwd').read()", "calling 'open' is not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "attribute '__"),
        ("(1).__class__", "attribute '__class__'"),
        ("globals()", "not allowed"),
        ("eval('1')", "not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[x for x in range(3)] if (y := 1) else 0", "NamedExpr is not allowed"),
        ("2 ** 99999", "exponent 99999 is larger"),
        ("10 ** 10 ** 10", "must be a literal"),
        ("'x' * 10 ** 9", "repetition"),
        ("[0] * 10 ** 9", "repetition"),
        ("x", "unknown name 'x'"),
    ],
)
def test_escapes_are_refused_before_running(source: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        check(source)
    r = exec_safe(source)
    assert not r.ok and r.error and r.error.startswith("refused")


def test_infinite_work_is_cut_by_time() -> None:
    r = exec_safe("sum(range(10 ** 13))", timeout_s=1.0)
    assert not r.ok and ("timed out" in (r.error or "") or "limit" in (r.error or ""))


def test_memory_bombs_hit_the_child_limit() -> None:
    r = exec_safe("len(list(range(10 ** 9)))")
    assert not r.ok and ("MemoryError" in (r.error or "") or "limit" in (r.error or ""))


def test_runtime_errors_come_back_as_errors() -> None:
    r = exec_safe("1 / 0")
    assert not r.ok and "ZeroDivisionError" in (r.error or "")
