"""Adapters in production: deploy, rollback and `adapters list`.

These write the registry in the store; a running server applies a change within a second
(it polls) and runs the canary. `adapters promote` and `adapters rollback` are the older
spellings of `deploy --role` and `rollback`, kept as hidden aliases.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from

if TYPE_CHECKING:
    from council.adapters.registry import Registry
    from council.config import Settings

commands = typer.Typer()
group = typer.Typer(help="Adapter versions and their champion / challenger aliases.")

CanaryOpt = Annotated[bool, typer.Option(help="Watch it before confirming.")]
ReasonOpt = Annotated[str, typer.Option(help="Recorded with the rollback.")]


def _registry(settings: Settings) -> Registry:
    from council.adapters.registry import Registry
    from council.storage import open_store

    registry = Registry(open_store(settings), settings.server.data_dir)
    registry.discover()
    return registry


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


@group.command("list")
def list_adapters(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Every adapter version with its aliases, and each role's recent deployments.

    Example: council adapters list --role core
    """
    from council.learning.ledger import gate_verdicts

    registry = _registry(settings_from(config))
    versions, state = registry.versions(role), registry.state()
    gates = gate_verdicts(registry.store)
    for a in versions:
        a["gate"] = gates.get(a["version"])
    if as_json:
        out.print_json(json.dumps({"adapters": versions, "roles": state}, default=str))
        return
    table = Table(title="Adapters")
    for col in ("version", "role", "aliases", "dataset", "examples", "loss", "gate", "created"):
        table.add_column(col)
    for a in versions:
        loss = "-" if a["final_loss"] is None else f"{a['final_loss']:.4f}"
        aliases = ", ".join(a["aliases"]) + (" (retired)" if a["retired"] else "")
        gate = a["gate"]["verdict"] if a["gate"] else "-"
        table.add_row(a["version"], a["role"], aliases, a["dataset_version"] or "-",
                      str(a["examples"]), loss, gate, _when(a["created_at"]))  # fmt: skip
    out.print(table)
    for a in versions:
        if a["gate"]:
            out.print(f"{a['version']} vs {a['gate']['champion']}: {a['gate']['verdict']} — "
                      f"rule: {a['gate']['rule'] or 'before the rule was recorded'}",
                      highlight=False)  # fmt: skip
            for reason in a["gate"]["reasons"]:
                out.print(f"   {reason}", highlight=False)
    for name, r in state.items():
        if role and name != role:
            continue
        canary = r["canary"]
        line = (f"{name}: champion {r['champion'] or 'base'} · challenger "
                f"{r['challenger'] or '-'} · previous {r['previous'] or 'base'}")  # fmt: skip
        if canary:
            line += f" · canary since {_when(canary['started_at'])}"
        out.print(line, highlight=False)
        for d in r["history"][:5]:
            out.print(f"   {_when(d['started_at'])} {d['action']:<8} {d['version'] or 'base'} "
                      f"[{d['state']}] {d['reason']}", highlight=False)  # fmt: skip


def _target(settings: Settings, role: str | None, version: str | None) -> tuple[Registry, str, str]:
    """(registry, role, version) a deploy means: a version's own role, a role's challenger."""
    if role is None:
        if version is None:
            raise typer.BadParameter("pass an adapter VERSION, or --role to deploy its challenger")
        if version == "base":
            raise typer.BadParameter("deploying 'base' needs --role")
        registry = _registry(settings)
        return registry, registry.get(version)["role"], version
    registry = _registry(settings)
    if version is None:
        version = registry.aliases(role)["challenger"]
        if version is None:
            raise typer.BadParameter(f"role {role!r} has no challenger; pass a version")
    return registry, role, version


def deploy_adapter(
    settings: Settings, *, role: str | None, version: str | None, canary: bool, action: str
) -> None:
    """Make `version` (default: the role's challenger) its role's champion (default role: the
    version's own). `action` is what the deployment history records: deploy or promote."""
    from council.adapters.registry import deploy as run
    from council.adapters.registry import parse_version

    registry, role, version = _target(settings, role, version)
    dep = run(settings, registry, role, parse_version(version), canary=canary, action=action,
              reason=f"{action} from the command line")  # fmt: skip
    how = (f"canary: {100 * dep['share']:.0f} % of calls for {dep['window_s']:.0f} s or "
           f"{dep['requests']} calls; a running server applies it within a second and rolls "
           "back on its own if it fails" if canary else "no canary")  # fmt: skip
    out.print(f"{role}: {dep['previous'] or 'base'} → {dep['version'] or 'base'} ({how})",
              highlight=False)  # fmt: skip


@commands.command()
def deploy(
    version: Annotated[
        str | None,
        typer.Argument(help="Adapter version ('base': no adapter). Default: --role's challenger."),
    ] = None,
    role: Annotated[str | None, typer.Option(help="Default: the version's own role.")] = None,
    canary: CanaryOpt = True,
    config: ConfigOpt = None,
) -> None:
    """Deploy an adapter version (or a role's challenger) as its role's champion, under a canary.

    Example: council deploy core-20261123-020000-ab12cd34   (or: council deploy --role core)
    """
    deploy_adapter(settings_from(config), role=role, version=version, canary=canary,
                   action="deploy")  # fmt: skip


@group.command(hidden=True)  # README's spelling of `council deploy --role ROLE`
def promote(
    role: Annotated[str, typer.Argument(help="The role to change.")],
    version: Annotated[
        str | None, typer.Option(help="Default: the role's challenger; 'base' for none.")
    ] = None,
    canary: CanaryOpt = True,
    config: ConfigOpt = None,
) -> None:
    """Make the challenger (or --version) the role's champion.

    Example: council adapters promote core
    """
    deploy_adapter(settings_from(config), role=role, version=version, canary=canary,
                   action="promote")  # fmt: skip


def rollback_role(settings: Settings, role: str, reason: str) -> None:
    """Return `role` to its previous champion now."""
    from council.adapters.registry import rollback as run

    dep = run(settings, _registry(settings), role, reason)
    out.print(f"{role}: {dep['previous'] or 'base'} → {dep['version'] or 'base'} (rolled back)",
              highlight=False)  # fmt: skip


@commands.command()
def rollback(
    role: Annotated[str, typer.Option(help="The role (heads with this `role`).")] = "core",
    reason: ReasonOpt = "by hand",
    config: ConfigOpt = None,
) -> None:
    """Return a role to its previous champion now (default role: core).

    Example: council rollback --role core
    """
    rollback_role(settings_from(config), role, reason)


@group.command("rollback", hidden=True)  # the older spelling of `council rollback --role ROLE`
def adapters_rollback(
    role: Annotated[str, typer.Argument(help="The role to roll back.")],
    reason: ReasonOpt = "by hand",
    config: ConfigOpt = None,
) -> None:
    """Return the role to its previous champion now.

    Example: council adapters rollback core --reason "answers got worse"
    """
    rollback_role(settings_from(config), role, reason)
