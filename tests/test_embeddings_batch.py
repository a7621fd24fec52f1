"""Concurrent encodes gathered into one model call (council/microbatch.py) give every caller the
vectors it would have had alone, and a request encodes each of its texts once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from council.council import Council
from council.embeddings import Embedder
from council.microbatch import MicroBatcher
from tests.helpers import settings_with
from tests.test_memory import Echo

TEXTS = [
    "hi",
    "What is 2 + 2?",
    "Q: Where do I live?\nA: You told me you live in Lisbon, near the river.",
    "Ünïcödé, emoji 🚀 and punctuation — all in one line!",
    " ".join(["The Zephyr pump must be descaled every 90 days, or its warranty lapses."] * 30),
    "Which port does Council use by default?",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm", batch_ms=200)  # a wide window: the test's threads all join


def all_at_once(fn: Callable[[str], Any], items: list[str]) -> list[Any]:
    """fn(item) for every item, each in its own thread, released together."""
    start = threading.Barrier(len(items))

    def run(item: str) -> Any:
        start.wait()
        return fn(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(run, items))


def counting(batcher: MicroBatcher) -> list[int]:
    """Record the size of each model call the batcher makes."""
    sizes: list[int] = []
    encode = batcher.encode

    def counted(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return encode(texts)

    batcher.encode = counted
    return sizes


def test_batched_encodes_equal_single_ones(embedder: Embedder) -> None:
    alone = np.stack([embedder._encode_now([t])[0] for t in TEXTS])
    sizes = counting(embedder.batcher)
    together = np.stack(all_at_once(lambda t: embedder.encode([t])[0], TEXTS))
    assert sum(sizes) == len(TEXTS) and len(sizes) < len(TEXTS)  # some shared a model call
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_a_batch_already_skips_the_queue(embedder: Embedder) -> None:
    sizes = counting(embedder.batcher)
    many = [f"question number {i}" for i in range(40)]
    vectors = embedder.encode(many)
    assert vectors.shape == (40, embedder.dim) and sizes == []
    np.testing.assert_allclose(vectors[7], embedder.encode([many[7]])[0], atol=1e-5)


def test_only_the_caller_whose_texts_fail_sees_the_error() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        if "bad" in texts:
            raise ValueError("cannot encode 'bad'")
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = MicroBatcher(encode, window_s=0.2)
    sizes = counting(batcher)

    def ask(text: str) -> Any:
        try:
            return float(batcher([text, text + "!"])[1, 0])
        except ValueError as exc:
            return str(exc)

    got = all_at_once(ask, ["a", "bad", "ccc"])
    assert got == [2.0, "cannot encode 'bad'", 4.0]
    assert sizes[0] > 2  # they were batched first, then retried one by one


async def test_a_request_encodes_each_of_its_texts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The question once (facts, past answers and knowledge share it), the exchange once."""
    (tmp_path / "faq.txt").write_text("Council's default port is 8000 on the loopback address.")
    embedder = Embedder("minilm")
    heads = [Echo("a", "8000"), Echo("b", "8000")]
    settings = settings_with([h.spec for h in heads], memory=True, embedder="minilm",
                             data_dir=tmp_path / "d")  # fmt: skip
    council = Council(settings, heads=list(heads), embedder=embedder)
    assert council.knowledge is not None and council.facts is not None
    council.knowledge.ingest([tmp_path / "faq.txt"])
    past = "Q: Which port does Council listen on by default?\nA: 8000"
    council.memory.add(past, {"user": "ana", "role": "exchange"})  # type: ignore[union-attr]
    seen: list[str] = []
    model = embedder._load()
    encode = model.encode

    def recorded(texts: list[str], **kw: Any) -> Any:
        seen.extend(texts)
        return encode(texts, **kw)

    monkeypatch.setattr(model, "encode", recorded)
    question = "Which port does Council use by default?"
    v = await council.ask(question, user="ana")
    assert {r["kind"] for r in v.recalled} >= {"knowledge", "memory"}  # every lookup ran
    assert seen.count(question) == 1
    assert len(seen) == 2 and seen[1].startswith(f"Q: {question}\nA: ")
    await council.close()


def test_every_caller_gets_its_rows_when_more_wait_than_one_call_takes() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        return np.array([[float(t)] for t in texts], dtype=np.float32)

    batcher = MicroBatcher(encode, window_s=0.01, max_texts=3)
    sizes = counting(batcher)
    items = [str(i) for i in range(24)]
    with ThreadPoolExecutor(len(items)) as pool:  # a hang guard: a lost job never returns
        rows = [f.result(timeout=60) for f in [pool.submit(batcher, [i, i]) for i in items]]
    assert [float(r[0, 0]) for r in rows] == [float(i) for i in items]
    assert sum(sizes) == 48 and max(sizes) <= 4 and len(sizes) < 24
