"""Pre-packed Linear layers for CPU inference, in fp32 or bf16.

A batched decode step multiplies a few rows by every weight matrix. Plain fp32 GEMM re-packs
each weight on every call, so five rows cost about twice one row; with weights packed once
into oneDNN's layout five rows cost ~1.4x one row (measured on SmolLM2-135M, 1 thread,
benchmarks/council_overhead.py). Exact fp32 arithmetic, only summation order differs.

bf16 (`weight_dtype = "bfloat16"`) packs a bf16 copy instead and rounds each layer's input to
bf16; the output comes back as fp32, so norms, attention and the residual stream stay fp32.
On a CPU with AMX a 40-row decode step runs ~1.5x faster (benchmarks/int8_probe.py,
benchmarks/engine_load.py --bf16), but a row's greedy text can then depend on what else is in
its batch: bf16 rounding turns the fp32 kernels' last-bit differences into visible ones.

The packed copy lives beside the original weight (PEFT, tied embeddings and training still
use the original), so packing costs one extra copy of the Linear weights in memory (half one
in bf16). Inference only: if the base weights change, call pack_linears again.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)
BATCH_HINT = 8  # oneDNN picks its blocking for about this many rows


class PackedLinear(torch.nn.Linear):
    """nn.Linear whose forward uses a oneDNN-packed copy of its weight (fp32 or bf16)."""

    packed: torch.Tensor
    packed_dtype: torch.dtype = torch.float32

    def pack(self, dtype: torch.dtype | None = None) -> None:
        self.packed_dtype = dtype or self.packed_dtype
        weight = self.weight.detach().to(self.packed_dtype)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, BATCH_HINT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":
            return super().forward(x)
        if self.packed_dtype == torch.float32:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        low = x.to(self.packed_dtype)
        out = torch.ops.mkldnn._linear_pointwise(low, self.packed, None, "none", [], "").float()
        return out if self.bias is None else out + self.bias  # the bias added in fp32


def can_pack() -> bool:
    return bool(torch.backends.mkldnn.is_available()) and hasattr(
        torch.ops.mkldnn, "_reorder_linear_weight"
    )


def has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles or AVX512-BF16)."""
    cpu = torch.cpu
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def packed_dtype(setting: str) -> torch.dtype:
    """The dtype `weight_dtype` asks for on this CPU: "auto" is bf16 where the CPU multiplies
    bf16 in hardware, else fp32; "bfloat16" without that hardware still serves, slowly."""
    if setting == "float32":
        return torch.float32
    fast = has_fast_bf16()
    if setting == "bfloat16" and not fast:
        log.warning(
            "weight_dtype = bfloat16 on a CPU without AMX or AVX512-BF16: bf16 layers are "
            "emulated and slower than fp32 here; set weight_dtype = float32 (or auto)"
        )
    return torch.bfloat16 if setting == "bfloat16" or fast else torch.float32


def layers_dtype(model: torch.nn.Module) -> str:
    """What a loaded model's Linear layers multiply in: "bfloat16" or "float32"."""
    for module in model.modules():
        if isinstance(module, PackedLinear):
            return str(module.packed_dtype).removeprefix("torch.")
    return "float32"


def pack_linears(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Turn every plain fp32 CPU nn.Linear into a PackedLinear of `dtype` in place (packed
    ones are re-packed as they were); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.dtype == torch.float32:
            module.__class__ = PackedLinear
            module.pack(dtype)  # type: ignore[operator]
            count += 1
        elif isinstance(module, PackedLinear):
            module.pack()
            count += 1
    return count
