"""Training: train (LoRA on a frozen dataset), gauntlet (blind champion test), bootstrap,
finetune (hosted), and improve (the whole nightly cycle)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from

commands = typer.Typer()


@commands.command()
def train(
    dataset: Annotated[
        str | None, typer.Option(help="Frozen dataset version (default: the newest).")
    ] = None,
    role: Annotated[str, typer.Option(help="Which heads' adapter to train.")] = "core",
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate (cosine).")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank (alpha = 2 x rank).")] = 16,
    batch_size: Annotated[int, typer.Option(help="Per-step batch.")] = 4,
    grad_accum: Annotated[
        int | None,
        typer.Option(help="Gradient accumulation steps (default: learning.grad_accum, 8)."),
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Cap on optimizer steps (-1: none).")] = -1,
    run_id: Annotated[
        str | None, typer.Option(help="Report into this run record (POST /api/train sets it).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Train a LoRA adapter for a role on a frozen dataset (PEFT + TRL, loss on answers).

    The new version becomes the role's challenger; `council gauntlet` then tests it and
    `council deploy VERSION` puts it in service.

    Example: council train --dataset ds-20261123-020000-ab12cd34 --role core
    """
    from council.jobs.notify import notify
    from council.jobs.runs import Runs
    from council.learning.datasets import latest_version
    from council.learning.train import Progress, TrainConfig, train_adapter
    from council.storage import open_store

    settings = settings_from(config)
    store = open_store(settings)
    runs = Runs(store, settings.server.data_dir)

    def report(**fields: Any) -> None:  # into the run record, when there is one
        if run_id is not None:
            runs.update(run_id, **fields)

    cfg = TrainConfig(
        rank=rank,
        alpha=2 * rank,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        grad_accum=grad_accum or settings.learning.grad_accum,
        max_steps=max_steps,
    )

    def show(p: Progress) -> None:
        eta = "-" if p.eta_s is None else f"{p.eta_s:.0f}s"
        out.print(f"step {p.step}/{p.total}  loss {p.loss:.4f}  eta {eta}", highlight=False)
        report(step="train", progress=p.step / max(1, p.total))

    try:
        dataset = dataset or latest_version(store)
        params = {"dataset": dataset, "role": role, "epochs": epochs, "lr": learning_rate}
        report(status="running", step="train", params=params)
        meta = train_adapter(settings, store, dataset, role=role, config=cfg, on_progress=show)
    except BaseException as exc:
        report(status="failed", error=f"{type(exc).__name__}: {exc}")
        if run_id is not None:
            notify(settings, "pipeline_error", f"Training run {run_id} failed: {exc}")
        raise
    line = (
        f"adapter {meta['version']} ({meta['examples']} examples, {meta['steps']} steps, "
        f"final loss {meta['final_loss']:.4f}, {meta['duration_s']:.0f}s) at {meta['path']}"
    )
    out.print(line, highlight=False)
    report(status="succeeded", step="done", progress=1.0,
           result={k: meta[k] for k in ("version", "path", "final_loss", "steps", "duration_s",
                                        "dataset_version")})  # fmt: skip
    notify(settings, "train_done", f"Trained {line}", {"role": role, "dataset": dataset})


@commands.command()
def gauntlet(
    adapter: Annotated[
        str | None, typer.Option(help="The challenger version (default: the role's challenger).")
    ] = None,
    against: Annotated[
        str, typer.Option(help="'champion' (the role's, or base), 'base', or a version.")
    ] = "champion",
    blind: Annotated[int, typer.Option(help="Hold-out items of the target family.")] = 100,
    target: Annotated[
        str | None,
        typer.Option(help="reasoning-gym family (default: traffic, else gauntlet_family)."),
    ] = None,
    control: Annotated[int, typer.Option(help="Items per control set (0: none).")] = 40,
    role: Annotated[str, typer.Option(help="The role whose greedy head is tested.")] = "core",
    config: ConfigOpt = None,
) -> None:
    """Blind hold-out: champion vs challenger, accuracy per family with 95 % intervals.

    Example: council gauntlet --blind 100 --adapter core-20261123-030000-ab12cd34
    """
    from council.embeddings import Embedder
    from council.learning.gauntlet import run_gauntlet
    from council.storage import open_store

    settings = settings_from(config)
    report = asyncio.run(run_gauntlet(
        settings, open_store(settings), Embedder(settings.memory.embedder), adapter=adapter,
        against=against, target=target, blind=blind, control=control, role=role,
    ))  # fmt: skip
    table = Table(title=f"Gauntlet: {report['champion']} vs {report['challenger']}")
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
    out.print(f"rule: {report['rule']['rule']}", highlight=False)
    out.print(f"verdict: {report['verdict'].upper()} — " + "; ".join(report["reasons"]),
              highlight=False)  # fmt: skip
    out.print(f"report: {Path(report['path'])}", highlight=False)


