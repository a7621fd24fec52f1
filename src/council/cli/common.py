"""What every CLI part shares: the --config option, the consoles, settings, the error exit.

No module of `council.cli` imports the package itself (`council.cli.__init__` builds the app
from the parts), so the parts import each other only downwards and never in a circle.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from council.errors import CouncilError

if TYPE_CHECKING:
    from council.config import Settings
    from council.council import Council

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="council.toml to use (else ./council.toml).")
]


class CouncilGroup(TyperGroup):
    """The root command group: the one place a CouncilError becomes a message and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CouncilError as exc:
            err.print(f"[bold red]Error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """Settings from `--config` (which must exist) and the options given on the command line."""
    from council.config import load_settings

    if config is not None:
        if not config.exists():
            from council.errors import ConfigError

            raise ConfigError(
                f"Config file {config} does not exist; pass an existing council.toml."
            )
        os.environ["COUNCIL_CONFIG"] = str(config)
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def with_council(settings: Settings, work: Callable[[Council], Awaitable[T]]) -> T:
    """Run `work(council)` on a fresh Council and close it afterwards."""
    from council.council import Council

    async def run() -> T:
        council = Council(settings)
        try:
            return await work(council)
        finally:
            await council.close()

    return asyncio.run(run())
