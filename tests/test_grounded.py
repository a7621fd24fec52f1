"""An exact span read from recalled text counts for what it is: the reader's grounded answer
wins over heads that agree on answers not containing it, and never over heads that say it."""

from __future__ import annotations

import time

import pytest

from council.ballot.vote import GROUNDED_MIN, grounded_override, tally
from council.config import HeadSpec
from council.council import Council
from council.embeddings import Embedder
from council.exchange import with_context
from council.heads import make_context
from council.heads.tools import ToolHead
from council.memory.episodic import Recalled
from council.types import Message
from tests.helpers import ScriptedHead, scripted, settings_with

FACTS = [
    Recalled("fact", 1, "The project's code name is Zorblax.", 0.7, said_at=time.time()),
    Recalled(
        "knowledge",
        2,
        "Acme staff handbook. Employees get 27 days of paid holiday per year.",
        0.77,
        source="handbook.md",
        position=0,
    ),
]


def test_a_grounded_span_outranks_a_cluster_that_does_not_say_it() -> None:
    clusters, weights = [0, 0, 0, 1], [1.0, 1.0, 1.0, 1.0]
    t = tally(clusters, weights)
    texts = ["I don't know.", "I do not know.", "Unknown.", "Zorblax"]
    g = grounded_override(t, texts, [None, None, None, 0.8], weights)
    assert g is not None and g.index == 3 and g.outvoted == 3
    assert g.tally.winner == 1 and g.tally.winner_index == 3
    assert g.tally.confidence == pytest.approx(0.25)  # only the reader says it


def test_it_does_not_when_the_cluster_says_it_or_the_match_is_loose() -> None:
    clusters, weights = [0, 0, 1], [1.0, 1.0, 1.0]
    t = tally(clusters, weights)
    said = ["The code name is ZORBLAX.", "It is Zorblax, I think", "Zorblax"]
    assert grounded_override(t, said, [None, None, 0.9], weights) is None
    loose = ["I don't know.", "I don't know.", "Zorblax"]
    assert grounded_override(t, loose, [None, None, GROUNDED_MIN - 0.01], weights) is None
    assert grounded_override(t, loose, [None, None, None], weights) is None  # not a reader
    # a supporter outside the reader's cluster counts towards its confidence
    clusters = [0, 0, 0, 1, 2]
    t = tally(clusters, [1.0] * 5)
    texts = ["No idea.", "No idea.", "No idea.", "Zorblax", "zorblax, the code name"]
    g = grounded_override(t, texts, [None, None, None, 0.8, None], [1.0] * 5)
    assert g is not None and g.tally.confidence == pytest.approx(0.4)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def council_with(replies: list[str]) -> Council:
    specs = [HeadSpec(id=f"p{i}", kind="scripted") for i in range(len(replies))]
    reader = HeadSpec(id="reader", kind="tool", tool="reader")
    settings = settings_with([*specs, reader], embedder="minilm")
    heads: list[ScriptedHead | ToolHead] = [
        scripted(r, id=s.id) for r, s in zip(replies, specs, strict=True)
    ]
    heads.append(ToolHead(reader, make_context(settings)))
    return Council(settings, heads=heads)


@pytest.mark.parametrize(
    ("question", "replies", "span"),
    [
        (  # the make-run trial: five personas' clustered non-answers
            "What is the project's code name?",
            ["I'm sorry, I don't know the project's code name."] * 3
            + ["I do not know the code name of the project.", "I don't know the code name."],
            "Zorblax",
        ),
        (  # the handbook: the heads agree on a number the document does not state
            "How many days of paid holiday do employees get?",
            ["2", "2 days", "2.", "Employees get 2 days.", "20"],
            "27",
        ),
    ],
)
async def test_the_reader_wins_over_clustered_answers_without_the_span(
    embedder: Embedder, question: str, replies: list[str], span: str
) -> None:
    council = council_with(replies)
    msgs = with_context([Message("user", question)], FACTS)
    v = await council.ask(msgs, strategy="vote", recall=False, rag=False)
    assert v.answer == span
    votes = {x.head: x for x in v.votes}
    assert votes["reader"].won and not any(votes[f"p{i}"].won for i in range(len(replies)))
    assert any("outranks" in n and "read from recalled text" in n for n in v.notes), v.notes
    assert 0 < v.confidence < 0.5  # one voice: the answer stands, its certainty does not


async def test_heads_that_say_the_span_keep_their_answer(embedder: Embedder) -> None:
    replies = ["The code name is Zorblax.", "The code name is Zorblax.", "Zorblax is the name."]
    council = council_with(replies)
    msgs = with_context([Message("user", "What is the project's code name?")], FACTS)
    v = await council.ask(msgs, strategy="vote", recall=False, rag=False)
    assert "Zorblax" in v.answer
    assert not any("outranks" in n for n in v.notes)
