"""rank, moa, debate, clone_dispatch and early stop, with scripted heads (no model needed).

Reviewers react to the prompt they are actually shown (labels are shuffled per reviewer), so
the tests exercise the real anonymisation, parsing and aggregation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from council.council import Council
from council.types import Completion, GenParams, Message
from tests.helpers import ScriptedHead, scripted, settings_with

Reply = str | Exception | Callable[[list[Message]], str]


class Reactive(ScriptedHead):
    """A scripted head whose replies may be functions of the messages it is sent, and which
    pops one reply per requested sample (n > 1 gives n different answers)."""

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        self.params = params
        out: list[Completion] = []
        for _ in range(n):
            reply = self.replies.popleft() if self.replies else "no more scripted replies"
            if callable(reply) and not isinstance(reply, Exception):
                self.replies.appendleft(reply(messages))
            else:
                self.replies.appendleft(reply)
            out += await super().complete(messages, params=params)
        return out


def head(id: str, *replies: Reply, quality: float = 5.0, **spec) -> Reactive:  # type: ignore[no-untyped-def]
    h = scripted(id=id, quality=quality, **spec)
    return Reactive(h.spec, list(replies))


def make(*heads: ScriptedHead, **kw) -> Council:  # type: ignore[no-untyped-def]
    return Council(settings_with([h.spec for h in heads], **kw), heads=list(heads))


def shown_blocks(messages: list[Message]) -> dict[str, str]:
    """{label: answer} from a review prompt's 'Response X:' blocks."""
    text = messages[-1].content
    return dict(
        re.findall(r"Response ([A-Z]):\n(.*?)(?=\n\nResponse [A-Z]:|\n\nRank )", text, re.S)
    )


def prefer(*order: str) -> Callable[[list[Message]], str]:
    """A reviewer that ranks the shown answers by the order of the given texts."""

    def review(messages: list[Message]) -> str:
        blocks = shown_blocks(messages)
        ranked = sorted(blocks, key=lambda lab: order.index(blocks[lab].strip()))
        return "FINAL RANKING:\n" + "\n".join(f"{k}. Response {x}" for k, x in enumerate(ranked, 1))

    return review


# rank --------------------------------------------------------------------------------------
async def test_rank_reviews_anonymised_answers_and_a_chairman_writes_the_answer() -> None:
    taste = prefer("Answer: 42", "Answer: 41", "Answer: 40", "Answer: 43")
    a = head("a", "Answer: 42", taste)
    b = head("b", "Answer: 41", taste)
    c = head("c", "Answer: 40", "I like them all equally.")  # malformed: no ranking at all
    chair = head("chair", "Answer: 43", taste, "The best answer is 42. Answer: 42", quality=9.0)
    v = await make(a, b, c, chair).ask("What is 6 * 7?", strategy="rank")
    assert v.strategy == "rank" and v.answer == "The best answer is 42. Answer: 42"
    assert len(v.votes) == 4 and {x.head for x in v.votes} == {"a", "b", "c", "chair"}
    assert [x.head for x in v.votes if x.won] == ["a"]  # the top-ranked answer's cluster
    # nobody is shown its own answer; everyone else's, as Response A, B, ...
    for h, own in ((a, "Answer: 42"), (b, "Answer: 41"), (c, "Answer: 40")):
        shown = shown_blocks(h.seen[1])
        assert own not in [t.strip() for t in shown.values()] and len(shown) == 3
    reviews = next(r for r in v.rounds if r["round"] == "reviews")
    readable = {r["reviewer"]: r["readable"] for r in reviews["reviews"]}
    assert readable == {"a": True, "b": True, "c": False, "chair": True}
    bad = next(r for r in reviews["reviews"] if r["reviewer"] == "c")
    assert "no FINAL RANKING" in bad["problem"] and bad["ranking"] is None
    assert any("review by c unreadable" in n for n in v.notes)  # recorded, not dropped
    assert reviews["standings"][0]["head"] == "a"
    assert v.head_calls == 4 + 4 + 1  # answers, reviews, chairman
    assert any(r["round"] == "chairman" and r["head"] == "chair" for r in v.rounds)


async def test_rank_ignores_a_reviewer_that_ranks_its_own_answer() -> None:
    def self_promoter(messages: list[Message]) -> str:
        # it guesses its own answer sits at the label after the ones shown (C of A, B)
        return "FINAL RANKING:\n1. Response C\n2. Response A\n3. Response B"

    a = head("a", "Answer: 1", self_promoter)
    b = head("b", "Answer: 2", prefer("Answer: 2", "Answer: 1", "Answer: 3"))
    c = head("c", "Answer: 3", prefer("Answer: 2", "Answer: 1", "Answer: 3"), quality=9.0)
    c.enqueue("Answer: 2")  # the chairman (highest quality) writes
    v = await make(a, b, c).ask("Pick", strategy="rank")
    reviews = {r["reviewer"]: r for r in next(x for x in v.rounds if x["round"] == "reviews")[
        "reviews"]}  # fmt: skip
    assert "a" not in reviews["a"]["shown"] and "a" not in (reviews["a"]["ranking"] or [])
    assert "C" in reviews["a"]["problem"]  # the label it was never shown is ignored, and said
    assert reviews["a"]["readable"]  # its ranking of the others still counts
    assert v.answer == "Answer: 2"


