"""The program head (PAL): the real default model writes an expression, exec_safe runs it, and
the value is its vote; it abstains cleanly when the expression computes nothing, does not run,
or gives no number, and its abstentions are not dissent."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.config import HeadSpec, packaged_catalogue
from council.council import Council
from council.heads import build_head, make_context
from council.heads.program import (
    ProgramHead,
    answer_of,
    asks_for,
    computes,
    expression_of,
    question_of,
)
from council.types import Message
from tests.helpers import scripted, settings_with

LETTERS = 'How many times does the letter "r" appear in the text: "strawberry farm"?'
SYLLOGISM = (
    "Consider these statements:\n1. All ants are students\n2. All students are mortals\n\n"
    "Does it logically follow that:\nSome students are ants?\n(Answer Yes or No)"
)


@pytest.mark.parametrize(
    ("reply", "expr"),
    [
        ('"banana".count("a")', '"banana".count("a")'),
        ('```python\n"ab".count("a")\n```', '"ab".count("a")'),
        ("ANSWER: 3 * 4", "3 * 4"),
        ("", ""),
        # the model's own guess after the expression is dropped; exec_safe computes the value
        ("50 * 19 = 1050", "50 * 19"),
        ('n = "strawberry".lower().count("r")', '"strawberry".lower().count("r")'),
        # an expression with '=' inside stays whole; two '=' are no expression to cut
        ("round(7 / 3, ndigits=2)", "round(7 / 3, ndigits=2)"),
        ('"a=b".count("=")', '"a=b".count("=")'),
        ("a = b = 3", "a = b = 3"),
    ],
)
def test_the_expression_is_the_replys_first_line_without_fences(reply: str, expr: str) -> None:
    assert expression_of(reply) == expr


def test_only_an_expression_that_computes_something_counts() -> None:
    assert computes('"strawberry".count("r")') and computes("12 * 7 + 3")
    assert computes('"level" == "level"[::-1]')
    assert not computes("3") and not computes('"Paris"')  # a guess, not a program
    assert not computes('"rivers" == "rivers"')  # restates the question
    assert not computes("print(") and not computes("") and not computes("1 +\x00 2")


def test_only_numbers_and_truth_values_are_answers() -> None:
    assert answer_of("3") == "3" and answer_of("-2.5") == "-2.5" and answer_of("True") == "True"
    assert answer_of("Fraction(7, 3)") == "7/3" and answer_of("Fraction(4, 1)") == "4"
    assert answer_of("'Paris'") is None and answer_of("['a', 'b']") is None
    assert answer_of(None) is None
    # ... and only the kind the question asks for
    assert answer_of("True", {"number"}) is None and answer_of("3", {"truth"}) is None


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        (LETTERS, {"number"}),
        ("What is 12 * 7?", {"number"}),
        ("Is 91 a prime number?", {"truth", "number"}),
        ('Is "level" a palindrome? Answer True or False.', {"truth"}),
        ("Tell me about rivers.", set()),
        ("Who wrote Hamlet?", set()),
        ("Is Paris the capital of France?", set()),  # knowledge: nothing to compute on
        ("How many days are in a week?", set()),
    ],
)
def test_the_head_writes_programs_only_for_numbers_and_truth_values(
    question: str, kinds: set[str]
) -> None:
    assert asks_for(question) == kinds


def test_the_question_is_the_last_user_turn() -> None:
    turns = [Message("system", "recalled: ..."), Message("user", " first "),
             Message("assistant", "..."), Message("user", " second ")]  # fmt: skip
    assert question_of(turns) == "second"
    assert question_of([Message("system", "only a persona")]) is None


def program_spec(model: Path) -> HeadSpec:
    [spec] = [h for h in packaged_catalogue() if h.id == "smol-program"]
    return spec.model_copy(update={"model": str(model), "enabled": True})


@pytest.mark.slow
async def test_the_default_model_counts_letters_by_writing_the_expression(
    smollm2_dir: Path,
) -> None:
    """The persona answering in words on the same model, for contrast; the program head's
    account says what ran."""
    council = Council(settings_with([program_spec(smollm2_dir)]))
    try:
        await council.start()
        [head] = council.enabled
        assert isinstance(head, ProgramHead)
        [c] = await head.complete([Message("user", LETTERS)])
        assert c.ok and not c.abstained, c.tool
        assert c.text == "4" and c.tool == 'ran "strawberry farm".lower().count("r") = 4'
        engine = head._engine()
        before = engine.batches
        [chat] = await head.complete([Message("user", "Tell me about rivers.")])
        assert chat.ok and chat.abstained
        assert chat.tool == "the question gives nothing to compute on (no number, nothing quoted)"
        # asks for a number, but a fact to recall, not one to compute
        [fact] = await head.complete([Message("user", "How many books does the library hold?")])
        assert fact.abstained and fact.tool == chat.tool
        # data, but neither a number nor a truth value is asked for
        [word] = await head.complete([Message("user", 'Translate "bonjour" into English.')])
        assert word.abstained and word.tool == "the question asks for no number or truth value"
        assert engine.batches == before  # the model was not asked
        # asked (numbers, Yes or No), it writes "No": no program, but its tokens were spent
        [logic] = await head.complete([Message("user", SYLLOGISM)])
        assert logic.abstained and logic.tool == "wrote 'No', which computes nothing"
        assert logic.tokens_in > 0 and logic.tokens_out > 0
    finally:
        await council.close()


@pytest.mark.slow
async def test_an_abstaining_program_head_is_not_dissent(smollm2_dir: Path) -> None:
    """Two model heads agree on a chat answer; the program head abstains: confidence stays 1."""
    said = "Rivers flow to the sea."
    heads = [scripted(said, id="a"), scripted(said.rstrip("."), id="b")]
    spec = program_spec(smollm2_dir)
    settings = settings_with([*(h.spec for h in heads), spec])
    ctx = make_context(settings)
    council = Council(settings, heads=[*heads, build_head(spec, ctx)])
    try:
        await council.start()
        v = await council.ask("Tell me about rivers.")
    finally:
        await council.close()
        ctx.pool.close()
    votes = {x.head: x for x in v.votes}
    assert votes["smol-program"].abstained and votes["smol-program"].error is None
    assert v.confidence == 1.0 and v.answer.startswith("Rivers flow to the sea")
