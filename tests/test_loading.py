"""Two models loading at once on two threads, as a server starting SmolLM2 and Gemma heads
together does (each model loads on its own executor): both come back whole."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from council.heads.engine import load_weights
from tests.test_gemma import build_tiny_gemma


@pytest.fixture(scope="module")
def two_families(tiny_model_dir: Path, smollm2_dir: Path, tmp_path_factory: Any) -> list[Path]:
    return [tiny_model_dir, build_tiny_gemma(smollm2_dir, tmp_path_factory.mktemp("gemma"))]


def logits_of(model: Any) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits


def test_models_loaded_on_threads_at_once_equal_models_loaded_alone(
    two_families: list[Path],
) -> None:
    alone = [logits_of(load_weights(p, threads=1, pack=True)[1]) for p in two_families]
    paths = two_families * 2  # each family twice: four loads at once
    for _ in range(3):  # unguarded, the first round already failed (meta tensors, untied lm_head)
        with ThreadPoolExecutor(len(paths)) as pool:
            jobs = [pool.submit(load_weights, p, threads=1, pack=True) for p in paths]
            models = [job.result(timeout=300)[1] for job in jobs]  # hang guard; raises its error
        for i, model in enumerate(models):
            assert model.lm_head.weight.device.type == "cpu"
            assert torch.equal(logits_of(model), alone[i % 2]), f"load {i} differs from alone"
