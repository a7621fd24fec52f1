"""VectorIndex on real FAISS: exact results, filters, persistence, corruption, background HNSW."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from council.memory.index_files import IndexCorrupt
from council.memory.vectors import VectorIndex

DIM = 64


def clustered(n: int, seed: int = 0, dim: int = DIM, clusters: int = 40) -> np.ndarray:
    """Unit vectors in Gaussian clusters: structured like embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_top(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = vectors @ query
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def sparse_ids(n: int) -> np.ndarray:
    """Increasing ids with gaps, too large to pass for row numbers (or for a bitmap selector)."""
    return np.arange(n, dtype=np.int64) * 7 + 2**40


def dense_ids(n: int) -> np.ndarray:
    """SQLite-like rowids from 1 (so still not row numbers): filters on them use a bitmap."""
    return np.arange(n, dtype=np.int64) + 1


def built(
    tmp_path: Path, n: int, kind: str, ids: np.ndarray | None = None
) -> tuple[VectorIndex, np.ndarray]:
    vectors = clustered(n)
    threshold = 1 if kind == "hnsw" else n + 1
    index = VectorIndex(tmp_path / "v.faiss", DIM, approx_threshold=threshold)
    index.rebuild(sparse_ids(n) if ids is None else ids, vectors)
    assert index.info.kind == kind
    return index, vectors


# How a filtered search runs: exactly over the allowed rows (small sets), or through a FAISS
# selector (IDSelectorBatch for sparse ids, IDSelectorBitmap for dense ones) on the index.
FILTER_PATHS = {"exact": (sparse_ids, None), "batch": (sparse_ids, 0), "bitmap": (dense_ids, 0)}


@pytest.fixture(scope="module")
def hnsw_5k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[VectorIndex, np.ndarray]]:
    """Built once per id style: HNSW over 5,000 vectors is the slow part of the filter tests."""
    return {
        make.__name__: built(tmp_path_factory.mktemp(make.__name__), 5000, "hnsw", make(5000))
        for make in (sparse_ids, dense_ids)
    }


def filtered(
    request_path: str, kind: str, tmp_path: Path, prebuilt: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    make_ids, exact_max = FILTER_PATHS[request_path]
    ids = make_ids(5000)
    if kind == "hnsw":
        index, vectors = prebuilt[make_ids.__name__]
    else:
        index, vectors = built(tmp_path, 5000, kind, ids)
    if exact_max is not None:
        monkeypatch.setattr(index, "_exact_max", exact_max)
    return index, vectors, ids


def test_flat_top_k_equals_numpy_brute_force(tmp_path: Path) -> None:
    index, vectors = built(tmp_path, 1000, "flat")
    ids = sparse_ids(1000)
    for query in clustered(20, seed=1):
        hits = index.search(query, 10)
        assert [i for i, _ in hits] == brute_top(ids, vectors, query, 10)
        expected = np.sort(vectors @ query)[::-1][:10]
        np.testing.assert_allclose([s for _, s in hits], expected, rtol=1e-5, atol=1e-5)


def test_ids_round_trip(tmp_path: Path) -> None:
    index, vectors = built(tmp_path, 500, "flat")
    ids = sparse_ids(500)
    for row in (0, 123, 499):
        (top, score), *_ = index.search(vectors[row], 3)
        assert top == ids[row] and score == pytest.approx(1.0, abs=1e-5)
    assert index.info.count == 500 and index.info.max_id == ids[-1]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_then_load_gives_identical_results(tmp_path: Path, kind: str) -> None:
    index, _ = built(tmp_path, 1500, kind)
    index.save()
    again = VectorIndex(tmp_path / "v.faiss", DIM)
    assert again.load() == index.info
    allowed = sparse_ids(1500)[::3]
    for query in clustered(10, seed=2):
        assert again.search(query, 5) == index.search(query, 5)
        assert again.search(query, 5, allowed) == index.search(query, 5, allowed)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind


def test_missing_file_loads_as_none(tmp_path: Path) -> None:
    assert VectorIndex(tmp_path / "absent.faiss", DIM).load() is None


def _rewrite(path: Path, data: bytes, *, fix_sidecar: bool) -> None:
    path.write_bytes(data)
    if fix_sidecar:  # so FAISS itself, not the size check, must notice
        sidecar = path.with_name(path.name + ".json")
        meta = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps(meta | {"index_bytes": len(data)}))


