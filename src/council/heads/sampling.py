"""Per-row token choice: greedy, or nucleus with the row's own seed (the engine calls it)."""

from __future__ import annotations

import torch


def nucleus(
    logits: torch.Tensor,
    temperatures: list[float],
    top_ps: list[float],
    generators: list[torch.Generator | None],
) -> torch.Tensor:
    """Nucleus sampling for several rows at once, each with its own temperature, top-p and
    generator (one uniform draw per row per token, so a seed replays the same answer)."""
    temps = torch.tensor(temperatures).unsqueeze(1)
    probs = torch.softmax(logits.float() / temps, dim=-1)
    u = torch.cat([torch.rand(1, generator=g) for g in generators])
    whole = [i for i, tp in enumerate(top_ps) if tp >= 1.0]
    picks = torch.empty(len(top_ps), dtype=torch.long)
    if whole:  # top_p 1 (the default): the whole vocabulary, so no sort at all
        cum = probs[whole].cumsum(-1)
        pos = torch.searchsorted(cum, (u[whole] * cum[:, -1]).unsqueeze(1))
        picks[whole] = pos.clamp(max=probs.shape[1] - 1).squeeze(1)
    part = [i for i, tp in enumerate(top_ps) if tp < 1.0]
    if part:
        picks[part] = _nucleus(probs[part], torch.tensor([top_ps[i] for i in part]), u[part])
    return picks


def _nucleus(probs: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Rows with top_p < 1: sample within the smallest prefix of the sorted distribution
    that holds top_p of the mass."""
    top_p = top_p.unsqueeze(1)
    # The nucleus is a prefix of the sorted distribution, so a top-k that already holds
    # top_p of the mass gives the exact nucleus without sorting the whole vocabulary.
    vocab, k = probs.shape[1], min(64, probs.shape[1])
    while True:
        top, idx = probs.topk(k, dim=-1)
        if k == vocab or bool((top.sum(-1, keepdim=True) >= top_p).all()):
            break
        k = min(vocab, k * 8)
    top = top * ((top.cumsum(-1) - top) < top_p)
    cum = top.cumsum(-1)
    pos = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1)).clamp(max=k - 1)
    return idx.gather(1, pos).squeeze(1)
