"""Tests for council.ballot.normalize: free-text answers reduced to comparable keys."""

from __future__ import annotations

import dataclasses
import time

import pytest

from council.ballot.normalize import Extracted, canonical_number, extract_answer

# --- canonical_number ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("0.5", "1/2"),
        ("1/2", "1/2"),
        ("½", "1/2"),
        ("0.50", "1/2"),
        ("2/4", "1/2"),
        (".5", "1/2"),
        ("1,000", "1000"),
        ("1000", "1000"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1,234,567.5", "2469135/2"),
        ("3.0", "3"),
        ("3", "3"),
        ("1 1/2", "3/2"),
        ("1½", "3/2"),
        ("1.5", "3/2"),
        ("3/2", "3/2"),
        ("5/4", "5/4"),
        ("¾", "3/4"),
        ("⅓", "1/3"),
        ("⅛", "1/8"),
        ("-3", "-3"),
        ("−3", "-3"),  # U+2212 MINUS SIGN
        ("+3", "3"),
        ("-0.5", "-1/2"),
        ("-½", "-1/2"),
        ("-1 1/2", "-3/2"),
        ("1.5e-3", "3/2000"),
        ("0", "0"),
        ("-0", "0"),
        ("$5", "5"),
        ("-$5", "-5"),
        ("€1,000", "1000"),
        ("50%", "50"),  # the % is dropped, not divided by 100
        ("42 apples", "42"),
        ("42 apples.", "42"),
        ("3.5 km/h", "7/2"),
        ("42 (six times seven)", "42"),
        ("about 3.14", "157/50"),
        ("12.", "12"),
        ("４２", "42"),  # fullwidth digits
    ],
)
def test_canonical_number(raw: str, key: str) -> None:
    assert canonical_number(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "Paris",
        "1/0",
        "1 0/0",
        "1 2",
        "1,2",
        "1/2/2020",
        "3 apples and 4 oranges",
        "one two three four five 6",
        "1e999999",
        "1e-999999",
        "9" * 5000,
        "9" * 5000 + "/7",
        "x >= 5",
    ],
)
def test_canonical_number_rejects(raw: str) -> None:
    assert canonical_number(raw) is None


@pytest.mark.parametrize(
    "raw",
    ["1e999999", "1" + "0" * 100_000, "9" * 5000 + "/" + "9" * 5000, "1e" + "9" * 5000],
)
def test_huge_numbers_return_quickly(raw: str) -> None:
    start = time.perf_counter()
    assert canonical_number(raw) is None
    result = extract_answer(f"Answer: {raw}")
    assert time.perf_counter() - start < 5.0  # a hang guard, not a speed test
    assert result.kind != "number"


def test_huge_reply_is_bounded_in_time() -> None:
    # Non-ASCII prose full of numbers is the slow path; a runaway reply must not stall the vote.
    reply = "½ é 7 " * 300_000 + "words at the end"
    start = time.perf_counter()
    result = extract_answer(reply)
    assert time.perf_counter() - start < 5.0  # a hang guard, not a speed test
    assert result.kind == "text"
    assert result.display == reply[:80].rstrip()


# --- numbers through extract_answer ----------------------------------------------------------


@pytest.mark.parametrize(
    "group",
    [
        ["0.5", "1/2", "½", "0.50", "2/4", "$\\frac{1}{2}$", "\\boxed{\\dfrac{1}{2}}"],
        ["1,000", "1000", "1e3", "1000 apples", "Answer: 1,000"],
        ["3.0", "3", "The answer is 3.", "**3**"],
        ["1 1/2", "3/2", "1.5", "1½"],
        ["-7", "−7", "x = -7", "Answer: -7.0"],
    ],
)
def test_equal_numbers_share_a_key(group: list[str]) -> None:
    results = [extract_answer(g) for g in group]
    assert {r.kind for r in results} == {"number"}
    assert len({r.key for r in results}) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [("0.5", "0.51"), ("1/2", "1/3"), ("-3", "3"), ("1 1/2", "11/2"), ("1e3", "1e4")],
)
def test_different_numbers_differ(a: str, b: str) -> None:
    assert extract_answer(a).key != extract_answer(b).key


