"""Pure ballot functions: clustering (exact keys and embeddings), tallying, judging, tasks."""

from __future__ import annotations

import numpy as np
import pytest

from council.ballot.normalize import extract_answer
from council.ballot.rank import parse_best, render_candidates
from council.ballot.vote import cluster_answers, tally
from council.config import HeadSpec
from council.embeddings import Embedder
from council.routing.tasks import classify_task, pick_heads


def test_equal_keys_share_a_cluster_and_failures_have_none() -> None:
    ex = [extract_answer(t) for t in ("0.5", "1/2", "3")] + [None]
    assert cluster_answers(ex) == [0, 0, 1, None]


def test_tally_confidence_is_the_winners_share_of_answered_weight() -> None:
    t = tally([0, 0, 1, None], [1.0, 1.0, 1.0, 0.0])
    assert t.winner == 0 and t.confidence == pytest.approx(2 / 3) and t.winner_index == 0
    assert not t.unanimous and not t.split


def test_ties_go_to_the_heaviest_single_member_then_the_earliest() -> None:
    t = tally([0, 1], [1.0, 1.0])
    assert t.winner == 0 and t.split
    t = tally([0, 0, 1, 1], [1.0, 1.0, 0.5, 1.5])
    assert t.winner == 1 and t.winner_index == 3


def test_nothing_answered_gives_no_winner() -> None:
    t = tally([None, None], [0.0, 0.0])
    assert t.winner is None and t.confidence == 0.0


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def test_free_text_paraphrases_cluster_by_meaning(embedder: Embedder) -> None:
    texts = [
        "Paris is the capital city of France, known for the Eiffel Tower.",
        "The capital of France is Paris, home to the Eiffel Tower.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "France's capital city is Paris, where the Eiffel Tower stands.",
    ]
    ex = [extract_answer(t) for t in texts]
    assert all(e.key is None for e in ex)  # long texts: no exact key, meaning decides
    vectors = embedder.encode(texts)
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    clusters = cluster_answers(ex, vectors, threshold=0.7)
    assert clusters[0] == clusters[1] == clusters[3] != clusters[2]
    t = tally(clusters, [1.0] * 4, vectors)
    assert t.confidence == 0.75 and t.winner_index in (0, 1, 3)


def test_without_embeddings_free_text_only_matches_identically() -> None:
    texts = [
        "A long answer about many things, " * 3,
        "A long answer about many things, " * 3,
        "Another long answer about other things entirely.",
    ]
    assert cluster_answers([extract_answer(t) for t in texts]) == [0, 0, 1]


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("BEST: B", 3, 1),
        ("After comparing, best: (c)", 3, 2),
        ("**BEST: Response A**", 2, 0),
        ("Response B is the best answer here.", 2, 1),
        ("C", 3, 2),
        ("BEST: A ... actually BEST: B", 2, 1),  # the last verdict counts
        ("BEST: D", 3, None),  # no such response
        ("They are all fine.", 3, None),
        ("", 2, None),
    ],
)
def test_parse_best_reads_a_judge_robustly(text: str, n: int, expected: int | None) -> None:
    assert parse_best(text, n) == expected


def test_candidates_are_labelled_in_order() -> None:
    assert render_candidates(["x", "y"]) == "Response A:\nx\n\nResponse B:\ny"


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a Python function that reverses a list", "code"),
        ("What is 17 * 23?", "math"),
        ("How many apples are left if I eat 3 of 7?", "math"),
        ("Write a haiku about autumn", "creative"),
        ("Explain why the sky is blue", "reasoning"),
        ("Tell me about Lisbon", "general"),
    ],
)
def test_classify_task(prompt: str, task: str) -> None:
    assert classify_task(prompt) == task


def test_pick_heads_prefers_specialists_then_quality() -> None:
    specs = [
        HeadSpec(id="poet", quality=9, specializations=["creative"]),
        HeadSpec(id="coder", quality=6, specializations=["code"]),
        HeadSpec(id="coder2", quality=7, specializations=["code", "math"]),
        HeadSpec(id="generalist", quality=8),
    ]
    assert [s.id for s in pick_heads(specs, "code")] == ["coder2", "coder"]
    assert [s.id for s in pick_heads(specs, "code", 3)] == ["coder2", "coder", "poet"]
    assert [s.id for s in pick_heads(specs, "law", 1)] == ["poet"]
