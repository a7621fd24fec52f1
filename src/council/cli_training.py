"""Training commands: train (LoRA on a frozen dataset) and gauntlet (blind champion test)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from council.cli import ConfigOpt, app, out, registrar, settings_from

command = registrar(app)


@command
def train(
    dataset: Annotated[str, typer.Option(help="Frozen dataset version (council dataset list).")],
    role: Annotated[str, typer.Option(help="Which heads' adapter to train.")] = "core",
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate (cosine).")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank (alpha = 2 x rank).")] = 16,
    batch_size: Annotated[int, typer.Option(help="Per-step batch.")] = 4,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 8,
    max_steps: Annotated[int, typer.Option(help="Cap on optimizer steps (-1: none).")] = -1,
    config: ConfigOpt = None,
) -> None:
    """Train a LoRA adapter for a role on a frozen dataset (PEFT + TRL, loss on answers).

    Example: council train --dataset ds-20261123-020000-ab12cd34 --role core
    """
    from council.learning.train import TrainConfig, train_adapter
    from council.memory.episodic import open_store

    settings = settings_from(config)
    cfg = TrainConfig(
        rank=rank,
        alpha=2 * rank,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_steps=max_steps,
    )

    def show(p):  # type: ignore[no-untyped-def]
        eta = "-" if p.eta_s is None else f"{p.eta_s:.0f}s"
        out.print(f"step {p.step}/{p.total}  loss {p.loss:.4f}  eta {eta}", highlight=False)

    meta = train_adapter(settings, open_store(settings), dataset, role=role, config=cfg,
                         on_progress=show)  # fmt: skip
    out.print(
        f"adapter {meta['version']} ({meta['examples']} examples, {meta['steps']} steps, "
        f"final loss {meta['final_loss']:.4f}, {meta['duration_s']:.0f}s) at {meta['path']}",
        highlight=False,
    )


@command
def gauntlet(
    adapter: Annotated[str, typer.Option(help="The challenger adapter version.")],
    against: Annotated[str, typer.Option(help="'base' or a champion adapter version.")] = "base",
    blind: Annotated[int, typer.Option(help="Hold-out items of the target family.")] = 100,
    target: Annotated[str, typer.Option(help="reasoning-gym family to improve.")] = (
        "basic_arithmetic"
    ),
    control: Annotated[int, typer.Option(help="Items per control set (0: none).")] = 40,
    role: Annotated[str, typer.Option(help="The role whose greedy head is tested.")] = "core",
    config: ConfigOpt = None,
) -> None:
    """Blind hold-out: champion vs challenger, accuracy per family with 95 % intervals.

    Example: council gauntlet --blind 100 --adapter core-20261123-030000-ab12cd34
    """
    from council.embeddings import Embedder
    from council.learning.gauntlet import run_gauntlet
    from council.memory.episodic import open_store

    settings = settings_from(config)
    report = asyncio.run(run_gauntlet(
        settings, open_store(settings), Embedder(settings.embedder), adapter=adapter,
        against=against, target=target, blind=blind, control=control, role=role,
    ))  # fmt: skip
    table = Table(title=f"Gauntlet: {against} vs {adapter}")
    for col in ("family", "n", "champion", "challenger", "Δ pp", "p"):
        table.add_column(col)
    for fam, r in report["families"].items():
        a, b = r["champion"], r["challenger"]
        table.add_row(
            f"{fam} ({r['kind']})", str(r["n"]),
            f"{a['accuracy']:.1%} [{a['ci95'][0]:.0%}, {a['ci95'][1]:.0%}]",
            f"{b['accuracy']:.1%} [{b['ci95'][0]:.0%}, {b['ci95'][1]:.0%}]",
            f"{r['delta_pp']:+.1f}", f"{r['p_improved']:.3g}",
        )  # fmt: skip
    out.print(table)
    lat = report["latency_ms"]
    out.print(f"latency p50/p95 ms: champion {lat['champion']['p50']:.0f}/"
              f"{lat['champion']['p95']:.0f}, challenger {lat['challenger']['p50']:.0f}/"
              f"{lat['challenger']['p95']:.0f}")  # fmt: skip
    out.print(f"verdict: {report['verdict'].upper()} — " + "; ".join(report["reasons"]),
              highlight=False)  # fmt: skip
    out.print(f"report: {Path(report['path'])}", highlight=False)
