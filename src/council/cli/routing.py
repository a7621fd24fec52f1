"""Routing: map, governor, route; the routing statistics."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from

if TYPE_CHECKING:
    from council.config import Settings

commands = typer.Typer()


def _store(settings: Settings) -> Any:
    """The memory store when memory is on (no embedder or heads are loaded)."""
    from council.storage import open_store

    return open_store(settings) if settings.memory.enabled else None


@commands.command("map")
def show_map(
    as_json: Annotated[bool, typer.Option("--json", help="Print the map as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Rebuild the cognitive map (per-domain confidence and each head's live accuracy, which
    the selector reads) and show it, with each head's weight per domain learned from its
    outcomes (verified, thumbs up/down, corrected) and how many outcomes it rests on.

    Example: council map
    """
    from council.routing import cognitive_map

    settings = settings_from(config)
    data = cognitive_map.write(settings.server.data_dir, _store(settings))
    specs = [s for s in settings.heads.specs if s.enabled]
    for domain, d in data["domains"].items():
        outcomes = data["outcomes"].get(domain) or {}
        d["weights"] = {
            h: {"weight": w, "outcomes": (outcomes.get(h) or {}).get("n", 0)}
            for h, w in cognitive_map.head_weights(outcomes, specs).items()
        }
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title=f"Cognitive map ({settings.server.data_dir / cognitive_map.FILE})")
    cols = ("domain", "confidence", "samples", "live", "gauntlet", "training", "examples")
    for col in (*cols, "heads (live accuracy)", "weights (outcomes)"):
        table.add_column(col)
    for domain, d in data["domains"].items():
        src = d["sources"]

        def cell(name: str, src: dict[str, Any] = src) -> str:
            s = src.get(name)
            return "-" if not s else f"{s['rate']:.2f} (n={s['n']:g})"

        ranked = sorted(d["heads"].items(), key=lambda kv: -kv[1]["accuracy"])
        heads = ", ".join(f"{h} {s['accuracy']:.2f} (n={s['n']:g})" for h, s in ranked[:3])
        learned = ", ".join(f"{h} {w['weight']:.2f} (n={w['outcomes']:g})"
                            for h, w in d["weights"].items())  # fmt: skip
        table.add_row(domain, f"{d['confidence']:.2f}", f"{d['samples']:g}", cell("live"),
                      cell("gauntlet"), cell("training"), str(d["training_examples"]),
                      heads or "-", learned or "-")  # fmt: skip
    out.print(table)
    out.print(data["method"], highlight=False)
    out.print(
        f"weights: 10 x Beta posterior mean of each head's accuracy, prior at quality/10 worth "
        f"{cognitive_map.WEIGHT_PRIOR_TRIALS:g} outcomes (verified, thumbs up/down, corrected)",
        highlight=False,
    )


def print_routing_stats(settings: Settings) -> None:
    """Answers kept local, escalations, early stops, and today's spend per head."""
    from council.routing.governor import Governor
    from council.routing.stats import routing_stats

    s = routing_stats(settings, _store(settings), Governor(settings))
    share = "-" if s["cloud_share"] is None else f"{1 - s['cloud_share']:.1%}"
    out.print(
        f"answers {s['answers']} · local {share} · cloud {s['cloud_answers']} · "
        f"escalations {s['escalations']} · early stops {s['early_stops']}",
        highlight=False,
    )
    for name, n in sorted(s["by_strategy"].items(), key=lambda kv: -kv[1]):
        out.print(f"  {name}: {n}", highlight=False)
    _print_governor(s["governor"])


def _print_governor(g: dict[str, Any]) -> None:
    budget = "no cap" if g["daily_budget_usd"] is None else f"${g['daily_budget_usd']:g}/day"
    out.print(
        f"governor {'on' if g['enabled'] else 'off'} · local_only {g['local_only']} · "
        f"oracle refinement {g['enable_oracle_refinement']} · force arbiter "
        f"{g['force_arbiter']} · budget {budget} · spent today ${g['spent_today_usd']:.4f}",
        highlight=False,
    )
    for head, usd in g["spent_by_head_usd"].items():
        out.print(f"  {head}: ${usd:.4f}", highlight=False)


@commands.command()
def governor(
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Enforce the daily budget.")
    ] = None,
    local_only: Annotated[
        bool | None, typer.Option("--local-only/--no-local-only", help="Never call cloud heads.")
    ] = None,
    oracle: Annotated[
        bool | None,
        typer.Option("--oracle-refinement/--no-oracle-refinement", help="Learning: Oracle."),
    ] = None,
    arbiter: Annotated[
        bool | None,
        typer.Option("--force-arbiter/--no-force-arbiter", help="Learning: always Arbiter."),
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Daily budget in USD.")] = None,
    no_budget: Annotated[bool, typer.Option("--no-budget", help="Remove the cap.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show or change the governor (persisted in the data dir; a running server follows).

    Example: council governor --local-only --budget 2.5
    """
    from council.routing.governor import Governor

    gov = Governor(settings_from(config))
    change: dict[str, Any] = {
        k: v
        for k, v in {
            "enabled": enabled,
            "local_only": local_only,
            "enable_oracle_refinement": oracle,
            "force_arbiter": arbiter,
            "daily_budget_usd": budget,
        }.items()
        if v is not None
    }
    if no_budget:
        change["daily_budget_usd"] = None
    if change:
        gov.update(change)
    _print_governor(gov.report())


@commands.command()
def route(
    question: Annotated[str, typer.Argument(help="The prompt to plan for (no head is asked).")],
    strategy: Annotated[str, typer.Option(help="auto, or a strategy to plan as given")] = "auto",
    tier: Annotated[str | None, typer.Option(help="Hint: small (courier), large (master).")] = None,
    task_type: Annotated[str | None, typer.Option(help="Override the task classifier.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Show the plan the selector would make for a prompt, with its reasons.

    Example: council route "Write a haiku about rain"
    """
    from council.errors import InvalidRequestError
    from council.routing.router import Router
    from council.routing.selector import Hints
    from council.routing.tasks import classify_task
    from council.strategies import get_strategy

    settings = settings_from(config)
    get_strategy(strategy)
    if tier not in (None, "small", "large"):
        raise InvalidRequestError(f"--tier must be small or large, not {tier!r}.")
    router = Router(settings)
    tiers, refused = router.tiers(settings.enabled_heads)
    if not tiers:
        raise InvalidRequestError("No enabled heads the governor allows: " + "; ".join(refused))
    task = task_type or classify_task(question)
    hints = Hints(tier=tier)  # type: ignore[arg-type]  # checked above
    plan = router.plan(strategy, question, task, tiers[0].heads, hints, None, None)
    out.print(
        f"{plan.strategy} on {plan.chosen_model} ({', '.join(plan.heads)}) · provider "
        f"{tiers[0].provider} · task {task} · ~{plan.predicted_tokens} tokens · "
        f"{plan.predicted_calls} calls · ${plan.predicted_cost_usd:.4f}",
        highlight=False,
    )
    for r in [*plan.reasons, *(f"not on the ballot: {r}" for r in refused)]:
        out.print(f"  - {r}", highlight=False)
    later = [t.provider for t in tiers[1:]]
    out.print(f"CloudRetry order after it: {', '.join(later) or 'none'}", highlight=False)
