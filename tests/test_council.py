"""The Council's stages and strategies, with scripted heads (no model needed)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from council.config import HeadSpec
from council.council import Council
from council.errors import (
    HeadsTimedOutError,
    InvalidRequestError,
    NoAnswerError,
    PromptTooLongError,
    UnknownStrategyError,
)
from council.model_ensemble import EnsembleStrategy, ModelEnsemble
from council.server import create_app
from tests.helpers import ScriptedHead, scripted, settings_with


def make(*heads: ScriptedHead, **kw) -> Council:
    return Council(settings_with([h.spec for h in heads], **kw), heads=list(heads))


async def test_majority_vote_counts_normalised_answers() -> None:
    c = make(
        scripted("The answer is 0.5", id="a"),
        scripted("Answer: 1/2", id="b"),
        scripted("½", id="c"),
        scripted("Answer: 3", id="d"),
    )
    v = await c.ask("What is one half as a number?")
    assert v.strategy == "vote"
    assert v.answer == "The answer is 0.5"  # first member of the winning cluster speaks
    assert v.confidence == pytest.approx(0.75)
    won = {x.head: x.won for x in v.votes}
    assert won == {"a": True, "b": True, "c": True, "d": False}
    assert v.models_used == ["a", "b", "c", "d"]
    assert {x.extracted for x in v.votes if x.won} == {"0.5", "1/2", "½"} or all(
        x.cluster == v.votes[0].cluster for x in v.votes if x.won
    )


async def test_weighted_vote_lets_quality_outweigh_headcount() -> None:
    heads = (
        scripted("42", id="strong", quality=9.0),
        scripted("41", id="weak1", quality=2.0),
        scripted("41", id="weak2", quality=2.0),
    )
    assert (await make(*heads).ask("q", strategy="vote")).answer == "41"
    for h, r in zip(heads, ("42", "41", "41"), strict=True):
        h.enqueue(r)
    v = await make(*heads).ask("q", strategy="weighted")
    assert v.answer == "42"
    assert v.confidence == pytest.approx(9 / 13)


async def test_consensus_answers_only_when_all_agree() -> None:
    agree = make(scripted("Paris", id="a"), scripted("paris.", id="b"))
    v = await agree.ask("Capital of France?", strategy="consensus")
    assert v.answer == "Paris" and v.confidence == 1.0
    split = make(scripted("Paris", id="a"), scripted("Lyon", id="b"), scripted("Paris", id="c"))
    v = await split.ask("Capital of France?", strategy="consensus")
    assert "did not reach consensus" in v.answer
    assert "paris" in v.answer.lower() and "lyon" in v.answer.lower()
    assert v.confidence == pytest.approx(2 / 3)
    assert "no consensus" in v.notes
    assert not any(x.won for x in v.votes)


async def test_failed_and_slow_heads_become_errors_not_outages() -> None:
    ok = scripted("7", id="ok")
    broken = scripted(RuntimeError("HTTP 401: bad key"), id="broken")
    slow = ScriptedHead(HeadSpec(id="slow", kind="scripted", timeout_s=0.05), ["7"], delay=1.0)
    v = await make(ok, broken, slow).ask("3+4?")
    assert v.answer == "7"
    errors = {x.head: x.error for x in v.votes}
    assert errors["ok"] is None
    assert "401" in errors["broken"]
    assert "timed out" in errors["slow"]
    assert v.confidence == 1.0  # failed heads do not count as dissent
    assert broken.state.errors == 1 and slow.state.errors == 1


async def test_all_heads_failing_is_a_clear_error() -> None:
    c = make(scripted(RuntimeError("down"), id="a"), scripted(RuntimeError("gone"), id="b"))
    with pytest.raises(NoAnswerError, match=r"All 2 heads failed .*a: down.*b: gone"):
        await c.ask("hi")
    text = c.metrics.render().decode()
    assert 'swarm_vote_results_total{outcome="failed"} 1.0' in text


async def test_every_head_timing_out_is_a_503_to_retry_not_a_502() -> None:
    slow = [ScriptedHead(HeadSpec(id=f"s{i}", kind="scripted", timeout_s=0.05), ["7"], delay=1.0)
            for i in range(2)]  # fmt: skip
    with pytest.raises(HeadsTimedOutError, match="Every head timed out") as caught:
        await make(*slow).ask("3+4?")
    assert caught.value.status_code == 503 and caught.value.retry_after >= 1
    # a head that failed otherwise keeps the 502: the server is not merely busy
    mixed = make(slow[0], scripted(RuntimeError("down"), id="b"))
    with pytest.raises(NoAnswerError) as failed:
        await mixed.ask("3+4?")
    assert not isinstance(failed.value, HeadsTimedOutError) and failed.value.status_code == 502
    s = settings_with([h.spec for h in slow])
    with TestClient(create_app(s, Council(s, heads=slow))) as client:
        ask = {"model": "council", "messages": [{"role": "user", "content": "hi"}]}
        r = client.post("/v1/chat/completions", json=ask)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "heads_timed_out"


async def test_heads_run_in_parallel() -> None:
    # Each head waits at a barrier that opens only when all five are inside complete() at
    # once: run one after another, every head would time out instead of answering.
    barrier = asyncio.Barrier(5)

    class Meeting(ScriptedHead):
        async def complete(self, messages, *, n=1, params=None):
            await asyncio.wait_for(barrier.wait(), timeout=10)
            return await super().complete(messages, n=n, params=params)

    heads = [Meeting(HeadSpec(id=f"p{i}", kind="scripted"), ["1"]) for i in range(5)]
    v = await make(*heads).ask("1?")
    assert v.answer == "1" and len([x for x in v.votes if x.won]) == 5


async def test_best_of_n_uses_the_judge_and_falls_back_when_unreadable() -> None:
    judge = scripted("BEST: B", id="judge", quality=9.0)
    c = make(judge, scripted("Rome", id="x"), scripted("Paris", id="y"), judge="judge")
    # judge answers the question first (its own vote), then judges
    judge.replies.appendleft("Rome")
    v = await c.ask("Capital of France?", strategy="best_of_n")
    assert v.answer == "Paris"
    assert any("judge judge picked" in n for n in v.notes)
    assert len(judge.seen) == 2 and "Response A" in judge.seen[1][-1].content

    judge.enqueue("Rome", "I like them all")
    c.heads["x"].enqueue("Rome")  # type: ignore[attr-defined]
    c.heads["y"].enqueue("Paris")  # type: ignore[attr-defined]
    v = await c.ask("Capital of France?", strategy="best_of_n")
    assert v.answer == "Rome"  # majority fallback
    assert any("fell back to majority" in n for n in v.notes)


async def test_specialization_picks_heads_by_task_type() -> None:
    coder = scripted("def f(): pass", id="coder", specializations=["code"], quality=6)
    poet = scripted("roses are red", id="poet", specializations=["creative"], quality=9)
    v = await make(coder, poet).ask("Write a python function", strategy="specialization")
    assert v.models_used == ["coder"] and v.task_type == "code"
    assert poet.seen == []


async def test_num_models_takes_the_best_heads() -> None:
    heads = [scripted("1", id=f"q{i}", quality=float(i)) for i in range(4)]
    v = await make(*heads).ask("1?", num_models=2)
    assert sorted(v.models_used) == ["q2", "q3"]


async def test_bad_requests_name_the_fix() -> None:
    c = make(scripted("1", id="a"), max_prompt_chars=10)
    with pytest.raises(UnknownStrategyError, match="Known: vote, weighted, consensus"):
        await c.ask("hi", strategy="nope")
    with pytest.raises(PromptTooLongError, match="COUNCIL_MAX_PROMPT_CHARS"):
        await c.ask("x" * 11)
    with pytest.raises(InvalidRequestError, match="non-empty message"):
        await c.ask([{"role": "user", "content": "  "}])
    with pytest.raises(InvalidRequestError, match="num_models"):
        await c.ask("hi", num_models=0)


async def test_cost_latency_and_tokens_are_summed() -> None:
    a = scripted("1", id="a", cost_in_per_1k=1.0, cost_out_per_1k=2.0)
    b = scripted("1", id="b", cost_in_per_1k=1.0, cost_out_per_1k=2.0)
    v = await make(a, b).ask("1?")
    assert v.cost_usd == pytest.approx(2 * (3 * 1.0 + 2 * 2.0) / 1000)
    assert v.tokens_in == 6 and v.tokens_out == 4
    assert v.latency_ms >= 0 and all(x.latency_ms >= 0 for x in v.votes)


async def test_council_is_a_head_and_ensemble_api_returns_a_dict() -> None:
    c = make(scripted("4", "4", id="a"), scripted("4", "5", id="b"))
    [completion] = await c.complete([__import__("council").Message("user", "2+2?")])
    assert completion.head == "council" and completion.text == "4" and completion.ok
    result = await ModelEnsemble(c).ensemble_query(
        [{"role": "user", "content": "2+2?"}], strategy=EnsembleStrategy.VOTE
    )
    assert result["answer"] == "4" and result["total_cost"] == result["cost_usd"]
    assert result["confidence"] == 0.5 and len(result["votes"]) == 2


def test_the_seed_import_paths_offer_the_seed_api_from_one_compat_module() -> None:
    import council
    from council import compat, continuous_learning, model_ensemble

    for name in ("get_ensemble", "EnsembleStrategy", "ModelEnsemble"):
        assert getattr(model_ensemble, name) is getattr(compat, name)
    for name in ("get_learner", "Learner", "KnowledgeDistillation"):
        assert getattr(continuous_learning, name) is getattr(compat, name)
    assert council.get_ensemble is compat.get_ensemble
    assert council.EnsembleStrategy.BEST_OF_N == "best_of_n"


async def test_metrics_record_every_decision() -> None:
    c = make(scripted("1", id="a"), scripted("2", id="b"), scripted("1", id="c"))
    await c.ask("?")
    text = c.metrics.render().decode()
    assert 'swarm_vote_results_total{outcome="majority"} 1.0' in text
    assert 'swarm_vote_latency_seconds_count{strategy="vote"} 1.0' in text
    assert 'swarm_head_tokens_total{direction="out",head="a"} 2.0' in text
    assert "swarm_council_agreement_last 0.6666" in text