@pytest.mark.parametrize(
    ("text", "key", "display"),
    [
        ("42", "42", "42"),
        ("0.5", "1/2", "0.5"),
        ("50%", "50", "50%"),
        ("$5", "5", "$5"),
        ("42 apples", "42", "42"),
        ("1,000", "1000", "1,000"),
    ],
)
def test_number_key_and_display(text: str, key: str, display: str) -> None:
    assert extract_answer(text) == Extracted("number", key, display)


REASONING = """Let me work through this step by step.
First, 3 + 4 = 7, then we multiply by 6 to get 42... wait, the question asks for 17 of them.
Subtracting 1,000 from 2,000 gives 1000, which is not relevant.
Answer: 42
"""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (REASONING, "42"),
        ("We have 3 cases and 5 ways.\nSo the result is \\boxed{7}.", "7"),
        ("3 + 4 = 7 so \\boxed{\\frac{3}{4}} is it, not 5", "3/4"),
        ("Nested: \\boxed{\\text{x} = 12}", "12"),
        ("The answer is 12.", "12"),
        ("There were 5 apples and 7 pears. The answer is 12. Let me check: 5 + 7.", "12"),
        ("Natalia sold 48 clips in April and 24 in May.\n#### 72", "72"),
        ("Answer: 5\nHmm, that was wrong; recount 3 and 3.\nFinal answer: 6", "6"),
        ("ANSWER: 9", "9"),
        ("**Answer:** 42", "42"),
        ("**Final Answer**\n\n31", "31"),
        ("The answer is:\n\n  8 dollars", "8"),
        ("The answer is not obvious at first.\nMultiplying, we get 6 * 7 = 42", "42"),
        ("Answer: x = 5", "5"),
        ("The answer is 3.5 meters. Let me double-check this 2 times.", "7/2"),
        ("Answer: 42. That is because 6 * 7 = 42 and 40 + 2 = 42 too.", "42"),
        ("The answer is $\\frac{3}{4}$.", "3/4"),
    ],
)
def test_final_answer_span_is_found(text: str, key: str) -> None:
    result = extract_answer(text)
    assert result.kind == "number"
    assert result.key == key


def test_gsm8k_hashes_ignore_markdown_headings() -> None:
    text = "#### Step 1\nCount the pears: there are 12 of them, plus 3 boxes and 4 bags.\nPears."
    assert extract_answer(text).key != "1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("After checking each step carefully, the total number of marbles is 17 in the jar.", "17"),
        (
            "We add the values, carry the one, double check the arithmetic twice, "
            "and after all that work the total of 3 plus 4 comes to 7.",
            "7",
        ),
        ("It is 42", "42"),
    ],
)
def test_unmarked_prose_number(text: str, key: str) -> None:
    assert extract_answer(text) == Extracted("number", key, key)


@pytest.mark.parametrize(
    "text",
    [
        "x >= 5",
        "x ≤ 5",
        "2 and 3",
        "In 1990 there were 12 cities with 3 rivers each, and by 2005 the count had "
        "grown to 40 as 7 new laws passed. Historians disagree about the causes, but "
        "most point to trade and migration as the main drivers of that change.",
    ],
)
def test_prose_without_a_clear_number_is_not_a_number(text: str) -> None:
    assert extract_answer(text).kind != "number"


def test_lone_number_in_a_long_essay_is_not_the_answer() -> None:
    essay = "The treaty changed the region in lasting ways. " * 8 + "It had 3 parts overall, sadly."
    result = extract_answer(essay)
    assert result == Extracted("text", None, essay[:80].rstrip())


