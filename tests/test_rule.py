"""The gate's promotion rule on constructed outcomes: gain on traffic, non-inferiority of
replay and controls, and "too few items to decide" as a third outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.learning.gauntlet import Item, Outcome, compare
from council.learning.rule import (
    Paired,
    binom_cdf,
    decide,
    mcnemar_p,
    min_items_gain,
    min_items_noninferiority,
    noninferiority_p,
)
from council.learning.traffic import TRAFFIC


def outcome(correct: list[bool]) -> Outcome:
    return Outcome(correct, [10.0] * len(correct), [""] * len(correct))


def items(kind: str, family: str, n: int) -> list[Item]:
    return [Item(family, f"{family} {i}", "1", kind) for i in range(n)]


def test_the_smallest_sizes_follow_from_the_tests() -> None:
    assert min_items_gain() == 5 and mcnemar_p(5, 0) < 0.05 <= mcnemar_p(4, 0)
    need = min_items_noninferiority(0.05)
    assert need == 59
    assert noninferiority_p(0, need, 0.05) < 0.05 <= noninferiority_p(0, need - 1, 0.05)
    assert binom_cdf(1, 100, 0.05) == pytest.approx(0.0371, abs=1e-4)
    assert min_items_noninferiority(0.10) == 29  # a wider margin decides on fewer items


def test_a_significant_gain_on_traffic_with_replay_and_controls_kept_promotes() -> None:
    # traffic: 40 held-out questions, the challenger fixes 12 and breaks 2 (p ~ 0.006)
    # replay: 100 past successes, 1 lost; controls: 60 items, none lost
    its = items(TRAFFIC, TRAFFIC, 40) + items("replay", "replay", 100)
    its += items("control", "mtbench", 30) + items("control", "letter_counting", 30)
    champion = [i < 20 for i in range(40)] + [True] * 100 + [True] * 60
    challenger = [i < 18 or 20 <= i < 32 for i in range(40)] + [i != 3 for i in range(100)]
    challenger += [True] * 60
    report = compare(its, outcome(champion), outcome(challenger), TRAFFIC, ("base", "v1"))
    assert report["verdict"] == "promote", report["reasons"]
    checks = {c["name"]: c for c in report["rule"]["checks"]}
    assert checks[TRAFFIC]["outcome"] == "pass" and checks[TRAFFIC]["p"] < 0.01
    gain = checks[TRAFFIC]
    assert (gain["better"], gain["worse"], gain["n"]) == (12, 2, 40)
    assert checks["replay"]["outcome"] == "pass" and checks["replay"]["margin_pp"] == 5
    assert checks["controls"]["n"] == 60 and checks["controls"]["outcome"] == "pass"
    assert "McNemar" in report["rule"]["rule"] and "5 pp margin" in report["rule"]["rule"]
    assert report["reasons"][0].startswith("traffic: +25.0 pp on 40 items (+12/-2)")


def test_a_gain_with_a_replay_regression_is_rejected() -> None:
    its = items(TRAFFIC, TRAFFIC, 40) + items("replay", "replay", 80)
    champion = [False] * 40 + [True] * 80
    challenger = [i < 15 for i in range(40)] + [i >= 8 for i in range(80)]  # 8 of 80 lost
    report = compare(its, outcome(champion), outcome(challenger), TRAFFIC, ("base", "v1"))
    assert report["verdict"] == "reject"
    replay = next(r for r in report["reasons"] if r.startswith("replay"))
    assert "losses 8/80 vs margin 5 pp" in replay and "not shown non-inferior" in replay


def test_too_few_items_to_decide_waits() -> None:
    # every traffic question fixed, but only 4 of them: no test on 4 pairs reaches p < 0.05
    its = items(TRAFFIC, TRAFFIC, 4) + items("replay", "replay", 80)
    champion, challenger = [False] * 4 + [True] * 80, [True] * 84
    report = compare(its, outcome(champion), outcome(challenger), TRAFFIC, ("base", "v1"))
    assert report["verdict"] == "wait"
    assert "too few items to decide (the test needs at least 5)" in report["reasons"][0]
    # enough traffic, but 20 replay items cannot show non-inferiority at 5 pp either
    d = decide((TRAFFIC, Paired(40, 20, 0)), {"replay": Paired(20, 0, 0)})
    assert d.verdict == "wait" and "needs at least 59" in d.reasons[1]
    # no traffic at all: nothing to gain on, so nothing to promote
    assert decide((TRAFFIC, Paired(0, 0, 0)), {}).verdict == "wait"


def test_an_absent_set_is_not_part_of_the_decision_but_a_failed_test_rejects() -> None:
    d = decide((TRAFFIC, Paired(30, 10, 0)), {"replay": Paired(0, 0, 0)})
    assert d.verdict == "promote" and "no items in this run" in d.reasons[1]
    not_significant = decide((TRAFFIC, Paired(100, 6, 4)), {})
    assert not_significant.verdict == "reject"
    assert "not a significant gain" in not_significant.reasons[0]
    # one loss in 80 is under the margin but not yet significant: undecided, wait
    one = decide((TRAFFIC, Paired(30, 10, 0)), {"replay": Paired(80, 0, 1)})
    assert one.verdict == "wait" and "more items decide" in one.reasons[1]
    # a decided failure rejects even while another set is still too small
    assert (
        decide(
            (TRAFFIC, Paired(30, 10, 0)), {"replay": Paired(10, 0, 0), "controls": Paired(60, 0, 9)}
        ).verdict
        == "reject"
    )


def test_adapters_list_shows_the_rule_its_numbers_and_the_sample_sizes(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from council.cli import app as cli
    from council.learning.ledger import record_gauntlet_report
    from council.storage import open_db
    from tests.helpers import write_config

    data = tmp_path / "data"  # COUNCIL_DATA_DIR of the tests
    folder = data / "adapters" / "core" / "v1"
    folder.mkdir(parents=True)
    meta = {"version": "v1", "role": "core", "base_model_name": "m", "dataset_version": "ds0",
            "created_at": 1000.0, "final_loss": 0.5, "examples": 8}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    its = items(TRAFFIC, TRAFFIC, 4) + items("replay", "replay", 80)
    report = compare(its, outcome([False] * 4 + [True] * 80), outcome([True] * 84), TRAFFIC,
                     ("base", "v1"))  # fmt: skip
    record_gauntlet_report(open_db(data / "council.db"), "core", report)
    toml = write_config(tmp_path / "council.toml", [], memory=False)
    r = CliRunner().invoke(cli, ["adapters", "list", "--config", str(toml)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "v1 vs base: wait — rule: promote on a significant gain on traffic" in said
    assert "traffic: +100.0 pp on 4 items (+4/-0), McNemar p=0.0625" in said
    assert "too few items to decide (the test needs at least 5)" in said
    assert "replay: +0.0 pp on 80 items (+0/-0), losses 0/80 vs margin 5 pp" in said
    r = CliRunner().invoke(cli, ["adapters", "list", "--json", "--config", str(toml)])
    gate = json.loads(r.output)["adapters"][0]["gate"]
    assert gate["verdict"] == "wait" and gate["checks"][1]["n"] == 80


def test_replay_and_controls_are_tested_apart_each_with_its_n() -> None:
    # replay kept (0 losses in 80); controls: 1 loss in 70 and no win, an accuracy difference
    # Tango's test cannot tell from -5 pp (p = 0.085): not shown non-inferior, rejected
    its = items(TRAFFIC, TRAFFIC, 30) + items("replay", "replay", 80)
    its += items("control", "mtbench", 30) + items("control", "letter_counting", 40)
    champion = [False] * 30 + [True] * 150
    challenger = [i < 12 for i in range(30)] + [True] * 80 + [i != 60 for i in range(70)]
    report = compare(its, outcome(champion), outcome(challenger), TRAFFIC, ("base", "v1"))
    checks = {c["name"]: c for c in report["rule"]["checks"]}
    assert (checks["replay"]["n"], checks["replay"]["worse"]) == (80, 0)
    assert (checks["controls"]["n"], checks["controls"]["worse"]) == (70, 1)
    assert checks["replay"]["outcome"] == "pass" and checks["controls"]["outcome"] == "fail"
    assert checks["controls"]["test"] == "net non-inferiority"
    assert checks["controls"]["p"] == pytest.approx(0.085, abs=1e-3)
    assert report["verdict"] == "reject"
    said = " | ".join(report["reasons"])
    assert "controls · mtbench: +0.0 pp on 30 items (+0/-0; part of the controls test)" in said
    assert "controls · letter_counting: -2.5 pp on 40 items (+0/-1" in said
    assert "accuracy difference vs margin -5 pp, Tango p=0.085" in said
    # the same counts on replay are undecided (losses under the margin): the verdict waits
    swapped = decide((TRAFFIC, Paired(30, 12, 0)),
                     {"replay": Paired(70, 0, 1), "controls": Paired(80, 0, 0)})  # fmt: skip
    assert swapped.verdict == "wait" and [c.outcome for c in swapped.checks] == [
        "pass", "undecided", "pass"]  # fmt: skip


def test_wins_on_the_controls_buy_back_losses_but_not_on_replay() -> None:
    # 6 wins and 4 losses in 120: +1.7 pp. The controls (forgetting, by accuracy) pass; replay
    # ("keep what the champion got right") is undecided: 4 losses are under 5 % of 120 but
    # not significantly (binomial p = 0.26)
    d = decide((TRAFFIC, Paired(40, 14, 1)),
               {"replay": Paired(120, 6, 4), "controls": Paired(120, 6, 4)})  # fmt: skip
    assert [c.outcome for c in d.checks] == ["pass", "undecided", "pass"] and d.verdict == "wait"
    # the first letter-counting cycle with rehearsal: -5 pp on 60 controls (+6/-9), 10 pp margin
    real = decide(
        (TRAFFIC, Paired(56, 11, 2)),
        {"replay": Paired(53, 21, 0), "controls": Paired(60, 6, 9)},
        margin=0.10,
    )
    assert real.verdict == "reject" and real.checks[2].p == pytest.approx(0.221, abs=1e-3)


def test_tangos_test_holds_its_size_at_the_margin() -> None:
    """Drawn at the null's edge (the challenger exactly 10 pp worse), it says "non-inferior"
    about 5 % of the time; with no difference at all (20 % of 200 items flipping, half each
    way) about 94 % of the time, as theory says."""
    import random

    from council.learning.rule import min_items_net, tango_p

    rng = random.Random(7)

    def rate(p_better: float, p_worse: float, n: int, runs: int = 2000) -> float:
        hits = 0
        for _ in range(runs):
            draws = [rng.random() for _ in range(n)]
            better = sum(u < p_better for u in draws)
            worse = sum(p_better <= u < p_better + p_worse for u in draws)
            hits += tango_p(better, worse, n, 0.10) < 0.05
        return hits / runs

    assert rate(0.05, 0.15, 100) < 0.07  # the test's size: about alpha, not more
    assert rate(0.10, 0.10, 200) > 0.9  # its power when nothing changed
    assert min_items_net(0.10) == 25 and tango_p(0, 0, 25, 0.10) < 0.05 <= tango_p(0, 0, 24, 0.10)


def test_a_challenger_that_mostly_gives_the_commonest_gold_answer_is_flagged() -> None:
    """A letter-counting adapter that learned to say "1": it gains, and the report says that
    always answering "1" scores nearly as much; a challenger with varied answers is not
    flagged, though it gives "1" as often as the gold does."""
    golds = ["1"] * 24 + ["2"] * 10 + ["3"] * 6  # "1" is 60 % of the corrections
    its = [Item(TRAFFIC, f"count {i}", g, TRAFFIC) for i, g in enumerate(golds)]
    its += items("replay", "replay", 80)
    champion = [i % 4 == 0 for i in range(40)] + [True] * 80  # 10/40 right
    says_one = ["The letter appears 1 time."] * 40 + [""] * 80
    right = [g == "1" for g in golds] + [True] * 80  # 24/40 right: every "1"
    report = compare(its, outcome(champion), Outcome(right, [10.0] * 120, says_one), TRAFFIC,
                     ("base", "v1"))  # fmt: skip
    assert report["verdict"] == "promote", report["reasons"]  # the gain is real on this traffic
    assert report["families"][TRAFFIC]["commonest"] == {
        "gold": {"answer": "1", "share": 0.6},
        "challenger": {"answer": "1", "share": 1.0},
    }
    [flag] = [r for r in report["reasons"] if "always answering" in r]
    assert flag == (
        "traffic: the challenger answers '1' to 100% of the items; always answering '1' would "
        "score 60% here, against its 60%: its gain may be the family's commonest answer "
        "rather than skill"
    )
    varied = [f"The letter appears {g} times." for g in golds] + [""] * 80
    report = compare(its, outcome(champion), Outcome([True] * 120, [10.0] * 120, varied),
                     TRAFFIC, ("base", "v1"))  # fmt: skip
    assert report["verdict"] == "promote"
    assert not [r for r in report["reasons"] if "always answering" in r]