async def test_rank_falls_back_to_the_top_ranked_answer_when_the_chairman_fails() -> None:
    a = head("a", "Answer: 7", prefer("Answer: 7", "Answer: 8"))
    b = head("b", "Answer: 8", prefer("Answer: 7", "Answer: 8"))
    chair = head("chair", "Answer: 8", prefer("Answer: 7", "Answer: 8"), RuntimeError("HTTP 503"),
                 quality=9.0)  # fmt: skip
    v = await make(a, b, chair, chairman="chair").ask("3+4?", strategy="rank")
    assert v.answer == "Answer: 7"
    assert any("chairman chair failed (HTTP 503)" in n and "top-ranked" in n for n in v.notes)
    assert v.confidence == pytest.approx(1 / 3)
    assert next(r for r in v.rounds if r["round"] == "chairman")["error"] == "HTTP 503"


# moa ---------------------------------------------------------------------------------------
async def test_moa_layers_see_the_previous_answers_and_an_aggregator_writes() -> None:
    a = head("a", "Answer: 10", "Answer: 12")
    b = head("b", "Answer: 11", "Answer: 12")
    agg = head("agg", "Answer: 12", "Answer: 12", "All agree: Answer: 12", quality=9.0)
    v = await make(a, b, agg, moa_layers=2).ask("5+7?", strategy="moa")
    assert v.answer == "All agree: Answer: 12"
    assert [r["round"] for r in v.rounds] == ["layer 1", "layer 2", "aggregator"]
    layer2 = a.seen[1][0]
    assert layer2.role == "system" and "Answer: 11" in layer2.content  # saw the others
    assert "Answer: 10" in layer2.content  # ... and its own, unlabelled, as MoA does
    assert v.head_calls == 3 + 3 + 1 and v.confidence == 1.0
    assert all(x.answer == "Answer: 12" for x in v.votes)  # the final layer's votes


async def test_moa_aggregator_failure_falls_back_to_the_last_layer_vote() -> None:
    a = head("a", "3", "4")
    b = head("b", "4", "4")
    agg = head("agg", "5", "5", RuntimeError("timeout"), quality=9.0)
    v = await make(a, b, agg, moa_layers=2).ask("2+2?", strategy="moa")
    assert v.answer == "4" and v.confidence == pytest.approx(2 / 3)
    assert any("aggregator agg failed (timeout)" in n for n in v.notes)


# debate ------------------------------------------------------------------------------------
async def test_debate_stops_once_heads_converge_in_round_1() -> None:
    a = head("a", "Answer: 4", "Answer: 4")
    b = head("b", "Answer: 5", "You are right, Answer: 4")
    c = head("c", "Answer: 4", "Answer: 4", "never asked")
    v = await make(a, b, c, debate_rounds=3).ask("2+2?", strategy="debate")
    assert v.answer.endswith("Answer: 4") and v.confidence == 1.0
    assert [r["round"] for r in v.rounds] == ["answers", "round 1"]
    assert "debate converged after round 1" in v.notes
    assert v.head_calls == 6 and len(c.replies) == 1
    revise = b.seen[1]
    assert revise[-2] == Message("assistant", "Answer: 5")  # its own answer first
    assert "Answer: 4" in revise[-1].content and "Answer: 5" not in revise[-1].content
    assert len(v.votes) == 3 and all(x.won for x in v.votes)


async def test_debate_that_agrees_at_once_costs_no_rounds_and_one_that_never_does_votes() -> None:
    v = await make(head("a", "7"), head("b", "7")).ask("3+4?", strategy="debate")
    assert v.head_calls == 2 and "debate converged after the answers" in v.notes
    stubborn = make(head("a", "1", "1", "1"), head("b", "2", "2", "2"), head("c", "1", "1", "1"))
    v = await stubborn.ask("?", strategy="debate", params=None)
    assert v.answer == "1" and len(v.rounds) == 3 and v.head_calls == 9
    assert "did not converge in 2 rounds" in " ".join(v.notes)


# clone_dispatch ----------------------------------------------------------------------------
async def test_clone_dispatch_samples_one_head_and_votes() -> None:
    best = head("best", "Answer: 9", "Answer: 8", "Answer: 9", "Answer: 9", "Answer: 7",
                quality=8.0, temperature=0.0)  # fmt: skip
    other = head("other", "never asked")
    v = await make(best, other, clone_samples=5).ask("4+5?", strategy="clone_dispatch")
    assert v.answer == "Answer: 9" and v.confidence == pytest.approx(3 / 5)
    assert [x.head for x in v.votes] == ["best"] * 5 and other.seen == []
    assert best.params is not None and best.params.temperature == 0.7  # greedy clones agree
    assert any("temperature 0.7" in n for n in v.notes) and v.head_calls == 5


