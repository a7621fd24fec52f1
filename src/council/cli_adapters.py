"""Adapters in production: adapters list|promote|rollback, deploy, rollback, improve.

These write the registry in the store; a running server applies a change within a second
(it polls) and runs the canary. `council improve` is the whole nightly cycle.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from council.cli import ConfigOpt, app, out, registrar, settings_from

command = registrar(app)
adapters_app = typer.Typer(help="Adapter versions and their champion / challenger aliases.")
app.add_typer(adapters_app, name="adapters")
adapter_command = registrar(adapters_app)

RoleOpt = Annotated[str, typer.Option(help="The role (heads with this `role`).")]


def _registry(settings: Any) -> Any:
    from council.adapters.registry import Registry
    from council.storage import open_store

    registry = Registry(open_store(settings), settings.data_dir)
    registry.discover()
    return registry


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


@adapter_command
def list(  # the verb users type; shadows the builtin only in this module
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Every adapter version with its aliases, and each role's recent deployments.

    Example: council adapters list --role core
    """
    registry = _registry(settings_from(config))
    versions, state = registry.versions(role), registry.state()
    if as_json:
        out.print_json(json.dumps({"adapters": versions, "roles": state}, default=str))
        return
    table = Table(title="Adapters")
    for col in ("version", "role", "aliases", "dataset", "examples", "loss", "created"):
        table.add_column(col)
    for a in versions:
        loss = "-" if a["final_loss"] is None else f"{a['final_loss']:.4f}"
        aliases = ", ".join(a["aliases"]) + (" (retired)" if a["retired"] else "")
        table.add_row(a["version"], a["role"], aliases, a["dataset_version"] or "-",
                      str(a["examples"]), loss, _when(a["created_at"]))  # fmt: skip
    out.print(table)
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


def _deploy(settings: Any, role: str, version: str, canary: bool, action: str) -> None:
    from council.adapters.registry import deploy as run
    from council.adapters.registry import parse_version

    registry = _registry(settings)
    dep = run(settings, registry, role, parse_version(version), canary=canary, action=action,
              reason=f"{action} from the command line")  # fmt: skip
    how = (f"canary: {100 * dep['share']:.0f} % of calls for {dep['window_s']:.0f} s or "
           f"{dep['requests']} calls; a running server applies it within a second and rolls "
           "back on its own if it fails" if canary else "no canary")  # fmt: skip
    out.print(f"{role}: {dep['previous'] or 'base'} → {dep['version'] or 'base'} ({how})",
              highlight=False)  # fmt: skip


@adapter_command
def promote(
    role: Annotated[str, typer.Argument(help="The role to change.")],
    version: Annotated[
        str | None, typer.Option(help="Default: the role's challenger; 'base' for none.")
    ] = None,
    canary: Annotated[bool, typer.Option(help="Watch it before confirming.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Make the challenger (or --version) the role's champion.

    Example: council adapters promote core
    """
    settings = settings_from(config)
    if version is None:
        version = _registry(settings).aliases(role)["challenger"]
        if version is None:
            raise typer.BadParameter(f"role {role!r} has no challenger; pass --version")
    _deploy(settings, role, version, canary, "promote")


@adapter_command(name="rollback")
def adapters_rollback(
    role: Annotated[str, typer.Argument(help="The role to roll back.")],
    reason: Annotated[str, typer.Option(help="Recorded with the rollback.")] = "by hand",
    config: ConfigOpt = None,
) -> None:
    """Return the role to its previous champion now.

    Example: council adapters rollback core --reason "answers got worse"
    """
    _rollback(settings_from(config), role, reason)


def _rollback(settings: Any, role: str, reason: str) -> None:
    from council.adapters.registry import rollback as run

    dep = run(settings, _registry(settings), role, reason)
    out.print(f"{role}: {dep['previous'] or 'base'} → {dep['version'] or 'base'} (rolled back)",
              highlight=False)  # fmt: skip


@command
def deploy(
    version: Annotated[str, typer.Argument(help="Adapter version ('base': no adapter).")],
    role: Annotated[str | None, typer.Option(help="Default: the version's own role.")] = None,
    canary: Annotated[bool, typer.Option(help="Watch it before confirming.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Deploy an adapter version as its role's champion, under a canary.

    Example: council deploy core-20261123-020000-ab12cd34
    """
    settings = settings_from(config)
    if role is None:
        if version == "base":
            raise typer.BadParameter("deploying 'base' needs --role")
        role = _registry(settings).get(version)["role"]
    _deploy(settings, role, version, canary, "deploy")


@command
def rollback(
    role: RoleOpt = "core",
    reason: Annotated[str, typer.Option(help="Recorded with the rollback.")] = "by hand",
    config: ConfigOpt = None,
) -> None:
    """Return a role to its previous champion now (default role: core).

    Example: council rollback --role core
    """
    _rollback(settings_from(config), role, reason)


@command
def improve(
    role: RoleOpt = "core",
    since: Annotated[str, typer.Option(help="Failures from this window: 24h, 7d.")] = "7d",
    server: Annotated[
        str | None, typer.Option(help="The running server (default: host:port of the config).")
    ] = None,
    blind: Annotated[int, typer.Option(help="Gauntlet hold-out items.")] = 100,
    control: Annotated[int, typer.Option(help="Gauntlet items per control set.")] = 20,
    epochs: Annotated[float, typer.Option(help="Training passes.")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="Training peak learning rate.")] = 2e-4,
    canary: Annotated[bool, typer.Option(help="Deploy under a canary.")] = True,
    config: ConfigOpt = None,
) -> None:
    """One improvement cycle: preflight → harvest → freeze → train → gauntlet → canary deploy
    → validate → cleanup (retention, cognitive map). Every step is timed in a run record.

    Only one runs at a time (a file lock, or Redis when COUNCIL_REDIS_URL is set). Run it
    nightly from cron or systemd (deploy/), or let `council serve --nightly 02:00` do it.

    Example: council improve --since 24h
    """
    from council.learning.cycle import Cycle
    from council.storage import open_store

    settings = settings_from(config)

    def say(line: str) -> None:
        out.print(line, highlight=False, soft_wrap=True)

    cycle = Cycle(settings, open_store(settings), server=server, role=role, since=since,
                  blind=blind, control=control, epochs=epochs, learning_rate=learning_rate,
                  canary=canary, on_line=say)  # fmt: skip
    result = cycle.run()
    out.print(f"cycle {result['run_id']}: {result['status']}", highlight=False)
