"""The pure parts of routing: the StrategySelector, ranking parsing and aggregation, and
CloudRetry's rules."""

from __future__ import annotations

import random

import pytest

from council.ballot.ranking import aggregate, layout, parse_ranking
from council.config import HeadSpec
from council.routing.escalation import escalation_reason, provider_tiers
from council.routing.selector import Hints, Policy, StrategySelector

SMALL = [HeadSpec(id=f"s{i}", speed=9 - i) for i in range(4)]
LARGE = [HeadSpec(id="big", tier="large", quality=9.0, cost_in_per_1k=1.0, cost_out_per_1k=2.0)]


def choose(prompt: str, task: str, heads: list[HeadSpec] = SMALL + LARGE, **kw):  # type: ignore[no-untyped-def]
    return StrategySelector().choose(prompt, task, heads, **kw)


def test_selector_routes_by_task_type_and_explains_itself() -> None:
    math = choose("What is 19 * 17?", "math")
    assert (math.strategy, math.tier, math.chosen_model) == ("vote", "small", "courier")
    assert math.heads == ["s0", "s1", "s2", "s3"] and math.early_stop == 2
    assert any("early stop" in r for r in math.reasons) and math.predicted_calls == 4
    assert choose("Write a haiku about rain", "creative").strategy == "rank"
    assert choose("def f(): fix this python bug", "code").strategy == "best_of_n"
    plan = choose("Why is the sky blue?", "reasoning")
    assert plan.strategy == "vote" and plan.to_dict()["chosen_model"] == "courier"


def test_low_map_confidence_brings_the_master_tier_and_debate() -> None:
    plan = choose("Why do ships float?", "reasoning", confidence=0.2)
    assert plan.tier == "large" and plan.chosen_model == "master" and plan.heads == ["big"]
    assert plan.strategy == "clone_dispatch"  # one master head: sampled, then voted
    assert any("confidence for reasoning is 0.20" in r for r in plan.reasons)
    weak = choose("Why do ships float?", "reasoning", heads=SMALL, confidence=0.2)
    assert weak.tier == "small" and weak.strategy == "debate"
    assert any("no large heads" in r for r in weak.reasons)
    sure = choose("What is 2 + 2?", "math", confidence=0.95)
    assert sure.early_stop == 1 and any("is high" in r for r in sure.reasons)


def test_long_code_prompts_go_to_the_master_unless_the_budget_says_no() -> None:
    prompt = "Refactor this python code:\n" + "x = 1\n" * 2000
    plan = choose(prompt, "code")
    assert plan.tier == "large" and plan.predicted_cost_usd > 0
    broke = choose(prompt, "code", budget_usd=0.0001)
    assert broke.tier == "small" and broke.strategy == "vote"
    assert any("exceeds" in r for r in broke.reasons) and any("courier" in r for r in broke.reasons)
    capped = choose(prompt, "code", hints=Hints(max_cost_usd=0.0))
    assert capped.tier == "small"


def test_hints_steer_the_plan() -> None:
    assert choose("hi", "general", hints=Hints(tier="large")).tier == "large"
    plan = choose("hi", "general", hints=Hints(strategy="moa"))
    assert plan.strategy == "moa" and plan.early_stop is None
    assert any("'moa' requested" in r for r in plan.reasons)
    two = choose("hi", "general", hints=Hints(num_models=2))
    assert len(two.heads) == 2 and two.early_stop is None  # two heads: nothing to skip
    no_large = choose("hi", "general", heads=SMALL, hints=Hints(tier="large"))
    assert no_large.tier == "small" and "no such head" in no_large.reasons[0]


def test_explicit_plans_keep_every_head() -> None:
    plan = StrategySelector(Policy()).explicit("rank", "general", SMALL + LARGE, "q")
    assert plan.tier is None and plan.chosen_model == "council" and len(plan.heads) == 5
    assert plan.predicted_calls == 11 and plan.requested == "rank"


