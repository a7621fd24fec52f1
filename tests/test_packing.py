"""Packed Linear layers (heads/packing.py) on a tiny random Llama: fp32 packing computes what
nn.Linear does; bf16 packing (`weight_dtype`) keeps fp32 activations, stays within bf16's
precision of the fp32 model, and carries adapters in a mixed batch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import torch

from council.config import load_settings
from council.errors import ConfigError
from council.heads.continuous import LocalModel
from council.heads.engine import Row, load_weights
from council.heads.packing import PackedLinear, has_fast_bf16, packed_dtype
from council.types import Message

IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20]])


def logits_of(model: Any) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=IDS).logits


def packed_layers(model: Any) -> list[PackedLinear]:
    return [m for m in model.modules() if isinstance(m, PackedLinear)]


def test_fp32_packing_changes_only_summation_order(tiny_model_dir: Path) -> None:
    plain = logits_of(load_weights(tiny_model_dir, threads=1, pack=False)[1])
    model = load_weights(tiny_model_dir, threads=1, pack=True)[1]
    layers = packed_layers(model)
    assert layers and all(m.packed.dtype == torch.float32 for m in layers)
    assert torch.allclose(logits_of(model), plain, atol=1e-5)


def test_bf16_layers_keep_fp32_activations_within_bf16_precision(tiny_model_dir: Path) -> None:
    plain = logits_of(load_weights(tiny_model_dir, threads=1, pack=False)[1])
    model = load_weights(tiny_model_dir, threads=1, pack=True, weight_dtype="bfloat16")[1]
    layers = packed_layers(model)
    assert layers and all(m.packed.dtype == torch.bfloat16 for m in layers)
    assert all(m.weight.dtype == torch.float32 for m in layers)  # PEFT and training use these
    got = logits_of(model)
    assert got.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: ~0.4 % per rounding, a few layers deep
    error = (got - plain).norm() / plain.norm()
    assert 0 < error < 0.05, f"relative error {error:.4f}"
    cosine = torch.nn.functional.cosine_similarity(got.flatten(), plain.flatten(), dim=0)
    assert cosine > 0.999


def test_a_bf16_layer_adds_its_bias_in_fp32() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(3, 5, 64)
    want = layer(x)
    layer.__class__ = PackedLinear
    layer.pack(torch.bfloat16)  # type: ignore[operator]
    got = layer(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)


def test_auto_is_bf16_exactly_where_the_cpu_multiplies_bf16_in_hardware() -> None:
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    words = set(flags.read_text().split())
    assert has_fast_bf16() == bool({"amx_tile", "avx512_bf16"} & words)
    assert packed_dtype("auto") == (torch.bfloat16 if has_fast_bf16() else torch.float32)
    assert packed_dtype("float32") == torch.float32
    assert packed_dtype("bfloat16") == torch.bfloat16


def test_bf16_without_packing_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_WEIGHT_DTYPE", "bfloat16")
    monkeypatch.setenv("COUNCIL_PACK_WEIGHTS", "false")
    with pytest.raises(ConfigError, match="pack_weights = true"):
        load_settings()


async def test_adapters_ride_on_bf16_layers_in_one_mixed_batch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from tests.test_engine import save_random_adapters

    engine = LocalModel(tiny_model_dir, window_ms=1, weight_dtype="bfloat16")
    try:
        await save_random_adapters(engine, tmp_path)
        ids = await engine.encode_async([Message("user", "What is 2 + 2?")])
        rows = [Row(ids, max_new_tokens=10, adapter=a) for a in (None, "v1", "v2")]
        texts = [r.text for r in await engine.generate(rows)]
        assert len(set(texts)) == 3  # base, v1 and v2 each answer their own way
        assert all(m.packed.dtype == torch.bfloat16 for m in packed_layers(engine.model))
    finally:
        engine.close()
        await asyncio.sleep(0)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_setting_reaches_the_engine_and_health_shows_it(
    tiny_model_dir: Path, tmp_path: Path, dtype: str
) -> None:
    from fastapi.testclient import TestClient

    from council.server import create_app
    from tests.helpers import local_specs, settings_with

    s = settings_with(local_specs(tiny_model_dir, 2, max_tokens=4), weight_dtype=dtype,
                      data_dir=tmp_path)  # fmt: skip
    ask = {"model": "council", "messages": [{"role": "user", "content": "2+2?"}]}
    with TestClient(create_app(s)) as client:
        assert client.post("/v1/chat/completions", json=ask).status_code == 200
        [model] = client.get("/health").json()["models"]
    assert model["weight_dtype"] == dtype
