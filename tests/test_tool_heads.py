"""Tool heads: the calculator and the reader answer what their tool applies to, abstain
cleanly otherwise, and an abstention is neither a vote nor dissent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from council.ballot.normalize import extract_answer
from council.config import HeadSpec
from council.council import Council
from council.embeddings import Embedder
from council.errors import AbstainedError, ConfigError
from council.exchange import context_block, success_label, with_context
from council.heads import build_head, make_context
from council.heads.calculator import Calculator
from council.heads.reader import SECTIONS, Reader, extract_span
from council.heads.tools import ToolHead
from council.memory.episodic import Recalled
from council.types import Message
from tests.helpers import ScriptedHead, scripted, settings_with

HANDBOOK = (
    "Acme staff handbook. Employees get 27 days of paid holiday per year, plus public "
    "holidays. The Leeds office opens at 8 am on weekdays. Our chief executive is Maria Lopez."
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def calc(question: str) -> str | None:
    return Calculator().answer([Message("user", question)]).text


def tool(tool: str, **spec: object) -> ToolHead:
    return ToolHead(HeadSpec(id=tool, kind="tool", tool=tool, **spec))  # type: ignore[arg-type]


# the calculator ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "key"),
    [
        ("Calculate 7 * 8.", "56"),
        ("What is 4 / 6?", "2/3"),  # exact: not 0.6666666666666666
        ("Calculate ( 56 + -33 ) - 84.", "-61"),
        ("What is 2^10?", "1024"),
        ("What is 1.5 * 4?", "6"),  # integers shown as integers
        ("What's 12 times 30?", "360"),
        ("Compute 1,000 - 1", "999"),
    ],
)
def test_calculator_answers_plain_arithmetic_exactly_in_the_ballots_form(
    question: str, key: str
) -> None:
    text = calc(question)
    assert text is not None
    assert extract_answer(text).key == key


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "I have 3 apples and buy 5 + 2 more; how many apples do I have?",  # a word problem
        "What day of the week was 2024-1-5?",  # a date, not a subtraction
        "Write 12 + 30 in base 2.",
        "What is 10 / 0?",
        "What is 5 + 3 % of 20?",
        "",
    ],
)
def test_calculator_abstains_when_the_question_is_not_just_arithmetic(question: str) -> None:
    found = Calculator().answer([Message("user", question)])
    assert found.text is None
    assert found.ran  # it says why


# the reader --------------------------------------------------------------------------------
def recalled() -> list[Recalled]:
    return [
        Recalled("knowledge", 1, HANDBOOK, 0.77, source="handbook.md", position=0),
        Recalled("fact", 2, "My dog is called Rex.", 0.6, said_at=time.time()),
        Recalled("memory", 3, "Q: best tea?\nA: Assam is a strong tea.", 0.5),
    ]


def test_reader_reads_the_context_block_the_council_writes() -> None:
    block = context_block(recalled())
    for header in SECTIONS:  # the reader finds the sections by these headers
        assert header in block


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How many days of paid holiday do employees get?", "27"),
        ("Who is the chief executive?", "Maria Lopez"),
        ("What is my dog called?", "Rex"),
        ("What time does the Leeds office open?", "8"),
    ],
)
def test_reader_extracts_the_answer_span_from_what_was_recalled(
    embedder: Embedder, question: str, answer: str
) -> None:
    msgs = with_context([Message("system", "Be brief."), Message("user", question)], recalled())
    found = Reader(embedder).answer(msgs)
    assert found.text == answer
    assert "similarity" in found.ran  # the sentence it read is in what it ran


def test_reader_abstains_with_nothing_recalled_or_nothing_close(embedder: Embedder) -> None:
    reader = Reader(embedder)
    assert reader.answer([Message("user", "How many days of holiday?")]).text is None
    far = with_context([Message("user", "What is the capital of Peru?")], recalled())
    found = reader.answer(far)
    assert found.text is None
    assert "close enough" in found.ran


def test_span_rule_never_answers_with_what_the_question_already_says() -> None:
    assert extract_span("Is 27 the number of days?", "Employees get 27 days.") is None
    assert extract_span("Where is Maria Lopez based?", "Maria Lopez works in Leeds.") == "Leeds"


# tool heads as heads -----------------------------------------------------------------------
async def test_a_tool_head_abstains_without_failing() -> None:
    head = tool("calculator")
    [c] = await head.complete([Message("user", "Who wrote Hamlet?")])
    assert c.ok and c.abstained and not c.answered
    assert c.tool == "no arithmetic in the question"
    [c] = await head.complete([Message("user", "What is 7 * 8?")])
    assert c.answered and c.text == "7 * 8 = 56"


def test_tool_heads_are_built_from_the_catalogue_like_any_head(tmp_path: Path) -> None:
    settings = settings_with([], data_dir=tmp_path)
    ctx = make_context(settings)
    head = build_head(HeadSpec(id="calc", kind="tool", tool="calculator"), ctx)
    assert isinstance(head, ToolHead)
    with pytest.raises(ConfigError, match="set tool to one of: calculator, reader"):
        build_head(HeadSpec(id="x", kind="tool", tool="abacus"), ctx)
    ctx.pool.close()


def make(*heads: ScriptedHead | ToolHead) -> Council:
    return Council(settings_with([h.spec for h in heads]), heads=list(heads))


async def test_an_abstention_is_neither_a_vote_nor_dissent() -> None:
    """Two model heads agree; the tool heads abstain: confidence stays 1.0, as without them."""
    without = await make(scripted("Paris", id="a"), scripted("Paris.", id="b")).ask(
        "What is the capital of France?"
    )
    heads = (scripted("Paris", id="a"), tool("calculator"), scripted("Paris.", id="b"))
    v = await make(*heads, tool("reader")).ask("What is the capital of France?")
    assert v.answer == without.answer == "Paris"
    assert v.confidence == without.confidence == 1.0
    votes = {x.head: x for x in v.votes}
    assert votes["calculator"].abstained and votes["reader"].abstained
    assert votes["calculator"].weight == 0 and votes["calculator"].cluster is None
    assert not votes["calculator"].won and votes["calculator"].error is None
    assert "calculator abstained: no arithmetic in the question" in v.notes
    assert any(n.startswith("reader abstained: nothing was recalled") for n in v.notes)
    # one answering head and two abstentions are one answer: no agreement label from it
    lone = await make(scripted("Paris", id="a"), tool("calculator"), tool("reader")).ask("Capital?")
    assert success_label(lone, None, 0.5) == (None, None)


async def test_the_calculator_votes_with_what_it_ran_in_the_notes() -> None:
    heads = (scripted("49", id="a"), tool("calculator"), scripted("56", id="b"))
    v = await make(*heads).ask("What is 7 * 8?", strategy="weighted")
    assert extract_answer(v.answer).key == "56"
    assert "calculator answered: 7 * 8 = 56 (exec_safe, exact fractions)" in v.notes


@pytest.mark.parametrize("strategy", ["vote", "weighted", "consensus", "rank", "moa", "debate"])
async def test_every_head_abstaining_is_a_clear_4xx_not_a_crash(strategy: str) -> None:
    council = make(tool("calculator"), tool("reader"))
    with pytest.raises(AbstainedError, match="Every head abstained") as err:
        await council.ask("Who wrote Hamlet?", strategy=strategy)
    assert err.value.status_code == 422
    with pytest.raises(AbstainedError):
        await council.ask_single("Who wrote Hamlet?", head_id="calculator")


def test_the_server_answers_an_all_abstained_ballot_with_a_4xx_that_says_the_fix() -> None:
    from fastapi.testclient import TestClient

    from council.server import create_app

    council = make(tool("calculator"), tool("reader"))
    with TestClient(create_app(council.settings, council)) as client:
        ask = {"model": "council", "messages": [{"role": "user", "content": "Who wrote Hamlet?"}]}
        r = client.post("/v1/chat/completions", json=ask)
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "no_head_applies" and "add a model head" in err["message"]
        ask["messages"] = [{"role": "user", "content": "What is 7 * 8?"}]
        r = client.post("/v1/chat/completions", json=ask)
        assert r.status_code == 200
        assert r.json()["choices"][0]["message"]["content"] == "7 * 8 = 56"


def test_the_default_council_has_the_tool_heads_but_never_as_judge_or_fast_path() -> None:
    from council.config import packaged_catalogue

    council = Council(settings_with(packaged_catalogue()))
    tools = {h.id for h in council.enabled if isinstance(h, ToolHead)}
    assert tools == {"calculator", "reader", "dates", "units"}
    # the program heads vote too, but answer few questions: never the fast path or the judge
    programs = {h.id for h in council.enabled if h.spec.kind == "program"}
    assert programs == {"smol-program", "smol-program-precise", "smol-program-reasoner"}
    assert council.fastest().id == "smol-concise"
    judge = council.judge(council.enabled)
    assert judge is not None and judge.id == "smol-precise"
