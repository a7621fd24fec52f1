"""Held-out traffic: a stable share of users' questions, chosen by hash at freeze, is never
trained on by that version or any later one (real SQLite store, real dataset files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.config import Settings
from council.errors import DatasetError
from council.learning.cycle import Cycle
from council.learning.datasets import freeze, load_dataset, load_heldout
from council.learning.heldout import position
from council.learning.ledger import add_example, content_hash, heldout_hashes, heldout_rows
from council.memory.store import Store
from council.storage import open_db
from council.types import Message


def ask(store: Store, question: str, answer: str, source: str = "harvest", **signals: str) -> None:
    add_example(store, source=source, exchange_ids=["ex_1"], messages=[Message("user", question)],
                response=f"REASONING: think.\nANSWER: {answer}", quality=0.9,
                signals=signals)  # fmt: skip


def questions(rows: list[dict]) -> set[str]:  # type: ignore[type-arg]
    return {r["instruction"] for r in rows}


def chosen(qs: list[str], share: float) -> set[str]:
    return {q for q in qs if position(content_hash(q)) < share}


@pytest.fixture
def store(store_where: Path | str) -> Store:
    """The ledger's store on SQLite, then on Postgres."""
    return open_db(store_where)


def test_a_stable_share_is_held_out_and_stays_out_in_later_versions(
    store: Store, tmp_path: Path
) -> None:
    first = [f"How many letters are in the word number {i}?" for i in range(40)]
    for i, q in enumerate(first):
        ask(store, q, str(i))
    v1 = freeze(store, tmp_path / "ds", heldout_share=0.2)

    held = chosen(first, 0.2)
    assert 3 <= len(held) <= 15  # about a fifth of 40
    splits = v1["splits"]
    assert splits["train"] == {**splits["train"], "file": "train.jsonl", "examples": 40 - len(held)}
    assert splits["heldout"]["file"] == "heldout.jsonl" and splits["heldout"]["share"] == 0.2
    assert splits["heldout"]["examples"] == len(held) and v1["examples"] == 40 - len(held)
    assert len(v1["heldout_items"]) == len(held) and len(v1["items"]) == 40 - len(held)
    _, train = load_dataset(store, v1["version"])
    assert questions(train) == set(first) - held
    assert questions(load_heldout(store, v1["version"])) == held
    assert {r["question"] for r in heldout_rows(store, v1["version"])} == held  # persisted

    # Later traffic: new questions, and a held-out question asked again with a new answer.
    again = sorted(held)[0]
    later = [f"Count the vowels in sample {i}" for i in range(30)]
    for i, q in enumerate(later):
        ask(store, q, str(i))
    ask(store, again, "a different answer", source="correction", user_correction="7")
    v2 = freeze(store, tmp_path / "ds", heldout_share=0.2)
    _, train2 = load_dataset(store, v2["version"])
    held2 = questions(load_heldout(store, v2["version"]))
    assert held2 == held | chosen(later, 0.2)  # the same questions, by hash, in every version
    assert again not in questions(train2) and not held & questions(train2)
    assert v2["splits"]["heldout"]["held_out_earlier"] == len(held) + 1  # with the re-ask
    assert v2["splits"]["heldout"]["sources"] == {"harvest": len(held2), "correction": 1}
    first_version = {r["question"]: r["dataset_version"] for r in heldout_rows(store)}
    assert {first_version[q] for q in held} == {v1["version"]}  # kept from its first version

    # A later version frozen with no share at all still never trains on them.
    ask(store, "One more question", "1")
    v3 = freeze(store, tmp_path / "ds", heldout_share=0.0)
    _, train3 = load_dataset(store, v3["version"])
    assert not held2 & questions(train3) and len(train3) == v3["examples"]
    assert heldout_hashes(store) == {content_hash(q) for q in held2}


