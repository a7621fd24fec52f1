"""Corrections: a 👎 that carries the right answer, through the API and the CLI, and learnt
as gold by the harvest (real store, real embedder; scripted heads at the edge)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from council.cli import app as cli
from council.config import HeadSpec
from council.council import Council
from council.embeddings import Embedder
from council.learning.datasets import freeze
from council.learning.harvest import harvest
from council.learning.ledger import examples
from council.learning.quality import agrees
from council.memory.corrections import CORRECTION_MAX_CHARS
from council.server import create_app
from council.storage import open_store
from council.types import Completion
from tests.helpers import ScriptedHead, settings_with, write_config


class Rules(ScriptedHead):
    """Replies by the first rule whose key occurs in the last message."""

    def __init__(self, hid: str, rules: dict[str, str]):
        super().__init__(HeadSpec(id=hid, kind="scripted", quality=5.0))
        self.rules = rules

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        text = messages[-1].content
        reply = next((r for k, r in self.rules.items() if k in text), "I do not know")
        return [Completion(self.id, text=reply, tokens_in=3, tokens_out=3)] * n


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def council_of(tmp: Path, embedder: Embedder, rules: dict[str, str]) -> Council:
    heads = [Rules("a", rules), Rules("b", rules)]
    s = settings_with([h.spec for h in heads], memory=True, embedder="minilm", data_dir=tmp)
    return Council(s, heads=list(heads), embedder=embedder)


def test_answers_agree_as_the_ballot_normalises_them() -> None:
    assert agrees("0.5", "1/2") and agrees("(B)", "B") and agrees("Canberra.", "canberra")
    assert agrees("The answer is 391", "391")
    assert not agrees("Sydney", "Canberra") and not agrees("390", "391")


def test_feedback_api_keeps_a_correction_and_refuses_it_without_a_bad_rating(
    tmp_path: Path, embedder: Embedder
) -> None:
    c = council_of(tmp_path, embedder, {"Australia": "Sydney"})
    with TestClient(create_app(c.settings, c)) as client:
        eid = client.post("/vote", json={"prompt": "Capital of Australia?"}).json()["meta"][
            "exchange_id"
        ]
        refused = [
            ({"rating": 1, "correction": "Canberra"}, "rating -1"),
            ({"rating": -1, "correction": "   "}, "empty"),
            ({"rating": -1, "correction": "x" * (CORRECTION_MAX_CHARS + 1)}, "under"),
        ]
        for body, says in refused:
            r = client.post("/api/feedback", json={"exchange_id": eid, **body})
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["param"] == "correction" and says in error["message"]
        assert client.get(f"/api/exchanges/{eid}").json()["feedback"] == []  # nothing stored

        r = client.post(
            "/api/feedback", json={"exchange_id": eid, "rating": -1, "correction": " Canberra "}
        )
        assert r.status_code == 200 and r.json()["success"] is False
        ex = client.get(f"/api/exchanges/{eid}").json()
        assert ex["success"] is False and ex["feedback"][0]["correction"] == "Canberra"
        r = client.post(
            "/api/feedback", json={"exchange_id": "ex_nope", "rating": -1, "correction": "x"}
        )
        assert r.status_code == 404


async def test_cli_feedback_down_with_a_correction(tmp_path: Path, embedder: Embedder) -> None:
    c = council_of(tmp_path / "data", embedder, {"17 * 23": "400"})  # COUNCIL_DATA_DIR's
    eid = (await c.ask("What is 17 * 23?")).exchange_id
    assert eid is not None
    toml = write_config(tmp_path / "council.toml", [], memory=False)
    runner = CliRunner()
    r = runner.invoke(cli, ["feedback", eid, "up", "--correction", "391", "--config", str(toml)])
    assert r.exit_code == 1 and "rating -1" in r.output
    r = runner.invoke(cli, ["feedback", eid, "down", "--correction", "391", "--config", str(toml)])
    assert r.exit_code == 0, r.output
    assert "with a correction" in " ".join(r.output.split())  # rich wraps long lines
    ex = open_store(c.settings).exchange(eid)
    assert ex is not None and [f["correction"] for f in ex["feedback"]] == ["391"]


async def test_a_corrected_exchange_is_rewritten_towards_the_correction(
    tmp_path: Path, embedder: Embedder
) -> None:
    rules = {
        # Agent-0 is told the right answer: the rule fires only when the prompt carries it.
        "The user said the right answer is: Canberra":
            "REASONING: Sydney is the largest city; the capital is Canberra.\nANSWER: Canberra.",
        "The user said the right answer is: 1/2":
            "REASONING: Two of four slices are left, two quarters.\nANSWER: 0.5",
        "QUERY: Who wrote Dune?": "REASONING: I am sure.\nANSWER: Isaac Asimov",
        "Capital of Australia?": "Sydney",
        "How much of the pie is left?": "a quarter",
        "Who wrote Dune?": "Tolkien",
    }  # fmt: skip
    c = council_of(tmp_path, embedder, rules)
    assert c.memory is not None
    store = c.memory.store
    for question, correction in [
        ("Capital of Australia?", "Canberra"),
        ("How much of the pie is left?", "1/2"),
        ("Who wrote Dune?", "Frank Herbert"),
    ]:
        v = await c.ask(question)
        assert v.success is True and v.exchange_id  # the heads agreed, but they were wrong
        store.add_feedback(v.exchange_id, -1, "wrong", correction)

    report = await harvest(c, since="1h")
    by_q = {i.question: i for i in report.items}
    assert by_q["Capital of Australia?"].status == "accepted", by_q
    assert by_q["How much of the pie is left?"].status == "accepted"  # 0.5 is 1/2
    # Agent-0 missed this correction: the example is written from the correction itself.
    dune = by_q["Who wrote Dune?"]
    assert dune.status == "accepted" and dune.answer == "Frank Herbert"
    assert "'Isaac Asimov' missed the correction" in (dune.reason or "")

    kept = {e["messages"][-1]["content"]: e for e in examples(store)}
    assert set(kept) == {"Capital of Australia?", "How much of the pie is left?", "Who wrote Dune?"}
    capital = kept["Capital of Australia?"]
    assert capital["source"] == "correction" and capital["response"].endswith("ANSWER: Canberra.")
    assert capital["signals"]["from_correction"] is True
    assert capital["signals"]["user_correction"] == "Canberra"
    assert capital["signals"]["correction"] is True
    assert capital["signals"]["rewrite_missed"] is False
    written = kept["Who wrote Dune?"]
    assert written["source"] == "correction" and written["response"] == "ANSWER: Frank Herbert"
    assert written["signals"]["rewrite_missed"] is True and written["signals"]["correction"]
    assert written["signals"]["missed_answer"] == "Isaac Asimov"
    assert written["reasoning"] == "" and "Asimov" not in written["response"]
    manifest = freeze(store, tmp_path / "datasets")
    assert manifest["sources"] == {"correction": 3}


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
async def test_a_late_correction_reaches_the_next_dataset_without_a_duplicate(
    tmp_path: Path, embedder: Embedder
) -> None:
    """👎 without a correction → harvested (Agent-0 keeps the wrong answer) → frozen; then the
    user says what it should have been: the next harvest redoes that exchange towards the
    correction, its example replaces the first (never two), the next version trains on it,
    and a held-out copy of a question gets the correction as its gold."""
    from council.learning.heldout import position
    from council.learning.ledger import content_hash, heldout_rows

    rules = {
        "The user said the right answer is: Canberra":
            "REASONING: Sydney is the largest city; the capital is Canberra.\nANSWER: Canberra.",
        "The user said the right answer is: Frank Herbert":
            "REASONING: Dune (1965) is Frank Herbert's novel.\nANSWER: Frank Herbert",
        "QUERY: Capital of Australia?": "REASONING: The largest city.\nANSWER: Sydney",
        "QUERY: Who wrote Dune?": "REASONING: A famous author.\nANSWER: Isaac Asimov",
        "Capital of Australia?": "Sydney",
        "Who wrote Dune?": "Tolkien",
    }  # fmt: skip
    c = council_of(tmp_path, embedder, rules)
    assert c.memory is not None
    store = c.memory.store
    asked = {}
    for question in ("Capital of Australia?", "Who wrote Dune?"):
        v = await c.ask(question)
        assert v.exchange_id
        store.add_feedback(v.exchange_id, -1, "wrong")  # no correction yet
        asked[question] = v.exchange_id
    first = await harvest(c, since="1h")
    assert [i.status for i in first.items] == ["accepted", "accepted"], first.items
    before = {e["messages"][-1]["content"]: e for e in examples(store)}
    assert before["Capital of Australia?"]["response"].endswith("ANSWER: Sydney")
    # hold out the question whose hash falls lower; the other one is trained on
    pos = {q: position(content_hash(q)) for q in asked}
    held, trained = sorted(asked, key=pos.__getitem__)
    v1 = freeze(store, tmp_path / "datasets", heldout_share=(pos[held] + pos[trained]) / 2)
    assert (v1["examples"], v1["splits"]["heldout"]["examples"]) == (1, 1)
    assert (await harvest(c, since="1h")).considered == 0  # nothing new: nothing redone

    store.add_feedback(asked["Capital of Australia?"], -1, "late", "Canberra")
    store.add_feedback(asked["Who wrote Dune?"], -1, "late", "Frank Herbert")
    late = await harvest(c, since="1h")
    assert sorted(i.status for i in late.items) == ["accepted", "accepted"], late.items
    after = examples(store)
    assert len(after) == 2  # replaced, not duplicated
    by_q = {e["messages"][-1]["content"]: e for e in after}
    assert by_q["Capital of Australia?"]["response"].endswith("ANSWER: Canberra.")
    assert by_q["Who wrote Dune?"]["response"].endswith("ANSWER: Frank Herbert")
    for q, e in by_q.items():
        assert e["source"] == "correction" and e["exchange_ids"][0] == asked[q]
    assert (await harvest(c, since="1h")).considered == 0  # the same correction: done

    v2 = freeze(store, tmp_path / "datasets")
    assert v2["examples"] == 1 and v2["sources"] == {"correction": 1}
    assert v2["splits"]["heldout"]["held_out_earlier"] == 1  # still never trained on
    line = (tmp_path / "datasets" / v2["version"] / "train.jsonl").read_text()
    gold = {"Capital of Australia?": "Canberra", "Who wrote Dune?": "Frank Herbert"}
    assert trained in line and gold[trained] in line and held not in line
    [kept_out] = heldout_rows(store)
    assert kept_out["question"] == held and kept_out["correction"] == gold[held]


async def test_every_correction_yields_one_example_when_the_rewriter_always_misses(
    tmp_path: Path, embedder: Embedder
) -> None:
    """A rewriter too small to reach any correction: each corrected exchange still gives one
    example, its answer the correction verbatim (the family's own format, not normalised)."""
    rules = {"QUERY:": "REASONING: I think so.\nANSWER: 7", "Sort": "3, 2, 1", "count": "5"}
    c = council_of(tmp_path, embedder, rules)
    assert c.memory is not None
    store = c.memory.store
    asked = {
        "Sort these numbers in descending order: 1, 3, 2": "['3', '2', '1']",
        "Sort these numbers in descending order: 9, 4, 8": "['9', '8', '4']",
        'How many times does the letter "a" appear in "banana"? count': "3",
    }
    for question, gold in asked.items():
        v = await c.ask(question)
        assert v.exchange_id
        store.add_feedback(v.exchange_id, -1, "wrong", gold)
    report = await harvest(c, since="1h")
    assert [i.status for i in report.items] == ["accepted"] * 3, report.items
    kept = {e["messages"][-1]["content"]: e for e in examples(store)}
    assert {q: e["response"] for q, e in kept.items()} == {
        q: f"ANSWER: {gold}" for q, gold in asked.items()
    }
    for e in kept.values():
        assert e["source"] == "correction" and e["signals"]["rewrite_missed"] is True
        assert e["signals"]["missed_answer"] == "7" and e["quality"] >= 0.7
    assert (await harvest(c, since="1h")).considered == 0  # done once, not again
