"""Head weights learned from outcomes: they start from the catalogue prior, move with
verified, thumbs up/down and corrected outcomes (never with mere agreement), and `weighted`
and the tie-breaks of `vote` follow them; `council map` shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from council.ballot.vote import tally
from council.cli import app as cli
from council.config import HeadSpec, Settings
from council.council import Council
from council.memory.store import ExchangeRecord
from council.routing import cognitive_map
from council.routing.cognitive_map import WEIGHT_PRIOR_TRIALS, learned_weight
from council.storage import open_store
from council.types import Message, Verdict, Vote
from tests.helpers import ScriptedHead, scripted, settings_with, write_config


def test_a_weight_starts_at_the_prior_and_moves_with_outcomes() -> None:
    assert learned_weight(6.0, 0, 0) == 6.0  # no outcomes: the catalogue's quality
    right = [learned_weight(5.0, n, n) for n in (1, 5, 20, 200)]
    wrong = [learned_weight(5.0, 0, n) for n in (1, 5, 20, 200)]
    assert right == sorted(right) and all(w > 5.0 for w in right)  # rises with each success
    assert wrong == sorted(wrong, reverse=True) and all(w < 5.0 for w in wrong)
    assert right[-1] > 9.5 and wrong[-1] < 0.5  # many outcomes: ten times the accuracy
    # a few outcomes move it only part of the way: shrunk towards the prior
    k = WEIGHT_PRIOR_TRIALS
    assert learned_weight(5.0, 2, 2) == pytest.approx(10 * (2 + k * 0.5) / (2 + k), abs=1e-4)


def test_tally_breaks_ties_by_trust_then_catalogue_order() -> None:
    assert tally([0, 1], [1.0, 1.0]).winner == 0
    assert tally([0, 1], [1.0, 1.0], trust=[4.0, 7.0]).winner == 1
    assert tally([0, 1], [1.0, 1.0], trust=[7.0, 7.0]).winner == 0
    assert tally([0, 0, 1], [1.0, 1.0, 1.0], trust=[1.0, 1.0, 9.0]).winner == 0  # count first


def vote(head: str, answer: str, cluster: int, won: bool) -> Vote:
    return Vote(head, answer, answer, cluster, 1.0, 1.0, won=won)


def record(store, ex_id: str, question: str, votes: list[Vote], **kw) -> None:  # type: ignore[no-untyped-def]
    winner = next(v.answer for v in votes if v.won)
    verdict = Verdict(winner, votes, 0.5, "vote", 1.0, 0.0, [v.head for v in votes], "math")
    store.record(ExchangeRecord(ex_id, "ana", [Message("user", question)], verdict, **kw))


def heads() -> tuple[ScriptedHead, ScriptedHead]:
    return scripted(id="first", quality=5.0), scripted(id="second", quality=5.0)


def settings_for(*hs: ScriptedHead) -> Settings:
    return settings_with([h.spec for h in hs])


def weights(settings: Settings) -> dict[str, dict[str, float]]:
    store = open_store(settings)
    data = cognitive_map.write(settings.server.data_dir, store)["outcomes"]["math"]
    store.close()
    return data


async def test_weights_learn_from_verified_feedback_and_corrected_outcomes_only() -> None:
    first, second = heads()
    settings = settings_for(first, second)
    store = open_store(settings)
    # verified: checkable questions, the verifier judges every answer, winner or not
    for i in range(6):
        record(store, f"v{i}", f"What is {i} + 2?",
               [vote("first", str(i + 3), 0, True), vote("second", str(i + 2), 1, False)],
               success=False, label_source="verifier")  # fmt: skip
    # agreement alone is no outcome: a confidence label teaches the weights nothing
    record(store, "agree", "Which sorting algorithm is stable?",
           [vote("first", "merge sort", 0, True), vote("second", "merge sort", 0, True)],
           success=True, label_source="confidence")  # fmt: skip
    # thumbs down on first's winning answer; thumbs up on second's
    record(store, "down", "Name a prime near twenty?",
           [vote("first", "21", 0, True), vote("second", "19", 1, False)])  # fmt: skip
    store.add_feedback("down", -1)
    record(store, "up", "Name a prime near thirty?",
           [vote("first", "31", 1, False), vote("second", "29", 0, True)])  # fmt: skip
    store.add_feedback("up", 1)
    # corrected: a harvest rewrote the exchange; every vote is compared with the correction
    record(store, "bad", "How many legs has a spider?",
           [vote("first", "6", 0, True), vote("second", "8", 1, False)],
           success=False, label_source="confidence")  # fmt: skip
    fix = Verdict("Eight legs. Answer: 8", [], 1.0, "agent0:x", 0.0, 0.0, ["x"], "math")
    store.record(ExchangeRecord("fix", "ana", [Message("user", "How many legs has a spider?")],
                                fix, role="agent0", success=True, label_source="agent0",
                                parent_id="bad", improved=True))  # fmt: skip
    # an abstention (no cluster, no error) is not an outcome of the tool head
    record(store, "abst", "What is 9 + 9?",
           [vote("first", "18", 0, True), Vote("calc", "cannot answer", None, None, 0.0, 1.0,
                                               abstained=True)],
           success=True, label_source="verifier")  # fmt: skip
    store.close()
    outcomes = weights(settings)
    # first: wrong on 6 verified, 1 thumbs down, 1 correction; right on 9 + 9;
    # the thumbs up went to second's answer, which differs: wrong again
    assert outcomes["first"] == {"right": 1.0, "n": 10.0}
    # second: right on 6 verified, 1 thumbs up, 1 correction; nothing from the thumbs down
    assert outcomes["second"] == {"right": 8.0, "n": 8.0}
    assert "calc" not in outcomes
    c = Council(settings, heads=[first, second])
    w = c.router.map.head_weights("math", [first.spec, second.spec])
    assert w == {"first": learned_weight(5.0, 1, 10), "second": learned_weight(5.0, 8, 8)}
    assert w["first"] < 5.0 < w["second"]


async def test_weighted_and_vote_tie_breaks_follow_the_learned_weights() -> None:
    first, second = heads()
    settings = settings_for(first, second)

    async def ask(strategy: str) -> str:
        first.enqueue("Answer: 41")
        second.enqueue("Answer: 42")
        c = Council(settings, heads=[first, second])
        v = await c.ask("Which number is the answer to everything?", strategy=strategy,
                        task_type="math")  # fmt: skip
        assert v.route is not None and set(v.route["weights"]) == {"first", "second"}
        return v.answer

    # no outcomes yet: equal priors, so the tie goes to the first in catalogue order
    assert await ask("vote") == "Answer: 41"
    assert await ask("weighted") == "Answer: 41"
    store = open_store(settings)
    for i in range(4):  # second is verified right four times, first wrong
        record(store, f"v{i}", f"What is {i} * 3?",
               [vote("first", str(i * 3 + 1), 0, True), vote("second", str(i * 3), 1, False)],
               success=False, label_source="verifier")  # fmt: skip
    store.close()
    weights(settings)  # the map is rebuilt (as `council map` and the nightly cycle do)
    assert await ask("vote") == "Answer: 42"  # one vote each: the trusted head breaks the tie
    assert await ask("weighted") == "Answer: 42"


def test_council_map_shows_each_heads_weight_and_its_outcome_count(tmp_path: Path) -> None:
    specs = [HeadSpec(id="first", quality=5.0), HeadSpec(id="second", quality=7.0)]
    data = tmp_path / "data"
    config = write_config(tmp_path / "council.toml", specs, data_dir=str(data))
    store = open_store(Settings(heads=specs, data_dir=data))
    for i in range(3):
        record(store, f"v{i}", f"What is {i} + 5?",
               [vote("first", str(i + 5), 0, True), vote("second", "0", 1, False)],
               success=True, label_source="verifier")  # fmt: skip
    store.close()
    r = CliRunner().invoke(cli, ["map", "--json", "--config", str(config)])
    assert r.exit_code == 0, r.output
    math = json.loads(r.output)["domains"]["math"]["weights"]
    assert math["first"] == {"weight": learned_weight(5.0, 3, 3), "outcomes": 3.0}
    assert math["second"] == {"weight": learned_weight(7.0, 0, 3), "outcomes": 3.0}
    assert json.loads(r.output)["domains"]["code"]["weights"]["second"] == {
        "weight": 7.0,
        "outcomes": 0,
    }
    r = CliRunner().invoke(cli, ["map", "--config", str(config)], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert "weights (outcomes)" in r.output and "first 6.15 (n=3)" in r.output


async def test_a_users_correction_judges_every_heads_answer_at_once() -> None:
    """A 👎 that says the right answer is an outcome for every head, before any harvest: the
    losing head that gave it was right. A newer 👍 takes the correction back."""
    first, second = heads()
    settings = settings_for(first, second)
    store = open_store(settings)
    for i in range(3):
        record(store, f"c{i}", f"How many r's are in 'carrot{i}'?",
               [vote("first", "1", 0, True), vote("second", "2", 1, False)])  # fmt: skip
        store.add_feedback(f"c{i}", -1, correction="2")
    record(store, "changed", "How many r's are in 'barrel'?",
           [vote("first", "1", 0, True), vote("second", "2", 1, False)])  # fmt: skip
    store.add_feedback("changed", -1, correction="2")
    store.add_feedback("changed", 1)  # the user changed their mind: first's 1 was right
    store.close()
    outcomes = weights(settings)
    assert outcomes["first"] == {"right": 1.0, "n": 4.0}
    # the thumbs up was about first's winning answer, so second's differing one was wrong
    assert outcomes["second"] == {"right": 3.0, "n": 4.0}
