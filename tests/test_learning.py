"""Harvest → Agent-0 → gate → freeze on a real store, with rule-scripted heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.config import HeadSpec
from council.council import Council
from council.embeddings import Embedder
from council.errors import DatasetError
from council.learning.agent0 import parse_rewrite
from council.learning.collector import KnowledgeDistillation, Learner
from council.learning.datasets import freeze, list_datasets, load_dataset
from council.learning.harvest import harvest
from council.learning.ledger import register_holdout
from council.learning.quality import Signals, quality_score
from council.types import Completion
from tests.helpers import ScriptedHead, settings_with


class Rules(ScriptedHead):
    """Replies by the first rule whose key occurs in the last message; fails on Exceptions."""

    def __init__(self, hid: str, rules: dict[str, str | Exception], quality: float = 5.0):
        super().__init__(HeadSpec(id=hid, kind="scripted", quality=quality))
        self.rules = rules

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        text = messages[-1].content
        reply = next((r for k, r in self.rules.items() if k in text), "I do not know")
        if isinstance(reply, Exception):
            return [Completion(self.id, error=str(reply))] * n
        return [Completion(self.id, text=reply, tokens_in=3, tokens_out=3)] * n


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def council_of(tmp: Path, embedder: Embedder, *heads: Rules, **kw) -> Council:  # type: ignore[no-untyped-def]
    s = settings_with([h.spec for h in heads], memory=True, embedder="minilm", data_dir=tmp, **kw)
    return Council(s, heads=list(heads), embedder=embedder)


def test_parse_rewrite() -> None:
    assert parse_rewrite("REASONING: add them\nANSWER: 5") == ("add them", "5")
    assert parse_rewrite("**Reasoning:** x\n**Answer:** Canberra") == ("x", "Canberra")
    assert parse_rewrite("just text") == ("", "just text")


def test_quality_needs_a_real_signal() -> None:
    assert quality_score(Signals(heuristic=1.0)) <= 0.6  # heuristics alone never pass 0.7
    assert quality_score(Signals(verifier=True, heuristic=0.5)) > 0.9
    assert quality_score(Signals(verifier=False, agreement=1.0, heuristic=1.0)) < 0.5
    assert quality_score(Signals(agreement=1.0, heuristic=0.5)) == pytest.approx(0.9)


async def test_harvest_rewrites_failures_once_and_freezes(
    tmp_path: Path, embedder: Embedder
) -> None:
    rules = {
        "QUERY: What is 17 * 23?": "REASONING: 17*23 = 17*20 + 17*3 = 340 + 51.\nANSWER: 391",
        "QUERY: Capital of Australia?": "REASONING: The capital is not Sydney.\nANSWER: Canberra",
        "What is 17 * 23?": "The answer is 400.",
        "Capital of Australia?": "Sydney",
    }
    c = council_of(tmp_path, embedder, Rules("a", rules), Rules("b", rules))
    wrong = await c.ask("What is 17 * 23?", user="ana")
    assert wrong.success is False and wrong.label_source == "verifier"
    sydney = await c.ask("Capital of Australia?", user="ana")
    assert sydney.success is True  # the heads agreed...
    assert sydney.exchange_id and c.memory is not None
    c.memory.store.add_feedback(sydney.exchange_id, -1, "it is Canberra")  # ...the user disagrees

    report = await harvest(c, since="1h")
    assert report.considered == 2 and report.count("accepted") == 2, report.items
    by_q = {i.question: i for i in report.items}
    assert by_q["What is 17 * 23?"].answer == "391"
    assert by_q["Capital of Australia?"].answer == "Canberra"
    assert report.rewrite_success_rate == 1.0

    rewrite = c.memory.store.exchange(by_q["What is 17 * 23?"].rewrite_id or "")
    assert rewrite is not None and rewrite["role"] == "agent0" and rewrite["improved"]
    assert rewrite["parent_id"] == wrong.exchange_id and "ANSWER: 391" in rewrite["answer"]

    again = await harvest(c, since="1h")
    assert again.considered == 0  # idempotent

    manifest = freeze(c.memory.store, tmp_path / "datasets")
    assert manifest["examples"] == 2 and manifest["sources"] == {"harvest": 2}
    traced = {i["exchange_ids"][0] for i in manifest["items"]}
    assert traced == {wrong.exchange_id, sydney.exchange_id}
    m2, rows = load_dataset(c.memory.store, manifest["version"])
    assert m2 == manifest
    assert rows[0]["messages"][-1]["role"] == "assistant" and rows[0]["quality_score"] >= 0.7
    assert {"instruction", "output", "reasoning", "exchange_ids"} <= set(rows[0])
    text = c.metrics.render().decode()
    assert "autogen_agent0_rewrite_success_rate 1.0" in text
    assert 'autogen_harvest_total{outcome="accepted"} 2.0' in text


async def test_tool_composes_a_verified_answer_when_the_model_cannot(
    tmp_path: Path, embedder: Embedder
) -> None:
    rules = {"QUERY:": "REASONING: guess.\nANSWER: 4000", "What is": "It is 4000."}
    c = council_of(tmp_path, embedder, Rules("a", rules), Rules("b", rules))
    await c.ask("What is 123 * 45?")
    [item] = (await harvest(c, since="1h")).items
    assert item.status == "accepted" and item.answer == "5535"
    assert c.memory is not None
    rewrite = c.memory.store.exchange(item.rewrite_id or "")
    assert rewrite is not None and "calculator" in rewrite["answer"]


async def test_disagreeing_rewrites_and_leaks_are_rejected(
    tmp_path: Path, embedder: Embedder
) -> None:
    a = Rules("a", {"QUERY: Who wrote Dune?": "ANSWER: Frank Herbert", "Dune": "Tolkien"})
    b = Rules("b", {"QUERY: Who wrote Dune?": "ANSWER: Isaac Asimov", "Dune": "Tolkien"})
    c = council_of(tmp_path, embedder, a, b)
    v = await c.ask("Who wrote Dune?")
    assert c.memory is not None and v.exchange_id
    c.memory.store.add_feedback(v.exchange_id, -1)
    [item] = (await harvest(c, since="1h")).items
    assert item.status == "rejected" and "quality" in (item.reason or "")

    rules = {"QUERY:": "REASONING: 2+2 is 4.\nANSWER: 4", "What is 2 + 2": "5"}
    c2 = council_of(tmp_path / "two", embedder, Rules("a", rules), Rules("b", rules))
    register_holdout(c2.memory.store, ["What is 2 + 2?"], family="basic_arithmetic")  # type: ignore[union-attr]
    await c2.ask("What is 2 + 2?")
    [leak] = (await harvest(c2, since="1h")).items
    assert leak.status == "rejected" and "hold-out" in (leak.reason or "")


async def test_a_failing_agent0_leaves_the_exchange_for_the_next_run(
    tmp_path: Path, embedder: Embedder
) -> None:
    rules: dict[str, str | Exception] = {"QUERY:": RuntimeError("HTTP 503"), "What is": "12"}
    heads = Rules("a", rules), Rules("b", rules)
    c = council_of(tmp_path, embedder, *heads)
    await c.ask("What is 5 + 5?")
    first = await harvest(c, since="1h")
    assert [i.status for i in first.items] == ["failed"] and "503" in (first.items[0].reason or "")
    assert c.memory is not None
    assert c.memory.store.query("SELECT COUNT(*) FROM examples")[0][0] == 0
    for h in heads:
        h.rules["QUERY:"] = "REASONING: 5+5.\nANSWER: 10"
    second = await harvest(c, since="1h")
    assert [i.status for i in second.items] == ["accepted"]


def test_an_interrupted_freeze_leaves_no_version(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    learner = Learner(s, embedder=embedder)
    assert learner.collect_example("What is 2+2?", "4", 0.95, "math") is not None
    with pytest.raises(DatasetError, match="No examples"):
        freeze(learner.store, tmp_path / "ds", min_quality=0.99)

    def crash(self, target):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        freeze(learner.store, tmp_path / "ds")
    monkeypatch.undo()
    assert list_datasets(learner.store) == []
    assert not [p for p in (tmp_path / "ds").iterdir()]  # no half version, no temp folder
    manifest = freeze(learner.store, tmp_path / "ds")
    assert [d["version"] for d in list_datasets(learner.store)] == [manifest["version"]]


def test_collector_gate_stats_and_export(tmp_path: Path, embedder: Embedder) -> None:
    s = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    learner = Learner(s, embedder=embedder)
    msgs = [{"role": "user", "content": "Explain recursion briefly."}]
    first = learner.collect_example(
        msgs,
        "A function that calls itself.",
        0.92,
        "reasoning",
        models_agreed=True,
        user_feedback=5,
    )
    assert first is not None
    assert learner.collect_example(msgs, "A function that calls itself.", 0.95) is None  # dup
    assert learner.collect_example(msgs, "A function which calls itself.", 0.95) is None  # near
    assert learner.collect_example("What is 3+3?", "6", 0.5) is None  # below the bar
    assert learner.collect_example("Write a haiku", "Autumn leaves fall", 0.75, "creative")
    stats = learner.get_learning_stats()
    assert stats["total_examples"] == 2 and stats["high_quality"] == 1
    assert stats["examples_with_feedback"] == 1 and not stats["ready_for_finetuning"]
    assert stats["task_distribution"] == {"reasoning": 1, "creative": 1}
    n = learner.export_for_finetuning(tmp_path / "o.jsonl", "openai", min_quality=0.8)
    [line] = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert n == 1 and line["messages"][-1] == {
        "role": "assistant",
        "content": "A function that calls itself.",
    }
    learner.export_for_finetuning(tmp_path / "h.jsonl", "hf", min_quality=0.0)
    rows = [json.loads(x) for x in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert {r["instruction"] for r in rows} == {"Explain recursion briefly.", "Write a haiku"}


async def test_distillation_keeps_checked_and_agreed_answers(
    tmp_path: Path, embedder: Embedder
) -> None:
    rules = {"6 * 7": "42", "2 + 2": "5", "Name a colour": "Blue"}
    c = council_of(tmp_path, embedder, Rules("a", rules), Rules("b", rules))
    learner = Learner(c.settings, c.memory.store if c.memory else None, embedder)
    kept = await KnowledgeDistillation(learner).distill_from_ensemble(
        ["What is 6 * 7?", "What is 2 + 2?", "Name a colour"], c, "general"
    )
    assert len(kept) == 2  # 2 + 2 = 5 fails its check
    assert learner.get_learning_stats()["sources"] == {"distill": 2}


async def test_arbiter_decides_when_the_oracle_disagrees(
    tmp_path: Path, embedder: Embedder
) -> None:
    oracle = Rules(
        "oracle",
        {
            "PROPOSED ANSWER": "VERDICT: DISAGREE\nCONFIDENCE: 0.6\nFINAL: Canberra",
            "QUERY:": "ANSWER: Sydney",
            "Capital": "Sydney",
        },
        quality=9,
    )
    arbiter = Rules(
        "arbiter",
        {"ANSWER B": "CHOICE: B\nFINAL: Canberra", "QUERY:": "ANSWER: Sydney", "Capital": "Sydney"},
        quality=8,
    )
    c = council_of(tmp_path, embedder, oracle, arbiter, enable_oracle_refinement=True)
    v = await c.ask("Capital of Australia?")
    assert c.memory is not None and v.exchange_id
    c.memory.store.add_feedback(v.exchange_id, -1)
    [item] = (await harvest(c, since="1h")).items
    assert item.answer == "Canberra"
    lines = (tmp_path / "datasets" / "training_metadata.jsonl").read_text().splitlines()
    meta = json.loads(lines[-1])
    assert meta["final_platinum_answer"] == "Canberra" and meta["decided_by"] == "arbiter"
    assert meta["provenance"]["oracle"]["head"] == "oracle"
    assert meta["provenance"]["arbiter"]["choice"] == "B"


async def test_agent0_as_one_head_samples_it_through_the_council(
    tmp_path: Path, embedder: Embedder
) -> None:
    from council.learning.agent0 import Agent0

    a = Rules("a", {"QUERY:": "REASONING: it is Canberra.\nANSWER: Canberra"})
    c = council_of(tmp_path, embedder, a, Rules("b", {}))
    rw = await Agent0(c, agent="a", samples=3).rewrite("Capital of Australia?", "Sydney")
    assert rw.error is None and rw.answer == "Canberra" and rw.agreement == 1.0
    assert rw.samples == ["Canberra"] * 3 and a.state.calls == 3  # counted by Council.call
