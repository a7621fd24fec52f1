"""The gauntlet's traffic part and its family: held-out questions scored where they can be
checked, and no part of the gate or the canary hard-wired to basic_arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from council.adapters.deployer import probe_pool
from council.cli import app as cli
from council.errors import GauntletError
from council.learning.datasets import freeze
from council.learning.gauntlet import Item, Outcome, check_family, compare, score
from council.learning.heldout import position
from council.learning.ledger import add_example, content_hash
from council.learning.traffic import TRAFFIC, heldout_questions, score_traffic
from council.storage import open_db
from council.types import Message
from tests.helpers import write_config


def test_traffic_is_scored_by_the_verifier_or_the_correction() -> None:
    assert score_traffic("What is 17 * 23?", "", "REASONING: 340 + 51.\nANSWER: 391")
    assert not score_traffic("What is 17 * 23?", "", "It is 400.")
    assert score_traffic("Capital of Australia?", "Canberra", "REASONING: x.\nANSWER: canberra.")
    assert not score_traffic("Capital of Australia?", "Canberra", "Sydney")
    item = Item(TRAFFIC, "How much of the pie is left?", "1/2", TRAFFIC)
    assert score(item, "ANSWER: 0.5", embedder=None)


def test_held_out_questions_without_a_way_to_check_them_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    store = open_db(tmp_path / "council.db")
    rows = [("What is 12 + 30?", None), ("Capital of Australia?", "Canberra"),
            ("Write me a poem about rain", None)]  # fmt: skip
    for q, correction in rows:
        add_example(store, source="correction" if correction else "harvest",
                    exchange_ids=["ex_1"], messages=[Message("user", q)], response="ANSWER: x",
                    quality=0.9, signals={"user_correction": correction})  # fmt: skip
    add_example(store, source="harvest", exchange_ids=["ex_2"], quality=0.9, response="ANSWER: 1",
                messages=[Message("user", "A question that trains 37")])  # fmt: skip
    assert max(position(content_hash(q)) for q, _ in rows) < 0.9
    assert position(content_hash("A question that trains 37")) > 0.9
    freeze(store, tmp_path / "ds", heldout_share=0.9)  # the three rows held out, one trained
    asked, skipped = heldout_questions(store, 10)
    assert sorted(asked) == [("Capital of Australia?", "Canberra"), ("What is 12 + 30?", "")]
    assert skipped == 1
    assert len(heldout_questions(store, 1)[0]) == 1


def test_with_a_target_family_traffic_is_reported_and_the_family_decides() -> None:
    target = [Item("letter_counting", f"q{i}", "1", "target") for i in range(10)]
    traffic = [Item(TRAFFIC, f"t{i}", "", TRAFFIC) for i in range(4)]
    items = target + traffic
    champion = Outcome([False] * 10 + [True] * 4, [1.0] * 14, [""] * 14)
    challenger = Outcome([True] * 10 + [True, False, True, True], [1.0] * 14, [""] * 14)
    report = compare(items, champion, challenger, "letter_counting", ("base", "new"))
    assert report["families"][TRAFFIC]["delta_pp"] == -25.0
    assert report["verdict"] == "promote"  # `--target` benchmarks: the family is the gain set
    assert any(r.startswith("traffic: -25.0 pp on 4 held-out") for r in report["reasons"])


def test_the_family_is_a_setting_or_an_option_and_typos_say_the_fix(tmp_path: Path) -> None:
    assert check_family("letter_counting") == "letter_counting"
    with pytest.raises(GauntletError, match="Unknown reasoning-gym family 'letter_countin'"):
        check_family("letter_countin")
    families = {it.family for it in probe_pool(6, False, "letter_counting")}
    assert families == {"letter_counting", "basic_arithmetic"}  # the target and a control
    toml = write_config(tmp_path / "council.toml", [], memory=False)
    r = CliRunner().invoke(cli, ["improve", "--family", "nope", "--config", str(toml)])
    assert r.exit_code == 1 and "Unknown reasoning-gym family 'nope'" in r.output
