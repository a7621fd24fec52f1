"""`council users`: who may use this server, and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, err, out, settings_from

if TYPE_CHECKING:
    from council.users.keys import Users

group = typer.Typer(help="Users and their API keys.", no_args_is_help=True)


def _users(config: ConfigOpt) -> Users:
    from council.storage import open_store
    from council.users.keys import Users

    return Users(open_store(settings_from(config)))


@group.command()
def add(
    name: Annotated[str, typer.Argument(help="The user's name: their conversations, memories.")],
    admin: Annotated[bool, typer.Option("--admin", help="May use the admin endpoints.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Add a user and print their API key, once (only its hash is kept).

    From then on the server asks every request for a key (`Authorization: Bearer KEY`, the
    OpenAI SDK's api_key); the web page signs in with it.

    Example: council users add ana   ·   council users add root --admin
    """
    _, key = _users(config).add(name, admin)
    err.print(f"User {name!r} added{' (admin)' if admin else ''}. Their key, shown only now:")
    out.print(key, highlight=False, soft_wrap=True)


@group.command("list")
def list_(config: ConfigOpt = None) -> None:
    """Every user: admin or not, revoked or not, and the start of their live key.

    Example: council users list
    """
    table = Table(title="Users")
    for col in ("name", "admin", "key", "created", "revoked"):
        table.add_column(col)
    for u in _users(config).list():
        table.add_row(
            u["name"], "yes" if u["admin"] else "", ", ".join(f"{k}…" for k in u["keys"]),
            _when(u["created_at"]), _when(u["revoked_at"]),
        )  # fmt: skip
    out.print(table)


@group.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The user whose keys stop working.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a user's keys and web sign-ins; a running server refuses them at once.

    Their data stays theirs; `council users add NAME` gives them a new key.

    Example: council users revoke ana
    """
    _users(config).revoke(name)
    out.print(f"User {name!r} revoked: their key and sign-ins no longer work.")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""
