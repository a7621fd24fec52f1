"""Pre-packed Linear layers for CPU inference.

A batched decode step multiplies a few rows by every weight matrix. Plain fp32 GEMM re-packs
each weight on every call, so five rows cost about twice one row; with weights packed once
into oneDNN's layout five rows cost ~1.4x one row (measured on SmolLM2-135M, 1 thread,
benchmarks/council_overhead.py). Exact fp32 arithmetic, only summation order differs.

The packed copy lives beside the original weight (PEFT, tied embeddings and training still
use the original), so packing costs one extra copy of the Linear weights in memory.
Inference only: if the base weights change, call pack_linears again.
"""

from __future__ import annotations

import torch

BATCH_HINT = 8  # oneDNN picks its blocking for about this many rows


class PackedLinear(torch.nn.Linear):
    """nn.Linear whose forward uses a oneDNN-packed copy of its weight."""

    packed: torch.Tensor

    def pack(self) -> None:
        self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), BATCH_HINT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":
            return super().forward(x)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def can_pack() -> bool:
    return bool(torch.backends.mkldnn.is_available()) and hasattr(
        torch.ops.mkldnn, "_reorder_linear_weight"
    )


def pack_linears(model: torch.nn.Module) -> int:
    """Turn every plain fp32 CPU nn.Linear into a PackedLinear in place; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.dtype == torch.float32:
            module.__class__ = PackedLinear
            module.pack()  # type: ignore[operator]
            count += 1
        elif isinstance(module, PackedLinear):
            module.pack()
            count += 1
    return count
