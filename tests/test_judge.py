"""The gauntlet's blind pairwise judge: both orders, ties counted, and its verdicts become the
paired outcomes the gate's rule tests (a scripted judge head at the edge)."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.catalogue import HeadSpec
from council.errors import GauntletError
from council.learning.datasets import freeze
from council.learning.gate_sets import JUDGE, gain_set, judge_traffic
from council.learning.gauntlet import Outcome, compare
from council.learning.heldout import position
from council.learning.judge import judge_pair, judge_spec, read_pick
from council.learning.ledger import add_example, content_hash
from council.learning.traffic import TRAFFIC
from council.storage import open_db
from council.types import Message
from tests.helpers import scripted, settings_with


def test_the_judge_reads_a_pick_a_tie_or_nothing() -> None:
    assert read_pick("BEST: A") == 0 and read_pick("best: b.") == 1
    assert read_pick("TIE") is None and read_pick("It's a tie.") is None
    assert read_pick("I cannot say") is None


async def test_both_orders_decide_and_position_bias_is_a_tie() -> None:
    # straight order shows (champion, challenger), the swapped one (challenger, champion)
    judge = scripted("BEST: B", "BEST: A",  # challenger both times
                     "BEST: A", "BEST: A",  # always the first shown: position bias
                     "BEST: A", "TIE",  # champion once, a tie once
                     "TIE", "TIE", id="judge")  # fmt: skip
    got = [await judge_pair(judge, "Name a colour", "red", "blue") for _ in range(4)]
    assert got == ["challenger", "tie", "champion", "tie"]
    shown = judge.seen[0][1].content
    assert "Response A:\nred" in shown and "Response B:\nblue" in shown
    assert "Response A:\nblue" in judge.seen[1][1].content  # the other order
    assert "champion" not in shown and "challenger" not in shown  # blind


def test_the_judge_is_the_setting_else_the_best_local_head_else_none() -> None:
    small, big = HeadSpec(id="small", quality=4.0), HeadSpec(id="big", quality=7.0)
    cloud = HeadSpec(id="cloud", kind="openai", quality=9.0, model="gpt-4o-mini")
    assert judge_spec(settings_with([small, big, cloud])).id == "big"  # type: ignore[union-attr]
    assert judge_spec(settings_with([cloud], judge_head="cloud")).id == "cloud"  # type: ignore[union-attr]
    assert judge_spec(settings_with([cloud])) is None  # no local head: skip, as before
    with pytest.raises(GauntletError, match="judge_head 'nope' is not a configured head"):
        judge_spec(settings_with([small], judge_head="nope"))


async def test_judged_questions_join_the_gain_set_and_the_rule(tmp_path: Path) -> None:
    store = open_db(tmp_path / "council.db")
    poems = [f"Write a short poem about the colour number {i}" for i in range(60)]
    held = [q for q in poems if position(content_hash(q)) < 0.5]
    for q in poems:
        add_example(store, source="harvest", exchange_ids=["ex_1"], messages=[Message("user", q)],
                    response="ANSWER: a poem", quality=0.9)  # fmt: skip
    freeze(store, tmp_path / "ds", heldout_share=0.5)
    assert len(held) >= 12
    name, skipped_items, left = gain_set(store, None, 100, judged=False)
    assert (name, skipped_items, left) == ("", [], len(held))  # no judge: fallback family
    name, items, left = gain_set(store, None, 12, judged=True)
    assert name == TRAFFIC and len(items) == 12 and {it.entry for it in items} == {JUDGE}
    assert left == len(held) - 12  # the rest stay counted as unscored
    n = len(items)
    champion = Outcome([False] * n, [1.0] * n, ["old"] * n)
    challenger = Outcome([False] * n, [1.0] * n, ["new"] * n)
    # the judge prefers the challenger on 9 items (both orders), ties on 3
    judge = scripted(*["BEST: B", "BEST: A"] * 9, *["TIE", "TIE"] * 3, id="big")
    counts = await judge_traffic(judge, "big", items, champion, challenger)
    assert counts == {"judge": "big", "n": 12, "challenger": 9, "champion": 0, "ties": 3}
    report = compare(items, champion, challenger, TRAFFIC, ("base", "v1"))
    gain = report["rule"]["checks"][0]
    assert (gain["better"], gain["worse"], gain["outcome"]) == (9, 0, "pass")
    assert report["verdict"] == "promote"  # no replay, no controls in this run: absent
