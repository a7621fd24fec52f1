"""The exact tool heads (dates, units; the calculator too): they answer what their tool
computes, abstain cleanly on anything else, show what they ran, and an answer they computed
outranks model heads that agree on something else."""

from __future__ import annotations

import pytest

from council.ballot.normalize import extract_answer
from council.ballot.vote import exact_override, tally
from council.config import HeadSpec
from council.council import Council
from council.heads.dates import Dates
from council.heads.tools import ToolHead
from council.heads.units import Units
from council.types import ABSTAINED, Message
from tests.helpers import ScriptedHead, scripted, settings_with


def ask(tool: Dates | Units, question: str) -> str | None:
    return tool.answer([Message("user", question)]).text


def head(name: str) -> ToolHead:
    return ToolHead(HeadSpec(id=name, kind="tool", tool=name))


def make(*heads: ScriptedHead | ToolHead) -> Council:
    return Council(settings_with([h.spec for h in heads]), heads=list(heads))


# dates -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What day of the week was 2024-03-15?", "Friday"),
        ("What day of the week is 5 March 2023?", "Sunday"),
        ("How many days are there between 2024-01-05 and 2024-03-01?", "56 days"),
        ("How many days from March 1, 2024 to January 5, 2024?", "56 days"),  # order-free
        ("How many weeks between 2024-01-01 and 2024-01-29?", "4 weeks"),
        ("What date is 30 days after January 5, 2024?", "2024-02-04"),
        ("What is 1 month after 2024-01-31?", "2024-02-29"),  # month ends clip, leap year
        ("What date was 2 years before 2000-02-29?", "1998-02-28"),
        ("What day of the week is 3 days before 2024-03-01?", "Tuesday"),
    ],
)
def test_dates_answers_weekdays_spans_and_shifts(question: str, answer: str) -> None:
    assert ask(Dates(), question) == answer


@pytest.mark.parametrize(
    ("question", "why"),
    [
        ("What is 7 * 8?", "no date with its year"),
        ("What day of the week is March 5?", "no date with its year"),  # which year?
        ("How many business days between 2024-01-05 and 2024-03-01?", "'business'"),
        ("How many days between 2024-01-05 and today?", "'today'"),
        ("What day of the week is 2024-02-30?", "not a calendar date"),
        ("How many weeks between 2024-01-01 and 2024-01-30?", "not a whole number of weeks"),
        ("Tell me about 2024-01-05.", "not a weekday, between or shift question"),
        ("What happened on 1969-07-20 and 1969-07-21?", "not a weekday, between or shift"),
    ],
)
def test_dates_abstains_on_what_it_does_not_model(question: str, why: str) -> None:
    found = Dates().answer([Message("user", question)])
    assert found.text is None and why in found.ran


# units -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "number"),
    [
        ("Convert 5 km to miles", "3.10686"),
        ("What is 100 degrees Fahrenheit in Celsius?", "37.7778"),
        ("How many feet are in 3 meters?", "9.84252"),
        ("How many ounces are in 2 pounds?", "32"),
        ("Convert 2 hours to minutes.", "120"),
        ("What is 30 mph in km/h?", "48.2803"),
        ("What is 0 K in C?", "-273.15"),
    ],
)
def test_units_converts_and_the_ballot_reads_the_result(question: str, number: str) -> None:
    text = ask(Units(), question)
    assert text is not None and extract_answer(text).display == number


@pytest.mark.parametrize(
    ("question", "why"),
    [
        ("What is 7 * 8?", "not a unit conversion question"),
        ("Convert 5 apples to oranges", "does not know the unit"),
        ("What is 5 kg in meters?", "measure different things"),
        ("What is 5 in binary?", "not a unit conversion question"),
        ("Should I convert 5 km to miles for the race?", "not a unit conversion question"),
    ],
)
def test_units_abstains_on_anything_but_a_conversion(question: str, why: str) -> None:
    found = Units().answer([Message("user", question)])
    assert found.text is None and why in found.ran


# in the ballot -----------------------------------------------------------------------------
async def test_a_tool_head_that_does_not_apply_abstains_without_failing() -> None:
    for name, question in [("dates", "Who wrote Hamlet?"), ("units", "What is 2024-01-05?")]:
        [c] = await head(name).complete([Message("user", question)])
        assert c.finish_reason == ABSTAINED and c.error is None and not c.exact


async def test_an_exact_answer_outranks_models_agreeing_on_another() -> None:
    """Three personas agree on 7 * 8 = 49; the calculator computed 56: 56 is the answer."""
    models = [scripted(r, id=f"m{i}") for i, r in enumerate(["49", "7 * 8 = 49", "49.", "56"])]
    v = await make(*models, head("calculator"), head("dates")).ask("What is 7 * 8?")
    assert extract_answer(v.answer).key == "56"
    votes = {x.head: x for x in v.votes}
    assert votes["calculator"].won and votes["m3"].won and not votes["m0"].won
    assert votes["dates"].abstained and votes["dates"].weight == 0
    assert any("calculator computed it (7 * 8 = 56" in n and "outranks 3" in n for n in v.notes)
    assert v.confidence == pytest.approx(2 / 5)  # its share of the answered votes, not 1.0


async def test_the_units_head_votes_with_what_it_ran() -> None:
    models = [scripted("5 km is 8 miles", id="a"), scripted("It is 8 miles.", id="b")]
    v = await make(*models, head("units")).ask("Convert 5 km to miles", strategy="weighted")
    assert extract_answer(v.answer).display == "3.10686"
    assert "units answered: 5 km -> miles: 3.10686 (pint)" in v.notes


async def test_a_model_majority_that_agrees_with_the_tool_keeps_its_win() -> None:
    models = [scripted("Friday", id="a"), scripted("Friday.", id="b")]
    v = await make(*models, head("dates")).ask("What day of the week was 2024-03-15?")
    assert "friday" in v.answer.lower()
    assert not any("outranks" in n for n in v.notes)
    assert v.confidence == 1.0


def test_exact_override_leaves_the_count_alone_without_an_exact_answer() -> None:
    t = tally([0, 0, 1], [1.0, 1.0, 1.0])
    assert exact_override(t, [False, False, False], [1.0, 1.0, 1.0]) is None
    agreed = exact_override(t, [False, True, False], [1.0, 1.0, 1.0])  # the count was right
    assert agreed is not None and agreed.outvoted == 0 and agreed.tally.winner == 0
    assert agreed.tally.winner_index == 1 and agreed.tally.confidence == t.confidence
    won = exact_override(t, [False, False, True], [1.0, 1.0, 1.0])
    assert won is not None and won.tally.winner == 1 and won.index == 2 and won.outvoted == 2
