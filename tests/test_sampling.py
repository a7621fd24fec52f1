"""Per-row nucleus sampling (heads/sampling.py), as the engine picks each token."""

from __future__ import annotations

import torch

from council.heads.sampling import nucleus

PROBS = torch.tensor([0.5, 0.3, 0.2, 0.0])


def draws(top_p: float, rows: int = 4000) -> torch.Tensor:
    logits = PROBS.clamp(min=1e-9).log().expand(rows, -1)
    gens = [torch.Generator().manual_seed(i) for i in range(rows)]
    return nucleus(logits, [1.0] * rows, [top_p] * rows, gens)


def test_top_p_one_draws_from_the_whole_distribution() -> None:
    picks = draws(1.0)
    freq = torch.bincount(picks, minlength=4).float() / len(picks)
    assert torch.allclose(freq, PROBS, atol=0.03), freq


def test_top_p_below_one_keeps_only_the_nucleus() -> None:
    picks = draws(0.6)  # 0.5 alone is short of 0.6, so the nucleus is tokens 0 and 1
    freq = torch.bincount(picks, minlength=4).float() / len(picks)
    assert freq[2] == 0 and freq[3] == 0
    assert torch.allclose(freq[:2], torch.tensor([0.5 / 0.8, 0.3 / 0.8]), atol=0.03), freq


def test_a_seed_replays_and_mixed_top_p_rows_share_one_call() -> None:
    logits = torch.randn(6, 50) * 2
    temps, top_ps = [0.7] * 6, [1.0, 0.9, 1.0, 0.5, 1.0, 0.95]

    def run() -> list[int]:
        gens = [torch.Generator().manual_seed(7 + i) for i in range(6)]
        return nucleus(logits, temps, top_ps, gens).tolist()

    first = run()
    assert first == run()
    assert all(0 <= t < 50 for t in first)
