"""`council stats`: one verb for the routing, memory and learning statistics."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from council.cli.common import ConfigOpt, settings_from
from council.cli.learning import print_learning_stats
from council.cli.memory import print_memory_stats
from council.cli.routing import print_routing_stats

if TYPE_CHECKING:
    from council.config import Settings

commands = typer.Typer()


class Part(StrEnum):
    routing = "routing"
    memory = "memory"
    learning = "learning"


SHOW: dict[Part, Callable[[Settings], None]] = {
    Part.routing: print_routing_stats,
    Part.memory: print_memory_stats,
    Part.learning: print_learning_stats,
}


@commands.command()
def stats(
    part: Annotated[
        Part,
        typer.Argument(
            help="routing: answers kept local, escalations, early stops, today's spend per "
            "head · memory: what is stored · learning: the collected examples."
        ),
    ] = Part.routing,
    config: ConfigOpt = None,
) -> None:
    """Statistics of routing (local share, escalations, spend per head), memory or learning.

    Example: council stats   ·   council stats memory   ·   council stats learning
    """
    SHOW[part](settings_from(config))
