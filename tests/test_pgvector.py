"""pgvector's HNSW behind the FAISS interface: the store writes embeddings with their rows, and a
search filtered by user finds that user's nearest rows by cosine, from any connection."""

from __future__ import annotations

import numpy as np

from council.memory.filters import memory_where
from council.memory.pgvector_index import KIND, PgVectorTable
from council.storage import open_db


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_filtered_by_user_matches_exact_cosine(postgres_url: str) -> None:
    rng = np.random.default_rng(0)
    store = open_db(postgres_url)
    vecs = unit(rng, 300, 16)
    ids = [store.add_memory(f"m{i}", v, user="ana" if i % 3 else "bob") for i, v in enumerate(vecs)]
    table = PgVectorTable(store, "memories", 16, "test:16")
    other = PgVectorTable(open_db(postgres_url), "memories", 16, "test:16")  # another replica
    assert table.index.info.count == 300 and table.index.info.kind == KIND
    q = unit(rng, 1, 16)[0]
    ana = store.memory_ids(user="ana")
    hits = other.search(q, 5, ana)
    rows = {i: v for i, v in zip(ids, vecs, strict=True)}
    exact = sorted(ana.tolist(), key=lambda i: -float(rows[i] @ q))[:5]
    assert [h[0] for h in hits] == exact  # 300 rows: the planner may scan exactly; same answer
    assert all(abs(s - float(rows[i] @ q)) < 1e-5 for i, s in hits)
    assert set(h[0] for h in table.search(q, 50, None)) - set(ana.tolist())  # unfiltered: bob too
    assert table.search(q, 5, np.zeros(0, dtype=np.int64)) == []
    # recall's filters run inside pgvector's query: the same rows as the id list, and none of bob's
    assert other.search(q, 5, where=memory_where(user="ana")) == hits
    assert other.search(q, 5, where=memory_where(user="nobody")) == []
    bob = other.search(q, 120, where=memory_where(user="bob", success="not_failed"))
    assert len(bob) == 100 and {i for i, _ in bob} == set(store.memory_ids(user="bob").tolist())


def test_the_hnsw_index_is_built_for_the_embedders_dimension(postgres_url: str) -> None:
    store = open_db(postgres_url)
    PgVectorTable(store, "chunks", 8, "test:8")
    [row] = store.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_hnsw_8'")
    assert "hnsw" in row[0] and "vector_cosine_ops" in row[0]
