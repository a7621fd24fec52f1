"""The governor (admin API, persistence, enforcement), the cognitive map, and the routing
CLI commands."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from council.cli import app as cli
from council.config import HeadSpec
from council.council import Council
from council.learning.arbiter import ArbiterLoop
from council.memory.store import ExchangeRecord
from council.routing import cognitive_map
from council.routing.spend import SpendLedger
from council.server import create_app
from council.storage import open_store
from council.types import Message, Verdict, Vote
from tests.helpers import ScriptedHead, scripted, settings_with, write_config

TOKEN = "s3cret-admin"
runner = CliRunner()


def make(*heads: ScriptedHead, **kw) -> Council:  # type: ignore[no-untyped-def]
    return Council(settings_with([h.spec for h in heads], **kw), heads=list(heads))


def client_for(council: Council) -> TestClient:
    return TestClient(create_app(council.settings, council))


def test_admin_endpoints_refuse_without_a_configured_token() -> None:
    with client_for(make(scripted("1", id="a"))) as client:
        r = client.get("/api/config/governor", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403
    err = r.json()["error"]
    assert "COUNCIL_ADMIN_TOKEN" in err["message"] and err["type"] == "permission_error"


def test_admin_endpoints_need_the_right_bearer_token() -> None:
    with client_for(make(scripted("1", id="a"), admin_token=TOKEN)) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            r = client.get("/api/config/governor", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["error"]["type"] == "authentication_error"
        r = client.post("/api/config/governor", json={"local_only": False})
        assert r.status_code == 401


def test_governor_round_trip_persists_and_reaches_the_learning_jobs(tmp_path: Path) -> None:
    priced = scripted("1", id="paid", cost_in_per_1k=1.0, quality=9.0)
    free = scripted("1", id="free", quality=5.0)
    council = make(priced, free, admin_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with client_for(council) as client:
        state = client.get("/api/config/governor", headers=auth).json()
        assert state["local_only"] is True and state["daily_budget_usd"] is None
        assert state["enabled"] is True and state["spent_today_usd"] == 0
        change = {"local_only": False, "enable_oracle_refinement": True, "daily_budget_usd": 2.5}
        r = client.post("/api/config/governor", json=change, headers=auth)
        assert r.status_code == 200 and r.json()["daily_budget_usd"] == 2.5
        bad = client.post("/api/config/governor", json={"local_onyl": True}, headers=auth)
        assert bad.status_code == 400 and "local_onyl" in bad.json()["error"]["message"]
    saved = json.loads((council.settings.server.data_dir / "governor.json").read_text())
    assert saved == {"daily_budget_usd": 2.5, "enable_oracle_refinement": True, "local_only": False}
    # the same Settings object the learning jobs read carries the governed values ...
    assert (
        council.settings.routing.local_only is False
        and council.settings.learning.enable_oracle_refinement
    )
    assert ArbiterLoop(council).oracle is not None and ArbiterLoop(council).oracle.id == "paid"
    # ... and a council started later (another process) reads the file
    later = make(scripted("1", id="a"))
    assert (
        later.settings.routing.local_only is False
        and later.settings.routing.daily_budget_usd == 2.5
    )
    # a change written by another process is picked up without a restart
    time.sleep(0.01)
    later.governor.update({"local_only": True})
    os.utime(council.governor.path, None)
    assert (
        council.governor.state().local_only is True and council.settings.routing.local_only is True
    )
    assert ArbiterLoop(council).oracle is not None and ArbiterLoop(council).oracle.id == "free"


async def test_spend_is_tracked_per_head_including_priced_local_heads() -> None:
    # a self-hosted head with a configured price is never silently $0
    rig = scripted("4", id="gpu-rig", cost_in_per_1k=2.0, cost_out_per_1k=4.0)
    free = scripted("4", id="free")
    c = make(rig, free, daily_budget_usd=100.0)
    v = await c.ask("2+2?")
    assert v.cost_usd == pytest.approx((3 * 2.0 + 2 * 4.0) / 1000)
    report = c.governor.report()
    assert report["spent_by_head_usd"] == {"gpu-rig": pytest.approx(0.014)}
    assert report["remaining_usd"] == pytest.approx(100 - 0.014)
    assert "swarm_spend_today_usd 0.014" in c.metrics.render().decode()


class NoUsage(ScriptedHead):
    """A server that reports no token usage (some OpenAI-compatible ones do not)."""

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        [c] = await super().complete(messages, n=n, params=params)
        return [replace(c, tokens_in=0, tokens_out=0, cost_usd=0.0)]


async def test_a_priced_head_that_reports_no_usage_is_charged_on_estimates() -> None:
    spec = HeadSpec(id="vllm-box", kind="scripted", cost_in_per_1k=1.0, cost_out_per_1k=2.0)
    c = make(NoUsage(spec, ["The answer is 1000."]))
    v = await c.ask("Compute 10 * 100 for me please.")
    [vote] = v.votes
    assert vote.tokens_in == len("Compute 10 * 100 for me please.") // 4
    assert vote.tokens_out == len("The answer is 1000.") // 4
    assert v.cost_usd == pytest.approx((vote.tokens_in * 1.0 + vote.tokens_out * 2.0) / 1000)
    assert c.governor.report()["spent_by_head_usd"]["vllm-box"] == pytest.approx(v.cost_usd)


async def test_an_exhausted_budget_refuses_priced_heads_only() -> None:
    paid = scripted("4", "4", id="paid", cost_in_per_1k=1.0)
    free = scripted("4", "4", id="free")
    c = make(paid, free, daily_budget_usd=0.001)
    await c.ask("2+2?")  # 0.003 spent: over budget from now on
    v = await c.ask("2+2?")
    assert [x.head for x in v.votes] == ["free"] and v.answer == "4"
    assert any("daily_budget_usd" in r for r in (v.route or {}).get("reasons", []))
    c.governor.update({"enabled": False})  # governor off: no cap
    paid.enqueue("4")
    free.enqueue("4")
    assert len((await c.ask("2+2?")).votes) == 2


def test_the_ledger_starts_a_new_file_each_utc_day(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    ledger = SpendLedger(tmp_path, clock=lambda: now[0])
    ledger.add("a", 0.5)
    ledger.add("a", 0.0)  # free calls are not written
    other = SpendLedger(tmp_path, clock=lambda: now[0])
    other.add("b", 0.25)
    assert ledger.by_head() == {"a": 0.5, "b": 0.25}  # sees the other process's line
    now[0] += 86_400
    assert ledger.today() == 0 and len(list(tmp_path.glob("*.jsonl"))) == 1


def _exchange(store, i: int, task: str, success: bool) -> None:  # type: ignore[no-untyped-def]
    v = Verdict("4", [], 1.0, "vote", 1.0, 0.0, ["a"], task)
    store.record(ExchangeRecord(f"ex{task}{i}", "ana", [Message("user", "q")], v,
                                success=success, label_source="verifier"))  # fmt: skip


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
async def test_cognitive_map_combines_live_gauntlet_and_training_evidence(tmp_path: Path) -> None:
    settings = settings_with([HeadSpec(id="s")])
    data = settings.server.data_dir
    store = open_store(settings)
    for i in range(6):
        _exchange(store, i, "math", i < 2)  # 2 of 6 live math answers were right
    _exchange(store, 0, "code", True)
    (data / "gauntlet").mkdir(parents=True)
    report = {"verdict": "reject", "families": {
        "basic_arithmetic": {"n": 10, "champion": {"accuracy": 0.1},
                             "challenger": {"accuracy": 0.9}},
        "made_up_family": {"n": 5, "champion": {"accuracy": 1.0}}}}  # fmt: skip
    (data / "gauntlet" / "20260101-v1.json").write_text(json.dumps(report))
    lines = [{"question": "Why is the sky blue?", "final_platinum_answer": "Rayleigh",
              "decided_by": "oracle", "provenance": {"oracle": {"agrees": False}}},
             {"question": "Explain tides", "final_platinum_answer": "the moon",
              "decided_by": "proposer", "provenance": {}}]  # fmt: skip
    (data / "datasets").mkdir()
    (data / "datasets" / "training_metadata.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\nnot json\n"
    )
    m = cognitive_map.write(data, store)["domains"]
    # math: live 2/6 and the champion's gauntlet 1/10 (reject: the champion still answers),
    # the gauntlet weighing double: (2 + 2*1 + 0.5*2) / (6 + 2*10 + 2)
    assert m["math"]["confidence"] == pytest.approx(5 / 28, abs=1e-4)
    assert m["math"]["sources"]["gauntlet"] == {"rate": 0.1, "n": 10.0}
    assert m["reasoning"]["sources"]["training"] == {"rate": 0.0, "n": 1.0}
    assert m["reasoning"]["training_examples"] == 2
    assert m["creative"] == {"confidence": 0.5, "samples": 0, "training_examples": 0,
                             "sources": {}, "heads": {}}  # fmt: skip
    # the selector reads it: weak math goes to the master tier when there is one
    heads = [scripted("4", id="small"),
             scripted("4", id="big", tier="large", quality=9.0)]  # fmt: skip
    c = Council(settings_with([h.spec for h in heads]), heads=list(heads))
    assert c.router.map.confidence("math") == pytest.approx(5 / 28, abs=1e-4)
    assert c.router.map.confidence("creative") is None  # no evidence: no opinion
    v = await c.ask("What is 3 * 4?", strategy="auto")
    assert v.chosen_model == "master" and v.models_used == ["big"]
    assert v.route and any("map's confidence for math is 0.18" in r for r in v.route["reasons"])
    store.close()


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
async def test_the_map_scores_heads_per_domain_and_auto_asks_the_best_first() -> None:
    """A head is right when it won a ballot that succeeded, wrong when it won one that failed
    or lost one that succeeded; the selector's early stop asks the domain's best head first
    (live math confidence 23/33 is below `high_confidence`, so two heads are asked). Answers
    to checkable questions are judged by the verifier instead."""
    good, fast = scripted(id="good", speed=2.0), scripted(id="fast", speed=9.0)
    other = scripted(id="other", speed=5.0)
    settings = settings_with([good.spec, fast.spec, other.spec])
    store = open_store(settings)
    for i in range(30):  # good wins 22 ballots that succeed, fast 8 that fail
        good_won = i < 22
        v = Verdict("4", [Vote("good", "4", "4", 0, 1.0, 1.0, won=good_won),
                          Vote("fast", "5", "5", 1, 1.0, 1.0, won=not good_won)],
                    1.0, "vote", 1.0, 0.0, ["good", "fast"], "math")  # fmt: skip
        store.record(ExchangeRecord(f"m{i}", "ana", [Message("user", "q")], v,
                                    success=good_won, label_source="verifier"))  # fmt: skip
    # a checkable question: the verifier judges every answer, whoever won
    v = Verdict("41", [Vote("good", "42", "42", 0, 1.0, 1.0, won=False),
                       Vote("fast", "41", "41", 1, 1.0, 1.0, won=True)],
                0.5, "vote", 1.0, 0.0, ["good", "fast"], "math")  # fmt: skip
    store.record(ExchangeRecord("m-checked", "ana", [Message("user", "What is 6 * 7?")], v,
                                success=False, label_source="verifier"))  # fmt: skip
    m = cognitive_map.write(settings.server.data_dir, store)["domains"]["math"]["heads"]
    # good: right 22 of 22 judged by label (its 8 losses were failed ballots: no evidence)
    # and right on the checked one; fast: wrong 8 times by winning failed ballots, 22 by
    # losing good ones, and on the checked one
    assert m["good"] == {"accuracy": pytest.approx(24 / 25, abs=1e-4), "n": 23}
    assert m["fast"] == {"accuracy": pytest.approx(1 / 33, abs=1e-4), "n": 31}
    assert "other" not in m
    store.close()
    for h in (good, fast, other):
        h.enqueue("Answer: 4")
    c = Council(settings, heads=[good, fast, other])
    assert c.router.map.head_scores("math") == {"good": m["good"]["accuracy"],
                                                "fast": m["fast"]["accuracy"]}  # fmt: skip
    v = await c.ask("What is 2 + 2?", strategy="auto", recall=False)
    # early stop by agreement (no certainty history yet): good and fast, not the cheapest two
    assert v.head_calls == 2 and other.seen == [] and v.route is not None
    assert v.route["first"] == ["good", "fast"]
    assert any("good first: the best live accuracy in math (0.96)" in r for r in v.route["reasons"])


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_a_restart_relearns_how_sure_each_head_usually_is_from_stored_votes() -> None:
    from council.routing.certainty import CertaintyHistory

    settings = settings_with([HeadSpec(id="a")])
    store = open_store(settings)
    for i in range(40):
        strategy = "debate" if i % 4 == 3 else "vote"  # revised answers are not first answers
        v = Verdict("4", [Vote("a", "4", "4", 0, 1.0, 1.0, won=True, logprob=-0.05 * i),
                          Vote("b", "x", None, None, 0.0, 1.0, error="timed out")],
                    1.0, strategy, 1.0, 0.0, ["a"], "math")  # fmt: skip
        store.record(ExchangeRecord(f"c{i}", "ana", [Message("user", "q")], v,
                                    created_at=1000.0 + i))  # fmt: skip
    assert store.exchange("c1")["votes"][0]["logprob"] == pytest.approx(-0.05)
    history = CertaintyHistory(size=20, min_samples=10)
    assert history.load(store) == 20  # the newest 20 first answers of a in math
    assert history.count("a", "math") == 20 and history.count("b", "math") == 0
    # the newest 20 vote exchanges are i = 13..38 without the debates: -0.65 .. -1.9
    assert history.threshold("a", "math", 0.5) == pytest.approx(-1.25)
    store.close()


def test_routing_cli_commands(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "council.toml", [HeadSpec(id="h0"), HeadSpec(id="h1")],
                       embedder="none", memory=False)  # fmt: skip
    env = {"COLUMNS": "200"}
    r = runner.invoke(
        cli, ["governor", "--no-local-only", "--budget", "3", "-c", str(cfg)], env=env
    )
    assert r.exit_code == 0, r.output
    assert "local_only False" in r.output and "$3/day" in r.output
    r = runner.invoke(cli, ["stats", "-c", str(cfg)], env=env)
    assert r.exit_code == 0 and "answers 0" in r.output and "$3/day" in r.output, r.output
    r = runner.invoke(cli, ["map", "-c", str(cfg)], env=env)
    assert r.exit_code == 0 and "Cognitive map" in r.output and "reasoning" in r.output
    r = runner.invoke(cli, ["route", "Write a poem about rain", "-c", str(cfg)], env=env)
    assert r.exit_code == 0 and r.output.startswith("rank on courier"), r.output
    r = runner.invoke(cli, ["route", "hi", "--strategy", "nope", "-c", str(cfg)], env=env)
    assert r.exit_code == 1 and "Unknown strategy 'nope'" in r.output


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
async def test_stats_count_cloud_answers_from_the_store() -> None:
    from council.routing.stats import routing_stats

    gpt = HeadSpec(id="gpt", kind="openai", base_url="https://api.openai.com/v1", provider="openai")
    settings = settings_with([HeadSpec(id="local"), gpt])
    store = open_store(settings)
    for i, (models, notes) in enumerate([(["local"], []), (["gpt"], ["escalated to openai"]),
                                         (["local"], ["early stop: the 2 cheapest"])]):  # fmt: skip
        v = Verdict("4", [], 1.0, "vote", 1.0, 0.0, models, notes=notes)
        store.record(ExchangeRecord(f"e{i}", "ana", [Message("user", "q")], v))
    council = Council(settings, heads=[scripted("1", id="local")])
    s = routing_stats(settings, store, council.governor)
    assert (s["answers"], s["cloud_answers"], s["escalations"], s["early_stops"]) == (3, 1, 1, 1)
    assert s["cloud_share"] == pytest.approx(1 / 3, abs=1e-4) and s["by_strategy"] == {"vote": 3}
    store.close()


def test_a_broken_governor_file_is_an_error_that_says_the_fix() -> None:
    from council.errors import ConfigError

    settings = settings_with([HeadSpec(id="a")])
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.server.data_dir / "governor.json").write_text('{"local_only": "maybe"}')
    with pytest.raises(ConfigError, match="fix it or delete it"):
        Council(settings, heads=[scripted("1", id="a")])