@commands.command()
def bootstrap(
    data: Annotated[Path, typer.Option(help="JSONL file or a saved HF dataset folder.")],
    role: Annotated[str, typer.Option(help="Which heads' adapter to train.")] = "core",
    limit: Annotated[int | None, typer.Option(help="Use at most this many records.")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 1.0,
    config: ConfigOpt = None,
) -> None:
    """Train a foundational adapter from a local instruction dataset (SlimOrca, OpenHermes,
    Alpaca, OpenAI chat or prompt/response schemas).

    Example: council bootstrap --data slimorca.jsonl --limit 2000
    """
    from council.embeddings import make_embedder
    from council.errors import BootstrapError
    from council.learning.bootstrap import normalise, records
    from council.learning.collector import Learner
    from council.learning.datasets import freeze
    from council.learning.train import TrainConfig, train_adapter

    settings = settings_from(config)
    learner = Learner(
        settings, embedder=make_embedder(settings.memory.embedder, settings.heads.threads)
    )
    kept = skipped = 0
    for rec in records(data):
        if limit is not None and kept >= limit:
            break
        got = normalise(rec)
        if got is None:
            skipped += 1
            continue
        prompt, answer = got
        added = learner.collect_example(prompt, answer, 0.8, "general", source="bootstrap")
        kept += added is not None
        skipped += added is None
    if not kept:
        raise BootstrapError(f"No usable records in {data} ({skipped} skipped): see --help.")
    # A public dataset, not users' traffic: nothing of it is held out for the gauntlet.
    manifest = freeze(learner.store, settings.server.data_dir / "datasets", sources=["bootstrap"],
                      heldout_share=0.0)  # fmt: skip
    out.print(f"{kept} examples ({skipped} skipped) frozen as {manifest['version']}")
    meta = train_adapter(settings, learner.store, manifest["version"], role=role,
                         config=TrainConfig(epochs=epochs))  # fmt: skip
    out.print(f"foundational adapter {meta['version']} at {meta['path']}", highlight=False)


@commands.command()
def finetune(
    provider: Annotated[str, typer.Option(help="Where to fine-tune: openai.")] = "openai",
    model: Annotated[str, typer.Option(help="Base model of the hosted job.")] = (
        "gpt-4o-mini-2024-07-18"
    ),
    min_quality: Annotated[float, typer.Option(help="Export examples at or above this.")] = 0.8,
    base_url: Annotated[str | None, typer.Option(help="API base URL (default OpenAI).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Export the examples and submit a hosted fine-tuning job; prints the job id.

    Example: council finetune --provider openai --model gpt-4o-mini-2024-07-18
    """
    from council.errors import InvalidRequestError
    from council.learning.collector import Learner
    from council.learning.finetune import submit_openai

    if provider != "openai":
        raise InvalidRequestError(f"Unknown provider {provider!r}. Known: openai")
    settings = settings_from(config)
    path = settings.server.data_dir / "exports" / f"finetune-{int(time.time())}.jsonl"
    n = Learner(settings).export_for_finetuning(path, "openai", min_quality)
    if n == 0:
        raise InvalidRequestError(f"No examples with quality >= {min_quality} to upload.")
    out.print(f"exported {n} examples to {path}; uploading...", highlight=False)
    job = submit_openai(path, model=model, base_url=base_url)
    out.print(f"fine-tuning job created: {job['job_id']} ({job['status']})", highlight=False)


@commands.command()
def improve(
    role: Annotated[str, typer.Option(help="The role (heads with this `role`).")] = "core",
    since: Annotated[str, typer.Option(help="Failures from this window: 24h, 7d.")] = "7d",
    server: Annotated[
        str | None, typer.Option(help="The running server (default: host:port of the config).")
    ] = None,
    blind: Annotated[int, typer.Option(help="Gauntlet hold-out items.")] = 100,
    control: Annotated[int, typer.Option(help="Gauntlet items per control set.")] = 40,
    epochs: Annotated[float, typer.Option(help="Training passes.")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="Training peak learning rate.")] = 2e-4,
    canary: Annotated[bool, typer.Option(help="Deploy under a canary.")] = True,
    family: Annotated[
        str | None,
        typer.Option(
            help="Benchmark: judge on this reasoning-gym family (default: judge on users' "
            "held-out traffic, and wait for more when there is too little)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """One improvement cycle: preflight → harvest → freeze → train → gauntlet → canary deploy
    → validate → cleanup (retention, cognitive map). Every step is timed in a run record.

    Only one runs at a time (a file lock, or Redis when COUNCIL_REDIS_URL is set). Run it
    nightly from cron or systemd (deploy/), or let `council serve --nightly 02:00` do it.

    Judged on users' held-out traffic and replay (it waits for more traffic when there is too
    little to decide); --family judges on a reasoning-gym family instead, for benchmarks.

    Example: council improve --since 24h
    """
    from council.learning.cycle import Cycle
    from council.storage import open_store

    settings = settings_from(config)

    def say(line: str) -> None:
        out.print(line, highlight=False, soft_wrap=True)

    cycle = Cycle(settings, open_store(settings), server=server, role=role, since=since,
                  blind=blind, control=control, epochs=epochs, learning_rate=learning_rate,
                  canary=canary, family=family, on_line=say)  # fmt: skip
    result = cycle.run()
    out.print(f"cycle {result['run_id']}: {result['status']}", highlight=False)