# early stop through the selector -----------------------------------------------------------
async def test_auto_asks_the_cheapest_heads_first_and_skips_the_rest_when_they_agree() -> None:
    fast = head("fast", "Answer: 12", speed=9.0)
    quick = head("quick", "12", speed=8.0)
    slow = head("slow", "13", speed=2.0)
    pricey = head("pricey", "13", speed=9.5, cost_in_per_1k=1.0)
    c = make(pricey, fast, quick, slow)
    v = await c.ask("What is 5 + 7?", strategy="auto")
    assert v.strategy == "vote" and v.chosen_model == "courier"
    assert slow.seen == [] and pricey.seen == [] and v.head_calls == 2
    assert any(n.startswith("early stop: fast, quick agreed") for n in v.notes)
    assert v.route is not None and v.route["heads"] == ["pricey", "fast", "quick", "slow"]
    assert any("early stop" in r for r in v.route["reasons"])

    fast.enqueue("Answer: 12")
    quick.enqueue("11")  # disagreement: everyone is asked
    v = await c.ask("What is 5 + 7?", strategy="auto")
    assert v.head_calls == 4 and not any("early" in n for n in v.notes)
    # everyone asked: the ballot keeps catalogue order, so ties break as without early stop
    assert [x.head for x in v.votes] == ["pricey", "fast", "quick", "slow"]
    assert "swarm_early_stop_total 1.0" in c.metrics.render().decode()


async def test_auto_lets_a_sure_head_answer_alone_once_it_knows_how_sure_it_usually_is() -> None:
    """Certainty is relative to the head's own history in the domain: until MIN_SAMPLES
    first-round answers are seen, early stop needs two heads to agree; after, the first head
    settles a question alone when its certainty is within its top share of answers."""
    from council.routing.certainty import MIN_SAMPLES

    first = head("first", speed=9.0)
    b, c = head("b", speed=5.0), head("c", speed=4.0)
    council = make(first, b, c, early_stop_alone_share=0.5)
    for i in range(MIN_SAMPLES):  # full ballots teach the router first's usual certainty
        first.enqueue((f"Answer: {i}", -0.1 * i))
        b.enqueue(f"Answer: {i}")
        c.enqueue(f"Answer: {i}")
        await council.ask(f"What is {i} + 0?", strategy="vote")
    # half its answers were at least -1.4 sure: at -0.2 it is sure, so it answers alone
    first.enqueue(("Answer: 7", -0.2))
    v = await council.ask("What is 3 + 4?", strategy="auto")
    assert v.head_calls == 1 and v.answer == "Answer: 7" and len(b.seen) == MIN_SAMPLES
    assert any(n.startswith("early stop: first was sure (mean token logprob -0.200 >= -1.400)")
               for n in v.notes)  # fmt: skip
    assert v.route is not None and v.route["stop_logprob"] == pytest.approx(-1.4)
    assert v.votes[0].logprob == -0.2
    # unsure (-2.5 is in its bottom half): everyone is asked and the ballot decides
    first.enqueue(("Answer: 8", -2.5))
    b.enqueue("Answer: 7")
    c.enqueue("Answer: 7")
    v = await council.ask("What is 3 + 4?", strategy="auto")
    assert v.head_calls == 3 and v.answer == "Answer: 7" and not any("early" in n for n in v.notes)
    # a head that never reports certainty keeps agreement-based early stop
    plain = make(head("x", "5", speed=9.0), head("y", "5"), head("z", "6"))
    v = await plain.ask("What is 2 + 3?", strategy="auto")
    assert v.head_calls == 2 and v.route is not None and v.route["stop_logprob"] is None


# every surface -----------------------------------------------------------------------------
def test_strategies_and_hints_from_vote_and_v1() -> None:
    from fastapi.testclient import TestClient

    from council.server import create_app

    class Always(Reactive):
        """Answers 12 to questions, and ranks when shown responses to review."""

        async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
            review = "Response A:" in messages[-1].content
            self.replies.extend([prefer("Answer: 12") if review else "Answer: 12"] * n)
            return await super().complete(messages, n=n, params=params)

    heads = [Always(head(f"h{i}").spec, []) for i in range(3)]
    c = make(*heads)
    with TestClient(create_app(c.settings, c)) as client:
        r = client.post("/vote", json={"prompt": "What is 5 + 7?", "strategy": "auto",
                                       "tier": "small", "max_cost_usd": 1.0})  # fmt: skip
        meta = r.json()["meta"]
        assert r.status_code == 200 and meta["strategy"] == "vote"
        assert meta["chosen_model"] == "courier" and meta["route"]["requested"] == "auto"
        assert meta["route"]["reasons"] and meta["head_calls"] == 2 and len(meta["votes"]) == 2
        bad = client.post("/vote", json={"prompt": "x", "tier": "huge"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "tier"
        body = {"model": "council", "strategy": "rank",
                "messages": [{"role": "user", "content": "What is 5 + 7?"}]}  # fmt: skip
        meta = client.post("/v1/chat/completions", json=body).json()["council"]
        assert meta["strategy"] == "rank" and [r["round"] for r in meta["rounds"]] == [
            "answers", "reviews", "chairman"]  # fmt: skip
        assert len(meta["votes"]) == 3 and meta["head_calls"] == 7
