"""Rehearsal: past successes and the base's own general answers mixed into training, kept
apart from what the gate re-asks (replay, held-out traffic, the MT-Bench controls)."""

from __future__ import annotations

import json
from pathlib import Path

from council.config import Settings
from council.learning.datasets import freeze
from council.learning.gate_sets import replay_items
from council.learning.gauntlet import mtbench_items
from council.learning.ledger import add_example, content_hash, heldout_hashes
from council.learning.rehearsal import (
    _whole_sentences,
    general_prompts,
    past_successes,
    replay_side,
)
from council.learning.train import TrainConfig, train_adapter
from council.memory.store import ExchangeRecord, Store
from council.storage import open_db
from council.types import Message, Verdict
from tests.helpers import local_specs


def success(store: Store, i: int, q: str, answer: str) -> None:
    v = Verdict(answer, [], 1.0, "vote", 1.0, 0.0, ["a"], "math")
    store.record(ExchangeRecord(f"ex{i}", "ana", [Message("user", q)], v, success=True,
                                label_source="verifier"))  # fmt: skip


def test_past_successes_split_between_rehearsal_and_replay(tmp_path: Path) -> None:
    store = open_db(tmp_path / "council.db")
    questions = [f"What is {i} times {i + 3}?" for i in range(40)]
    for i, q in enumerate(questions):
        success(store, i, q, f"ANSWER: {i * (i + 3)}")
    for i in range(6):  # a frozen dataset that holds some of them out
        add_example(store, source="harvest", exchange_ids=[f"ex{i}"], quality=0.9,
                    messages=[Message("user", questions[i])], response="ANSWER: 0")  # fmt: skip
    freeze(store, tmp_path / "ds", heldout_share=0.5)
    held = heldout_hashes(store)
    assert held  # some of the six went to the held-out split
    skip = {content_hash(questions[-1])}
    rehearsed = {content_hash(e["prompt"][0]["content"]) for e in past_successes(store, 99, skip)}
    replayed = {content_hash(it.question) for it in replay_items(store, 99, set())}
    assert rehearsed and replayed and not rehearsed & replayed  # the gate never re-asks them
    assert not (rehearsed | replayed) & held and not rehearsed & skip
    assert all(not replay_side(d) for d in rehearsed) and all(replay_side(d) for d in replayed)
    everything = {content_hash(q) for q in questions}
    assert rehearsed | replayed | held | skip == everything  # nothing else is lost
    assert len(past_successes(store, 2, skip)) == 2 and past_successes(store, 0, skip) == []


def test_general_prompts_never_hold_the_gates_controls() -> None:
    general = general_prompts()
    controls = {it.question for it in mtbench_items(1000)}
    assert len(general) >= 40 and controls and not set(general) & controls


def test_an_answer_cut_by_its_budget_keeps_whole_sentences() -> None:
    assert _whole_sentences("Paris is big. It has a river and") == "Paris is big."
    assert _whole_sentences("One.\nTwo and") == "One."
    assert _whole_sentences("no full stop anywhere") == ""


def test_training_rehearses_successes_and_records_it(tmp_path: Path,
                                                     tiny_model_dir: Path) -> None:  # fmt: skip
    s = Settings(heads=local_specs(tiny_model_dir, 2), data_dir=tmp_path, memory=False,
                 rehearsal=1.0)  # fmt: skip
    store = open_db(tmp_path / "council.db")
    mine = [f"Spell {w} backwards (#{i})" for i, w in enumerate(["cat", "dog", "owl"] * 30)]
    mine = [q for q in mine if not replay_side(content_hash(q))][:3]
    for i, q in enumerate(mine):
        success(store, i, q, "ANSWER: tac")
    for i in range(6):
        add_example(store, source="harvest", exchange_ids=["ex0"], quality=0.9,
                    messages=[Message("user", f"What is {i} plus {i + 7}?")],
                    response=f"ANSWER: {2 * i + 7}")  # fmt: skip
    version = freeze(store, tmp_path / "ds")["version"]
    meta = train_adapter(s, store, version, config=TrainConfig(rank=4, alpha=8, max_steps=1))
    on_disk = json.loads((Path(meta["path"]) / "meta.json").read_text())
    counts = on_disk["rehearsal"]
    assert counts["successes"] == 3 and 0 <= counts["general"] <= 3
    assert on_disk["examples"] == 6 + counts["successes"] + counts["general"]
    off = Settings(heads=local_specs(tiny_model_dir, 2), data_dir=tmp_path, memory=False,
                   rehearsal=0.0)  # fmt: skip
    meta = train_adapter(off, store, version, config=TrainConfig(rank=4, alpha=8, max_steps=1))
    assert meta["rehearsal"] == {"successes": 0, "general": 0} and meta["examples"] == 6
