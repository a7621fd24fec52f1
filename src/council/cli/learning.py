"""Learning data: harvest, dataset freeze/list, export, distill; the learning statistics."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from, with_council

if TYPE_CHECKING:
    from council.config import Settings

commands = typer.Typer()
dataset_group = typer.Typer(help="Frozen, versioned training datasets.", no_args_is_help=True)


class ExportFormat(StrEnum):
    openai = "openai"
    hf = "hf"


@commands.command()
def harvest(
    since: Annotated[str, typer.Option(help="Window to look back: 30m, 24h, 7d.")] = "24h",
    low_confidence: Annotated[
        bool, typer.Option(help="Also take unlabelled answers below the success threshold.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many failures.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Rewrite recent failures with Agent-0 and keep the rewrites that pass the quality gate.

    Example: council harvest --since 24h
    """
    from council.learning.harvest import harvest as run

    report = with_council(
        settings_from(config),
        lambda c: run(c, since=since, include_low_confidence=low_confidence, limit=limit),
    )
    table = Table(title=f"Harvest ({report.considered} failures since {since})")
    for col in ("exchange", "status", "quality", "question", "answer / reason"):
        table.add_column(col, overflow="fold")
    for i in report.items:
        detail = i.answer if i.status == "accepted" else (i.reason or "")
        q = "-" if i.quality is None else f"{i.quality:.2f}"
        table.add_row(i.exchange_id, i.status, q, i.question[:60], (detail or "")[:80])
    out.print(table)
    out.print(
        f"accepted {report.count('accepted')} · rejected {report.count('rejected')} · "
        f"failed {report.count('failed')} (retried next run) · "
        f"autogen_agent0_rewrite_success_rate {report.rewrite_success_rate:.2f}"
    )


@dataset_group.command()
def freeze(
    min_quality: Annotated[float, typer.Option(help="Keep examples at or above this.")] = 0.7,
    config: ConfigOpt = None,
) -> None:
    """Write an immutable dataset version (train and held-out JSONL + manifest) from the
    examples; COUNCIL_HELDOUT_SHARE of the questions (20 %) are held out, never trained on.

    Example: council dataset freeze --min-quality 0.8
    """
    from council.learning.datasets import freeze as run
    from council.storage import open_store

    settings = settings_from(config)
    share = settings.learning.heldout_share
    manifest = run(open_store(settings), settings.server.data_dir / "datasets",
                   min_quality=min_quality, heldout_share=share)  # fmt: skip
    held = manifest["splits"]["heldout"]["examples"]
    out.print(f"frozen {manifest['version']}: {manifest['examples']} examples to train on, "
              f"{held} held out (heldout.jsonl)", highlight=False)  # fmt: skip
    out.print(f"quality {manifest['quality_histogram']} · sources {manifest['sources']}")


@dataset_group.command("list")
def list_datasets(config: ConfigOpt = None) -> None:
    """List frozen dataset versions.

    Example: council dataset list
    """
    from council.learning.datasets import list_datasets as listed
    from council.storage import open_store

    table = Table(title="Datasets")
    for col in ("version", "examples", "path"):
        table.add_column(col, overflow="fold")
    for d in listed(open_store(settings_from(config))):
        table.add_row(d["version"], str(d["examples"]), d["path"])
    out.print(table)


def print_learning_stats(settings: Settings) -> None:
    """Totals, quality distribution and task types of the collected examples."""
    from council.learning.collector import Learner

    stats = Learner(settings).get_learning_stats()
    ready = "yes" if stats["ready_for_finetuning"] else "no"
    out.print(
        f"Continuous Learning Statistics\n\n  Total Examples: {stats['total_examples']}\n"
        f"  High Quality (>0.8): {stats['high_quality']}\n"
        f"  Ready for Fine-tuning: {ready} (LoRA: {'yes' if stats['ready_for_lora'] else 'no'})\n"
        f"  Average Quality: {stats['average_quality']:.2f}\n"
        f"  Examples with Feedback: {stats['examples_with_feedback']}\n\n"
        f"  Quality: {stats['quality_distribution']}\n  Sources: {stats['sources']}",
        highlight=False,
    )
    for task, n in sorted(stats["task_distribution"].items(), key=lambda kv: -kv[1]):
        out.print(f"  {task}: {n} examples", highlight=False)


@commands.command(hidden=True)  # the seed's spelling of `council stats learning`
def learning_stats(config: ConfigOpt = None) -> None:
    """Totals, quality distribution and task types of the collected examples.

    Example: council learning-stats
    """
    print_learning_stats(settings_from(config))


@commands.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    format: Annotated[ExportFormat, typer.Option(help="openai (chat) or hf (instruction)")] = (
        ExportFormat.openai
    ),
    min_quality: Annotated[float, typer.Option(help="Keep examples at or above this.")] = 0.8,
    config: ConfigOpt = None,
) -> None:
    """Export examples for fine-tuning elsewhere.

    Example: council export -o train.jsonl --format openai --min-quality 0.8
    """
    from council.learning.collector import Learner

    n = Learner(settings_from(config)).export_for_finetuning(output, str(format), min_quality)
    out.print(f"exported {n} examples to {output}", highlight=False)


@commands.command()
def distill(
    tasks: Annotated[Path, typer.Option(help="One task per line, or JSONL with 'prompt'.")],
    task_type: Annotated[str, typer.Option(help="Task type to file them under.")] = "general",
    config: ConfigOpt = None,
) -> None:
    """Run tasks through the ensemble and keep its high-quality answers as examples.

    Example: council distill --tasks tasks.txt --task-type reasoning
    """
    from council.learning.collector import KnowledgeDistillation, Learner

    lines = [ln.strip() for ln in tasks.read_text().splitlines() if ln.strip()]
    items = [json.loads(ln)["prompt"] if ln.startswith("{") else ln for ln in lines]

    async def work(council: Any) -> Any:
        learner = Learner(council.settings, council.memory.store if council.memory else None,
                          council.embedder)  # fmt: skip
        return await KnowledgeDistillation(learner).distill_from_ensemble(items, council, task_type)

    kept = with_council(settings_from(config), work)
    out.print(f"kept {len(kept)} of {len(items)} answers as examples")
