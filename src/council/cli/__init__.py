"""`council`: a thin CLI over the library. Each command's docstring is its --help.

Each part is a module with its own Typer sub-app; this file only mounts them. Top-level verbs
(`commands`) are mounted without a name, groups under theirs. The parts import
`council.cli.common`, never this package, so there is no import circle.
"""

from __future__ import annotations

import typer

from council.cli import adapters, core, learning, memory, routing, stats, training, users
from council.cli import db as db_cli
from council.cli import quota as quota_cli
from council.cli.common import CouncilGroup

app = typer.Typer(
    cls=CouncilGroup,
    help="Council: a local-first LLM server where every answer is a vote of several heads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(core.commands)  # serve, ask, heads, prepare
app.add_typer(adapters.commands)  # deploy, rollback
app.add_typer(training.commands)  # train, gauntlet, bootstrap, finetune, improve
app.add_typer(learning.commands)  # harvest, export, distill
app.add_typer(memory.commands)  # feedback, ingest
app.add_typer(routing.commands)  # map, governor, route
app.add_typer(stats.commands)  # stats [routing|memory|learning]
app.add_typer(quota_cli.commands)  # usage, limits
app.add_typer(adapters.group, name="adapters")
app.add_typer(learning.dataset_group, name="dataset")
app.add_typer(memory.group, name="memory")
users.group.command("limits")(quota_cli.limits)  # also top-level, hidden
users.group.command("usage")(quota_cli.usage)
app.add_typer(users.group, name="users")
app.add_typer(db_cli.group, name="db")


def main() -> None:
    app()


__all__ = ["app", "main"]
