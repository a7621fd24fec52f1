"""Replay: past exchanges that succeeded, re-asked; the challenger must keep what the champion
got right (scored by agreement with the stored answer, normalised as the ballot does)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from council.config import Settings
from council.learning.datasets import freeze
from council.learning.gate_sets import replay_items
from council.learning.gauntlet import REPLAY, Outcome, compare, score
from council.learning.heldout import position
from council.learning.ledger import add_example, content_hash
from council.learning.rehearsal import replay_side
from council.learning.traffic import TRAFFIC
from council.memory.store import ExchangeRecord, Store
from council.storage import open_db
from council.types import Message, Verdict


def side(question: str, replay: bool = True) -> str:
    """`question`, numbered so that its hash falls on the replay side (or the rehearsal side)."""
    return next(f"{question} (#{i})" for i in range(500)
                if replay_side(content_hash(f"{question} (#{i})")) == replay)  # fmt: skip


def exchange(store: Store, i: int, q: str, answer: str, success: bool | None,
             source: str | None) -> None:  # fmt: skip
    v = Verdict(answer, [], 1.0, "vote", 1.0, 0.0, ["a"], "math")
    store.record(ExchangeRecord(f"ex{i}", "ana", [Message("user", q)], v, success=success,
                                label_source=source))  # fmt: skip


def test_replay_draws_past_successes_once_each_never_trained_or_held_out(tmp_path: Path) -> None:
    store = open_db(tmp_path / "council.db")
    peru, planet, gas = side("Capital of Peru?"), side("Largest planet?"), side("A noble gas")
    boil, rehearsed = side("Boiling point of water in C?"), side("Capital of Chile?", False)
    exchange(store, 1, peru, "ANSWER: Lima", True, "verifier")
    exchange(store, 2, peru, "ANSWER: Lima", True, "confidence")
    exchange(store, 3, planet, "ANSWER: Jupiter", True, "confidence")  # agreement
    exchange(store, 4, gas, "ANSWER: neon", None, None)
    store.add_feedback("ex4", 1)  # a 👍 makes it a success
    exchange(store, 5, side("Smallest prime?"), "ANSWER: 1", False, "verifier")  # wrong
    exchange(store, 6, boil, "ANSWER: 100", True, "verifier")
    exchange(store, 8, rehearsed, "ANSWER: Santiago", True, "verifier")  # rehearsal's half
    held = next(f"Spell word {i} backwards" for i in range(200)
                if position(content_hash(f"Spell word {i} backwards")) < 0.5
                and replay_side(content_hash(f"Spell word {i} backwards")))  # fmt: skip
    exchange(store, 7, held, "ANSWER: x", True, "verifier")
    add_example(store, source="harvest", exchange_ids=["ex7"], messages=[Message("user", held)],
                response="ANSWER: x", quality=0.9)  # fmt: skip
    for i in range(6):  # enough to freeze: the held question goes to the held-out split
        q = f"Train me {i} {'z' * i}"
        add_example(store, source="harvest", exchange_ids=["ex1"], quality=0.9,
                    messages=[Message("user", q)], response="ANSWER: 1")  # fmt: skip
    freeze(store, tmp_path / "ds", heldout_share=0.5)
    trained = {content_hash(boil)}  # as if the challenger saw it
    items = replay_items(store, 10, trained)
    assert sorted(it.question for it in items) == sorted([planet, gas, peru])
    assert {it.kind for it in items} == {REPLAY}
    assert [it.question for it in replay_items(store, 10, trained)] == [
        it.question for it in items]  # stable order  # fmt: skip
    assert len(replay_items(store, 2, trained)) == 2 and replay_items(store, 0, trained) == []


def test_the_challenger_must_keep_what_the_champion_got_right_on_replay() -> None:
    from council.learning.gauntlet import Item

    item = Item(REPLAY, "What is the capital of Peru?", "REASONING: ...\nANSWER: Lima", REPLAY)
    assert score(item, "ANSWER: lima.", embedder=None)
    assert not score(item, "ANSWER: Cusco", embedder=None)
    # 12 traffic questions fixed, but 8 of 80 replayed successes lost: rejected
    its = [Item(TRAFFIC, f"t{i}", "", TRAFFIC) for i in range(12)]
    its += [Item(REPLAY, f"r{i}", "ANSWER: 1", REPLAY) for i in range(80)]
    old = Outcome([False] * 12 + [True] * 80, [1.0] * 92, [""] * 92)
    new = Outcome([True] * 12 + [i >= 8 for i in range(80)], [1.0] * 92, [""] * 92)
    report = compare(its, old, new, TRAFFIC, ("base", "v1"))
    assert report["verdict"] == "reject"
    checks = {c["name"]: c for c in report["rule"]["checks"]}
    assert checks[TRAFFIC]["outcome"] == "pass" and checks[REPLAY]["outcome"] == "fail"
    assert checks[REPLAY]["worse"] == 8 and checks[REPLAY]["n"] == 80


def test_the_default_replay_can_decide_a_small_loss_rate_and_says_when_its_cap_cannot() -> None:
    from council.learning.gauntlet import replay_capped
    from council.learning.rule import Paired, noninferiority_check

    s = Settings().learning
    margin, cap = s.gate_margin_pp / 100, s.gate_replay
    two_percent = [noninferiority_check(REPLAY, Paired(n, 0, n // 50), margin) for n in (100, cap)]
    assert [c.outcome for c in two_percent] == ["undecided", "pass"]
    checks = [asdict(c) for c in two_percent[:1]]
    assert replay_capped(checks, 100, 100) and "COUNCIL_GATE_REPLAY" in replay_capped(
        checks, 100, 100)[0]  # fmt: skip
    assert replay_capped(checks, 300, 100) == []  # more traffic adds items: waiting decides
    assert replay_capped([asdict(two_percent[1])], cap, cap) == []


def test_canary_probe_candidates_are_users_traffic_and_replay_before_any_family(
    tmp_path: Path,
) -> None:
    from council.adapters.deployer import probe_pool

    store = open_db(tmp_path / "council.db")
    assert {it.kind for it in probe_pool(6, False, "letter_counting", store)} == {"probe"}
    exchange(store, 1, side("Largest planet?"), "ANSWER: Jupiter", True, "confidence")
    exchange(store, 2, side("Name a noble gas"), "ANSWER: neon", True, "feedback")
    qs = [f"What is {i} plus {i + 11}?" for i in range(12)]
    for i, q in enumerate(qs):
        add_example(store, source="harvest", exchange_ids=["ex1"], quality=0.9,
                    messages=[Message("user", q)], response=f"ANSWER: {2 * i + 11}")  # fmt: skip
    freeze(store, tmp_path / "ds", heldout_share=0.5)
    held = {q for q in qs if position(content_hash(q)) < 0.5}
    pool = probe_pool(6, False, "letter_counting", store)
    assert {it.kind for it in pool} == {TRAFFIC, REPLAY} and len(pool) == min(6, len(held) + 2)
    assert {it.question for it in pool if it.kind == TRAFFIC} <= held
    assert [it.kind for it in pool[:4]] == [TRAFFIC, REPLAY, TRAFFIC, REPLAY]  # alternating


async def test_the_deployer_keeps_the_replay_items_the_champion_answers(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A real local head: the probe set is what the previous champion gets right of users'
    items (here the stored answer is what the base model says, so it keeps exactly that)."""
    from council.adapters.deployer import Deployer
    from council.adapters.registry import Registry
    from council.config import Settings
    from council.council import Council
    from council.types import GenParams
    from tests.helpers import local_specs

    s = Settings(heads=local_specs(tiny_model_dir, 1), data_dir=tmp_path, memory=False,
                 canary_probes=2)  # fmt: skip
    council = Council(s)
    store = open_db(tmp_path / "council.db")
    deployer = Deployer(council, Registry(store, tmp_path), s)
    try:
        head = deployer._probe_head("core", None)
        assert head is not None
        q = side("Name a colour of the sky.")
        [said] = await head.complete([Message("user", q)],
                                     params=GenParams(temperature=0.0, max_tokens=64))  # fmt: skip
        exchange(store, 1, q, said.text, True, "feedback")
        exchange(store, 2, side("Say the word banana."), "ANSWER: zzz-not-what-it-says", True,
                 "verifier")  # fmt: skip
        probes = await deployer._prepare_probes("core", None)
    finally:
        await council.close()
    assert [(p.kind, p.question) for p in probes] == [(REPLAY, q)]