def test_training_reads_of_an_older_version_skip_questions_held_out_since(
    store: Store, tmp_path: Path
) -> None:
    qs = [f"Spell the word {i} backwards" for i in range(20)]
    for i, q in enumerate(qs):
        ask(store, q, str(i))
    old = freeze(store, tmp_path / "ds", heldout_share=0.0)  # before held-out traffic
    assert old["examples"] == 20 and load_heldout(store, old["version"]) == []
    new = freeze(store, tmp_path / "ds", heldout_share=0.5)
    held = questions(load_heldout(store, new["version"]))
    assert held == chosen(qs, 0.5) and held
    manifest, rows = load_dataset(store, old["version"])  # its file is intact (hash checked)
    assert manifest["examples"] == 20 and questions(rows) == set(qs) - held


def test_a_dataset_all_held_out_is_refused_with_the_fix(store: Store, tmp_path: Path) -> None:
    q = next(f"Reverse {i}" for i in range(100) if position(content_hash(f"Reverse {i}")) < 0.1)
    ask(store, q, "x")
    with pytest.raises(DatasetError, match="wait for more traffic"):
        freeze(store, tmp_path / "ds", heldout_share=0.1)
    assert not list((tmp_path / "ds").glob("ds-*")) and heldout_hashes(store) == set()


def test_the_manifest_on_disk_names_both_splits(store: Store, tmp_path: Path) -> None:
    for i in range(10):
        ask(store, f"Sort the letters of {i}", str(i))
    m = freeze(store, tmp_path / "ds", heldout_share=0.3)
    folder = tmp_path / "ds" / m["version"]
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == m and set(on_disk["splits"]) == {"train", "heldout"}
    lines = (folder / "heldout.jsonl").read_text().splitlines()
    assert len(lines) == m["splits"]["heldout"]["examples"]


def test_the_cycle_waits_when_holding_out_leaves_too_few_to_train(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, min_failures_to_train=5, heldout_share=0.5)
    store = open_db(tmp_path / "council.db")
    qs = [f"Name the day after day {i}" for i in range(6)]
    for i, q in enumerate(qs):
        ask(store, q, str(i))
    held = chosen(qs, 0.5)
    assert 6 - len(held) < 5, "pick questions so that training would be short"
    cycle = Cycle(s, store, on_line=lambda _: None)
    said = cycle.freeze()
    assert "no training tonight" in said and "held out" in said and "dataset" not in cycle.result
    assert cycle._untrained_dataset() is None  # not resumed as if a cycle had died


def test_cli_freeze_holds_out_the_configured_share(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from council.cli import app as cli
    from tests.helpers import write_config

    store = open_db(tmp_path / "data" / "council.db")  # COUNCIL_DATA_DIR of the tests
    qs = [f"Which letter comes after letter {i}?" for i in range(10)]
    for i, q in enumerate(qs):
        ask(store, q, str(i))
    toml = write_config(tmp_path / "council.toml", [], memory=False, heldout_share=0.5)
    r = CliRunner().invoke(cli, ["dataset", "freeze", "--config", str(toml)])
    assert r.exit_code == 0, r.output
    held = len(chosen(qs, 0.5))
    said = " ".join(r.output.split())
    assert f"{10 - held} examples to train on, {held} held out" in said


def test_judged_on_traffic_the_cycle_waits_for_enough_held_out_questions(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, min_failures_to_train=5, heldout_share=0.2)
    store = open_db(tmp_path / "council.db")
    qs = [f"What is {i} plus {i + 11}?" for i in range(12)]
    for i, q in enumerate(qs):
        ask(store, q, str(2 * i + 11))
    held = chosen(qs, 0.2)
    assert 0 < len(held) < 5 and 12 - len(held) >= 5, "pick questions that train but can't judge"
    cycle = Cycle(s, store, on_line=lambda _: None)  # no family: the gate judges on traffic
    said = cycle.freeze()
    assert f"{len(held)} held-out questions the gate can score" in said
    assert "< 5, the fewest on which its test can decide" in said and "waiting for more" in said
    assert cycle.result["stop"] in said  # train and gauntlet are skipped
    benchmark = Cycle(s, store, family="basic_arithmetic", on_line=lambda _: None)
    assert benchmark._enough_traffic() == ""  # a --family benchmark does not wait for traffic
