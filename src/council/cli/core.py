"""The council itself: serve, ask (and the seed's `ensemble`), heads, prepare."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from, with_council

if TYPE_CHECKING:
    from council.config import Settings
    from council.types import Verdict

commands = typer.Typer()

StrategyOpt = Annotated[
    str | None,
    typer.Option(
        help="vote, weighted, consensus, best_of_n, specialization, rank, moa, debate, "
        "clone_dispatch, auto",
    ),
]
TaskTypeOpt = Annotated[str | None, typer.Option(help="code, math, creative, reasoning, general")]


@commands.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    nightly: Annotated[
        str | None,
        typer.Option(help="Run `council improve` every day at this local time (HH:MM)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Start the HTTP server (OpenAI-compatible /v1, /vote, /chat, /hybrid, /metrics).

    Example: council serve --port 8000 --nightly 02:00
    """
    import logging

    import uvicorn

    from council.server import create_app

    settings = settings_from(config, host=host, port=port)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if nightly is not None:
        from council.jobs.schedule import start_nightly

        start_nightly(settings, nightly)
    url = f"http://{settings.server.host}:{settings.server.port}"
    out.print(f"Council on {url}  (heads load first) · chat page: {url}/ · API: {url}/v1")
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level,
    )


def ask_council(settings: Settings, question: str, **kwargs: Any) -> Verdict:
    """One question to a fresh Council: what `ask` and `ensemble` both run."""
    return with_council(settings, lambda council: council.ask(question, **kwargs))


def _vote_table(verdict: Verdict) -> Table:
    table = Table(title="Ballot", show_lines=False)
    for col in ("head", "vote", "cluster", "weight", "ms", "answer / error"):
        table.add_column(col, overflow="fold")
    for v in verdict.votes:
        mark = "[green]✔[/]" if v.won else ("[red]✘ failed[/]" if v.error else "")
        text = f"[red]{v.error}[/]" if v.error else v.answer.replace("\n", " ")[:120]
        cluster = "-" if v.cluster is None else str(v.cluster)
        table.add_row(
            v.head,
            mark or (v.extracted or ""),
            cluster,
            f"{v.weight:g}",
            f"{v.latency_ms:.0f}",
            text,
        )
    return table


@commands.command()
def ask(
    question: Annotated[str, typer.Argument(help="What to ask the council.")],
    strategy: StrategyOpt = None,
    models: Annotated[int | None, typer.Option(help="How many heads sit on the ballot.")] = None,
    task_type: TaskTypeOpt = None,
    user: Annotated[str | None, typer.Option(help="Whose memory to use.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole verdict as JSON.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Ask the council once and print the answer with a per-head vote table.

    Example: council ask "What is 7 * 8?" --strategy weighted
    """
    verdict = ask_council(
        settings_from(config),
        question,
        strategy=strategy,
        num_models=models,
        task_type=task_type,
        user=user,
    )
    if as_json:
        out.print_json(json.dumps(verdict.to_dict()))
        return
    out.print(verdict.answer, highlight=False, markup=False)
    out.print(_vote_table(verdict))
    out.print(
        f"confidence {verdict.confidence:.0%} · strategy {verdict.strategy} · "
        f"{verdict.latency_ms / 1000:.1f}s · ${verdict.cost_usd:.4f}"
        + (f" · {'; '.join(verdict.notes)}" if verdict.notes else "")
        + (f" · exchange {verdict.exchange_id}" if verdict.exchange_id else ""),
        highlight=False,
    )


@commands.command(hidden=True)  # the seed's spelling of `ask`, with the seed's report
def ensemble(
    input: Annotated[str, typer.Option("--input", "-i", help="The question.")],
    models: Annotated[int | None, typer.Option(help="How many heads (top quality first).")] = None,
    strategy: Annotated[
        str, typer.Option(help="best_of_n, weighted, consensus, specialization, vote")
    ] = "best_of_n",
    task_type: TaskTypeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Query the ensemble as in the seed: answer, metadata and every model's response.

    Example: council ensemble --input "What is 2+2?" --models 3 --strategy consensus
    """
    settings = settings_from(config)
    n = models or len(settings.enabled_heads)
    out.print(f"Querying {n} models...\nQuestion: {input}\n", highlight=False)
    v = ask_council(settings, input, strategy=strategy, num_models=models, task_type=task_type)
    out.print(v.answer, highlight=False, markup=False)
    ok = [x for x in v.votes if not x.error]
    avg = sum(x.latency_ms for x in ok) / max(1, len(ok)) / 1000
    out.print(
        f"\nMetadata:\n  Confidence: {v.confidence:.0%}\n  Strategy: {v.strategy} "
        f"(task type {v.task_type})\n  Models used: {len(v.models_used)} "
        f"({', '.join(v.models_used)})\n  Avg latency: {avg:.1f}s\n  Total cost: ${v.cost_usd:.4f}",
        highlight=False,
    )
    out.print("\nAll model responses:", highlight=False)
    for x in v.votes:
        text = f"FAILED: {x.error}" if x.error else x.answer.replace("\n", " ")[:160]
        out.print(f"  • {x.head}: {text}", highlight=False, markup=False)


@commands.command()
def heads(
    check: Annotated[
        bool, typer.Option(help="Load each head and send it a one-word prompt.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """List the heads in the catalogue with their prices, scores and state.

    Example: council heads --check
    """
    from council.heads.weights import BUILTIN

    settings = settings_from(config)
    states: dict[str, str] = {}
    if check:
        states = asyncio.run(_probe(settings))
    table = Table(title="Heads")
    for col in (
        "id",
        "kind",
        "model",
        "enabled",
        "quality",
        "speed",
        "$/1k in·out",
        "specializations",
        "state",
    ):
        table.add_column(col, overflow="fold")
    for h in settings.heads.specs:
        if h.id in states:
            state = states[h.id]
        elif h.in_process and h.model in BUILTIN:
            ready = (settings.models_dir / h.model / ".council-converted").exists()
            state = "weights ready" if ready else "not prepared (council prepare)"
        else:
            state = "-"
        table.add_row(
            h.id,
            h.kind,
            h.model,
            "yes" if h.enabled else "no",
            f"{h.quality:g}",
            f"{h.speed:g}",
            f"{h.cost_in_per_1k:g}·{h.cost_out_per_1k:g}",
            ", ".join(h.specializations),
            state,
        )
    out.print(table)


async def _probe(settings: Settings) -> dict[str, str]:
    from council.council import Council
    from council.types import GenParams, Message

    council = Council(settings)
    try:
        await council.start()
        probes = [
            council.call(h, [Message("user", "Say OK.")], GenParams(max_tokens=4))
            for h in council.enabled
        ]
        results = await asyncio.gather(*probes)
        return {
            c[0].head: (f"failed: {c[0].error}" if c[0].error else f"ok ({c[0].latency_ms:.0f} ms)")
            for c in results
        }
    finally:
        await council.close()


@commands.command()
def prepare(config: ConfigOpt = None) -> None:
    """Make the local heads' weights ready (converts the packaged SmolLM2 and Gemma once).

    Every enabled local head's model, and the built-in models of disabled heads, so that
    enabling one later needs no conversion (and nothing is ever downloaded at run time).

    Example: council prepare
    """
    from council.heads.weights import BUILTIN, resolve_model_dir

    settings = settings_from(config)
    local = [h for h in settings.heads.specs if h.in_process]
    for model in sorted({h.model for h in local if h.enabled or h.model in BUILTIN}):
        folder = resolve_model_dir(model, settings.models_dir)
        out.print(f"{model}: {folder}", highlight=False)
