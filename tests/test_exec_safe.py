"""exec_safe: useful expressions evaluate; every escape is refused or contained."""

from __future__ import annotations

import pytest

from council.learning import exec_safe as exec_safe_module
from council.learning.exec_safe import Refused, Result, check, exec_safe, parse_child

FRAME_ESCAPE = (
    "[list(g) for y in [1] for g in [(g.gi_frame.f_back.f_back.f_back"
    ".f_builtins['__import__']('os').getuid() for x in [1])]]"
)


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
        ("' a,b '.strip().upper().split(',')", "['A', 'B']"),
        ("sorted(['b', 'A'], key=str.lower)", "['A', 'b']"),
        ("{k: v for k, v in {'a': 1}.items()}", "{'a': 1}"),
        ("1 << 64", "18446744073709551616"),
        ("pow(2, 10, 1000)", "24"),
        ("f'{7:>3}'", "'  7'"),
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
        (FRAME_ESCAPE, "attribute 'gi_frame' is not allowed"),
        ("(x for x in [1]).gi_frame", "attribute 'gi_frame' is not allowed"),
        ("(x for x in [1]).gi_code.co_consts", "attribute 'gi_code' is not allowed"),
        ("(x for x in [1]).send(None)", "attribute 'send' is not allowed"),
        ("[y.co_code for y in [1]]", "attribute 'co_code' is not allowed"),
        ("[y.f_locals for y in [1]]", "attribute 'f_locals' is not allowed"),
        ("[y.tb_frame for y in [1]]", "attribute 'tb_frame' is not allowed"),
        ("[y.cr_frame for y in [1]]", "attribute 'cr_frame' is not allowed"),
        ('"{0.__class__}".format(1)', "attribute 'format' is not allowed"),
        ('"{.gi_frame}".format((x for x in [1]))', "attribute 'format' is not allowed"),
        ("'{a}'.format_map({'a': 1})", "attribute 'format_map' is not allowed"),
        ("str.format('{0.__class__}', 1)", "attribute 'format' is not allowed"),
        ("f'{1:{5}}'", "nested fields in a format spec"),
        ("f'{1:>999999999}'", "format width"),
        ("[1 for x.upper in [1]]", "assigning to attribute"),
        ("[pow][0](10, 10 ** 8)", "only builtins and allowed methods can be called"),
        ("[int(10, 10 ** 8) for int in [pow]]", "hides a builtin"),
        ("1 << 10 ** 9", "shift must be a literal"),
        ("1 << 99999", "shift 99999 is larger"),
        ("9 ** 9 ** 9", "exponent must be a literal"),
        ("pow(10, 10 ** 8)", "exponent must be a literal"),
        ("pow(10, exp=99999)", "exponent 99999 is larger"),
        ("(1, 2) * 10 ** 9", "repetition"),
        (b"'\\ud800'".decode("unicode_escape"), "unpaired surrogate"),
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


def test_the_child_refuses_names_off_the_lists_even_past_the_ast_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exec_safe_module, "check", lambda source: None)  # the first wall down
    r = exec_safe(FRAME_ESCAPE)
    assert not r.ok and "names outside the allow-list" in (r.error or ""), r
    assert "f_back" in (r.error or "") and "gi_frame" in (r.error or "")


@pytest.mark.parametrize(
    "stdout",
    [
        "1000",  # valid JSON, but not the child's object
        "uid=0(root)\n",
        '{"ok": true, "value": "1"}trailing',
        '{"ok": "yes"}',
        '{"ok": true, "value": 5}',
        "[" * 100_000,
        "9" * 5000,  # past the int digit limit json.loads would hit
    ],
)
def test_unexpected_child_output_is_an_error_result(stdout: str) -> None:
    r = parse_child(0, stdout, "")
    assert not r.ok and "unexpected output" in (r.error or ""), r


def test_child_failures_are_error_results() -> None:
    assert parse_child(-9, "", "").error == "evaluation failed (memory or CPU limit)"
    assert "boom" in (parse_child(1, "", "Traceback\nboom").error or "")
    assert parse_child(0, '{"ok": true, "value": "3"}', "") == Result(True, "3")


@pytest.mark.parametrize(
    "source",
    [
        "(10 ** 10000) ** 10000",
        "str(1) * 10 ** 9",
        "2 ** 10000 * 10 ** 5000",
        "'ab'.replace('a', 'a' * 100000) * 100000",
    ],
)
def test_huge_numbers_and_repetitions_are_contained(source: str) -> None:
    r = exec_safe(source, timeout_s=3.0)
    assert not r.ok and r.error, r