def test_parse_ranking_is_robust_and_says_what_it_could_not_read() -> None:
    shown = layout(0, [0, 1, 2, 3], random.Random(3))
    labels = shown.labels()
    cases = {
        "Thoughts...\nFINAL RANKING:\n1. Response C\n2. Response A\n3. Response B": "CAB",
        "**FINAL RANKING:** C > A > B\n\nI think A is close": "CAB",
        "final ranking - Response (B), Response (C), Response (A)": "BCA",
        "1. B\n2. C\n3. A": "BCA",  # no marker, but a numbered list
    }
    for text, order in cases.items():
        r = parse_ranking(text, shown, "x")
        assert r.ok and r.ranks is not None, text
        assert [labels[x] for x in order] == sorted(r.ranks, key=lambda i: r.ranks[i]), text  # type: ignore[index]
    partial = parse_ranking("FINAL RANKING: Response B", shown, "x")
    assert partial.ranks == {labels["B"]: 1.0, labels["A"]: 2.5, labels["C"]: 2.5}
    assert "unranked" in (partial.problem or "")
    for bad in ("I like them all", "FINAL RANKING: none of them", "FINAL RANKING: Response F"):
        r = parse_ranking(bad, shown, "x")
        assert not r.ok and r.problem, bad


def test_aggregate_is_mean_rank_with_unranked_last() -> None:
    a = layout(0, [0, 1, 2], random.Random(0))
    b = layout(1, [0, 1, 2], random.Random(0))
    ra = parse_ranking("FINAL RANKING: " + ", ".join(f"Response {x}" for x in "AB"), a, "a")
    rb = parse_ranking("nothing", b, "b")
    standings = aggregate([0, 1, 2], [ra, rb])
    assert standings[-1].index == 0 and standings[-1].mean_rank is None  # nobody ranked a
    assert [s.mean_rank for s in standings[:2]] == [1.0, 2.0]


def test_cloud_retry_rules() -> None:
    specs = [
        HeadSpec(id="l"),
        HeadSpec(id="v", provider="vllm"),
        HeadSpec(id="o", provider="openai", kind="openai", base_url="https://api.openai.com/v1"),
    ]
    tiers = provider_tiers(specs, ["local", "mistral", "openai", "vllm"])
    assert [(t.provider, t.cloud) for t in tiers] == [
        ("local", False),
        ("openai", True),
        ("vllm", False),
    ]
    assert escalation_reason(0.9, None, below=0.5) is None
    assert escalation_reason(0.4, None, below=0.5) == "confidence 0.40 < 0.5"
    assert escalation_reason(1.0, False, below=0.5) == "verifier rejected the answer"
    assert escalation_reason(1.0, False, below=0.5, on_verifier=False) is None


@pytest.mark.parametrize(
    ("url", "cloud"),
    [
        ("https://api.openai.com/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("http://192.168.1.20:8000/v1", False),
        ("http://gpu-box.local:8000/v1", False),
        ("http://localhost:11434/v1", False),
    ],
)
def test_a_head_is_cloud_when_its_host_is_public(url: str, cloud: bool) -> None:
    assert HeadSpec(id="x", kind="openai", base_url=url).is_cloud is cloud
    assert HeadSpec(id="x", kind="openai", base_url=url, cloud=True).is_cloud
    assert not HeadSpec(id="x").is_cloud


def test_strategies_declare_the_facts_routing_reads() -> None:
    from council.routing.certainty import NOT_FIRST_ROUND
    from council.routing.selector import calls_for
    from council.strategies import REGISTRY, STRATEGIES

    assert list(STRATEGIES) == list(REGISTRY)
    p = Policy(debate_rounds=2, moa_layers=3, clone_samples=7)
    calls = {name: calls_for(name, 4, p) for name in REGISTRY}
    assert calls == {"vote": 4, "weighted": 4, "consensus": 4, "best_of_n": 5,
                     "specialization": 4, "rank": 9, "moa": 13, "debate": 12,
                     "clone_dispatch": 7, "auto": 4}  # fmt: skip
    assert calls_for("rank", 1, p) == 1 and calls_for("not-registered", 3, p) == 3
    later = {name for name, f in REGISTRY.items() if not f.first_round}
    assert later == {"debate", "moa", "clone_dispatch"}
    assert set(NOT_FIRST_ROUND) == later
    assert {name for name, f in REGISTRY.items() if f.early_stop} == {"vote", "weighted"}