@pytest.mark.parametrize("fix_sidecar", [True, False])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_file_is_corrupt(tmp_path: Path, damage: str, fix_sidecar: bool) -> None:
    index, _ = built(tmp_path, 300, "hnsw")
    index.save()
    good = index.path.read_bytes()
    bad = np.random.default_rng(0).bytes(len(good)) if damage == "garbage" else good[:-1000]
    _rewrite(index.path, bad, fix_sidecar=fix_sidecar)
    with pytest.raises(IndexCorrupt, match="rebuilt from the store") as caught:
        VectorIndex(index.path, DIM).load()
    assert str(index.path) in str(caught.value)


@pytest.mark.parametrize(
    "change",
    [{"count": 299}, {"max_id": 5}, {"kind": "flat"}, {"dim": 32}, {"fingerprint": 7}, None],
)
def test_sidecar_disagreeing_with_index_is_corrupt(tmp_path: Path, change: dict | None) -> None:
    index, _ = built(tmp_path, 300, "hnsw")
    index.save()
    if change is None:
        index.sidecar.unlink()
    else:
        index.sidecar.write_text(json.dumps(json.loads(index.sidecar.read_text()) | change))
    with pytest.raises(IndexCorrupt, match="rebuilt from the store"):
        VectorIndex(index.path, DIM).load()


def test_index_of_another_dim_is_corrupt(tmp_path: Path) -> None:
    index, _ = built(tmp_path, 100, "flat")
    index.save()
    with pytest.raises(IndexCorrupt, match="64-d"):
        VectorIndex(index.path, 384).load()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("path", FILTER_PATHS)