# --- choices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(B)", "B"),
        ("B)", "B"),
        ("B.", "B"),
        ("[B]", "B"),
        ("**B**", "B"),
        ("Option B", "B"),
        ("option (d)", "D"),
        ("Choice E: the last one", "E"),
        ("answer: (c)", "C"),
        ("Answer: A", "A"),
        ("(B) Paris", "B"),
        ("B) Paris", "B"),
        ("The correct answer is (D).", "D"),
        ("Comparing the options, A is too small.\nFinal answer: C", "C"),
        ("\\boxed{E}", "E"),
    ],
)
def test_choice_letters(text: str, letter: str) -> None:
    assert extract_answer(text) == Extracted("choice", f"choice:{letter}", letter)


@pytest.mark.parametrize(
    "text",
    ["a dog", "A dog is an animal", "E. coli", "F", "I think so", "Be quick", "Answer: a dog"],
)
def test_words_are_not_choices(text: str) -> None:
    assert extract_answer(text).kind != "choice"


def test_article_a_is_dropped_not_a_choice() -> None:
    assert extract_answer("a dog") == Extracted("phrase", "phrase:dog", "dog")


# --- phrases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Paris",
        "paris",
        "Paris.",
        "PARIS!",
        "**Paris**",
        "`Paris`",
        '"Paris"',
        "“Paris”",
        "(Paris)",
        "The Paris",
        "  paris  ",
        "Ｐａｒｉｓ",  # fullwidth letters: NFKC, not just casefold
        "Answer: Paris",
        "\\boxed{\\text{Paris}}",
        "The answer is Paris. It has been the capital since 987.",
    ],
)
def test_phrase_normalization(text: str) -> None:
    assert extract_answer(text) == Extracted("phrase", "phrase:paris", "paris")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("New   York", "phrase:new york"),
        ("the New York Times", "phrase:new york times"),
        ("An apple.", "phrase:apple"),
        ("Paris (France)", "phrase:paris (france)"),
        ("ﬁsh", "phrase:fish"),  # NFKC folds the ligature
        ("No one", "phrase:no one"),
        ("E = mc^2", "phrase:e = mc^2"),
    ],
)
def test_phrase_keys(text: str, key: str) -> None:
    result = extract_answer(text)
    assert result.kind == "phrase"
    assert result.key == key


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Yes", "yes"),
        ("yes", "yes"),
        ("Yes.", "yes"),
        ("YES, it is", "yes"),
        ("**Yes**, definitely.", "yes"),
        ("No", "no"),
        ("No.", "no"),
        ("No, because the premise is false and there are many other reasons to doubt it.", "no"),
        ("True", "true"),
        ("false.", "false"),
        ("Answer: False", "false"),
    ],
)
def test_yes_no_true_false(text: str, word: str) -> None:
    assert extract_answer(text) == Extracted("phrase", f"phrase:{word}", word)


def test_phrases_differ() -> None:
    assert extract_answer("Paris").key != extract_answer("London").key
    assert extract_answer("yes").key != extract_answer("no").key
    assert extract_answer("true").key != extract_answer("yes").key


# --- text and edge cases ---------------------------------------------------------------------


LONG = (
    "Photosynthesis is the process by which green plants use sunlight to turn water and "
    "carbon dioxide into sugars, releasing oxygen as a by-product along the way."
)


def test_long_text_has_no_key() -> None:
    result = extract_answer(LONG)
    assert result.kind == "text"
    assert result.key is None
    assert result.display == LONG[:80].rstrip()
    assert len(result.display) <= 80


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_empty_is_text_without_key(text: str | None) -> None:
    assert extract_answer(text) == Extracted("text", None, "")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["...", "**", "?!"])
def test_punctuation_only_is_text(text: str) -> None:
    result = extract_answer(text)
    assert result.kind == "text"
    assert result.key is None


def test_extracted_is_frozen() -> None:
    result = extract_answer("42")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.key = "43"  # type: ignore[misc]


def test_numbers_win_over_phrases_with_units() -> None:
    assert extract_answer("42 apples").kind == "number"
    assert extract_answer("42 apples").key == extract_answer("42").key