def test_allowed_ids_gives_true_top_k_among_them(
    tmp_path: Path, kind: str, path: str, hnsw_5k: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, vectors, ids = filtered(path, kind, tmp_path, hnsw_5k, monkeypatch)
    mask = np.random.default_rng(3).random(5000) < 0.3
    matched = total = 0
    for query in clustered(20, seed=4):
        hits = [i for i, _ in index.search(query, 5, allowed_ids=ids[mask])]
        assert set(hits) <= set(ids[mask].tolist()) and len(hits) == 5
        truth = brute_top(ids[mask], vectors[mask], query, 5)
        matched, total = matched + len(set(hits) & set(truth)), total + 5
        if kind == "flat":
            assert hits == truth
    assert matched / total >= 0.95


@pytest.mark.parametrize("path", FILTER_PATHS)
def test_very_selective_filter_on_hnsw_loses_nothing(
    tmp_path: Path, path: str, hnsw_5k: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through FAISS, the filtered graph walk dead-ends and the exact fallback must step in.
    index, vectors, ids = filtered(path, "hnsw", tmp_path, hnsw_5k, monkeypatch)
    rng = np.random.default_rng(5)
    for query in clustered(30, seed=6):
        rows = rng.choice(5000, 3, replace=False)
        allowed = np.concatenate([ids[rows], [-5, ids[-1] + 2]])  # plus ids never stored
        hits = index.search(query, 5, allowed_ids=allowed)
        assert [i for i, _ in hits] == brute_top(ids[rows], vectors[rows], query, 5)
    assert index.search(vectors[0], 5, allowed_ids=np.array([0, ids[-1] + 1])) == []


def test_add_past_threshold_upgrades_in_background(tmp_path: Path) -> None:
    threshold, pool = 2000, 40_000
    vectors = clustered(pool, seed=7)
    ids = sparse_ids(pool)
    index = VectorIndex(tmp_path / "v.faiss", DIM, approx_threshold=threshold)
    index.add(ids[: threshold - 1], vectors[: threshold - 1])
    index.add(ids[threshold - 1 : threshold], vectors[threshold - 1 : threshold])  # crosses it
    assert index.info.kind == "flat"

    errors: list[str] = []
    done = threading.Event()

    def search_meanwhile() -> None:
        row = 0
        while not done.is_set():
            if index.search(vectors[row], 1)[0][0] != ids[row]:
                errors.append(f"row {row}")
            row = (row + 7) % threshold

    reader = threading.Thread(target=search_meanwhile)
    reader.start()
    # Keep adding (one at a time, like requests) until the swap, and a little past it, so
    # rows land in every phase: before the snapshot, during the build, during the replay.
    added, flat_searches, after_swap = threshold, 0, 0
    while added < pool and after_swap < 200:
        index.add(ids[added : added + 1], vectors[added : added + 1])
        flat = index.info.kind == "flat"
        flat_searches += flat
        after_swap += not flat
        assert index.search(vectors[added], 1)[0][0] == ids[added]
        added += 1
    done.set()
    reader.join()
    assert index.wait_upgrade(timeout=30)
    assert flat_searches > 0, "the build finished before any search could overlap it"
    assert after_swap > 0, f"the build outlasted {pool} adds"
    assert not errors
    info = index.info
    assert info.kind == "hnsw" and info.count == added and info.max_id == ids[added - 1]
    # Stored under the right id: an exact lookup restricted to that id scores its vector 1.0.
    for row in range(added):
        (found, score), *_ = index.search(vectors[row], 1, allowed_ids=ids[row : row + 1])
        assert found == ids[row] and score > 0.999, f"row {row} lost"
    # Reachable through the graph: a handful of HNSW nodes may be unreachable, not more.
    missed = sum(index.search(vectors[row], 1)[0][0] != ids[row] for row in range(added))
    assert missed <= added // 1000, f"{missed} of {added} not found by their own vector"


def test_rebuild_above_threshold_is_hnsw_at_once_and_takes_bulk_adds(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v.faiss", DIM, approx_threshold=2000)
    vectors, ids = clustered(3100), sparse_ids(3100)
    index.rebuild(ids[:2500], vectors[:2500])
    assert index.info.kind == "hnsw"
    index.add(ids[2500:], vectors[2500:])  # a bulk catch-up goes into the graph in slices
    assert index.info.count == 3100 and index.info.max_id == ids[-1]
    assert all(index.search(vectors[r], 1)[0][0] == ids[r] for r in range(2500, 3100))
    index.rebuild(sparse_ids(100), clustered(100))
    assert index.info.kind == "flat" and index.info.count == 100


def test_loading_a_big_flat_index_finishes_the_upgrade(tmp_path: Path) -> None:
    index, _ = built(tmp_path, 2500, "flat")
    index.save()
    again = VectorIndex(index.path, DIM, approx_threshold=2000)
    assert again.load() == index.info
    assert again.wait_upgrade(timeout=30) and again.info.kind == "hnsw"


def test_hnsw_recall_at_5_vs_flat(tmp_path: Path) -> None:
    vectors = clustered(4000, seed=8)
    ids = sparse_ids(4000)
    hnsw = VectorIndex(tmp_path / "h.faiss", DIM, approx_threshold=1)
    hnsw.rebuild(ids, vectors)
    flat = VectorIndex(tmp_path / "f.faiss", DIM)
    flat.rebuild(ids, vectors)
    queries = clustered(200, seed=9)
    found = sum(
        len({i for i, _ in hnsw.search(q, 5)} & {i for i, _ in flat.search(q, 5)}) for q in queries
    )
    assert found / (5 * len(queries)) >= 0.95


def test_fingerprint_round_trips(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path / "v.faiss", DIM, fingerprint="minilm-l6-v2@384")
    index.rebuild(sparse_ids(10), clustered(10))
    index.save()
    loaded = VectorIndex(index.path, DIM, fingerprint="something-else").load()
    assert loaded is not None and loaded.fingerprint == "minilm-l6-v2@384"


def test_bad_input_says_what_to_do(tmp_path: Path) -> None:
    index, vectors = built(tmp_path, 10, "flat")
    with pytest.raises(ValueError, match="max_id"):
        index.add(np.array([5]), vectors[:1])
    with pytest.raises(ValueError, match="unit-normalised"):
        index.add(np.array([2**41]), vectors[:1] * 2)
    with pytest.raises(ValueError, match="strictly increasing"):
        index.rebuild(np.array([3, 2]), vectors[:2])
    with pytest.raises(ValueError, match=r"shape \(64,\)"):
        index.search(vectors[:2], 1)


def test_paraphrase_finds_its_sentence_with_the_real_embedder(tmp_path: Path) -> None:
    from council.embeddings import Embedder

    sentences = [
        "The cat sat quietly on the warm windowsill.",
        "Quarterly revenue grew by twelve percent.",
        "Preheat the oven to 200 degrees before baking the bread.",
        "The train to Paris leaves from platform nine.",
        "Photosynthesis turns sunlight into chemical energy in plants.",
        "My laptop battery drains too fast when I watch videos.",
    ]
    embedder = Embedder("minilm")
    vectors = embedder.encode(sentences)
    index = VectorIndex(tmp_path / "v.faiss", vectors.shape[1], fingerprint="minilm")
    index.add(np.arange(1, len(sentences) + 1), vectors)
    query = embedder.encode(["How do plants make energy from light?"])[0]
    assert index.search(query, 1)[0][0] == 5
    query = embedder.encode(["Which platform does the Paris train depart from?"])[0]
    assert index.search(query, 1)[0][0] == 4
