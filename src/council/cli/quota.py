"""Limits per key: `council users usage [NAME]` and `council users limits NAME --rpm ...`.

Both work on the data dir's store, so a running server sees a new limit at its next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, out, settings_from

if TYPE_CHECKING:
    from council.quota.gate import Quota

commands = typer.Typer()
LIMIT_HELP = "a number, 'unlimited', or 'default' (the setting's value)"


def _quota(config: Any) -> Quota:
    from council.metrics import Metrics
    from council.quota.gate import Quota
    from council.storage import open_store

    settings = settings_from(config)
    return Quota(settings, open_store(settings), Metrics())


def parse_limit(flag: str, raw: str | None, kind: type[int] | type[float]) -> int | float | None:
    """None: leave as stored; 'default' -> NULL; 'unlimited' -> UNLIMITED; else a number."""
    from council.errors import InvalidRequestError
    from council.quota.ledger import UNLIMITED

    if raw is None or raw == "default":
        return None
    if raw == "unlimited":
        return UNLIMITED
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidRequestError(f"{flag} {raw!r} is not a limit; give {LIMIT_HELP}.")
    return value


@commands.command(hidden=True)  # canonical: council users limits|usage
def limits(
    name: Annotated[str, typer.Argument(help="The user (key name) to limit.")],
    rpm: Annotated[
        str | None, typer.Option("--rpm", help=f"Requests per minute: {LIMIT_HELP}.")
    ] = None,
    tokens_per_day: Annotated[
        str | None, typer.Option("--tokens-per-day", help=f"Tokens per UTC day: {LIMIT_HELP}.")
    ] = None,
    usd_per_day: Annotated[
        str | None, typer.Option("--usd-per-day", help=f"USD per UTC day: {LIMIT_HELP}.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Show or set one user's limits (the settings' rpm, tokens_per_day, usd_per_day are the
    defaults). Options not given stay as they are.

    Example: council limits alice --rpm 30 --tokens-per-day 200000 --usd-per-day unlimited
    """
    from council.quota import ledger
    from council.quota.ledger import Override

    quota = _quota(config)
    try:
        old = ledger.override(quota.store, name)
        given = {
            "rpm": (rpm, parse_limit("--rpm", rpm, int)),
            "tokens_per_day": (tokens_per_day,
                               parse_limit("--tokens-per-day", tokens_per_day, int)),
            "usd_per_day": (usd_per_day, parse_limit("--usd-per-day", usd_per_day, float)),
        }  # fmt: skip
        if any(raw is not None for raw, _ in given.values()):
            new: dict[str, Any] = {k: (getattr(old, k) if raw is None else v)
                                   for k, (raw, v) in given.items()}  # fmt: skip
            quota.set_limits(name, Override(**new))
        now = quota.limits(name)
    finally:
        quota.store.close()
    shown = {k: "unlimited" if v is None else f"{v:g}" for k, v in vars(now).items()}
    out.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))


@commands.command(hidden=True)  # canonical: council users limits|usage
def usage(
    name: Annotated[str | None, typer.Argument(help="One user; default: every user.")] = None,
    days: Annotated[int, typer.Option(min=1, help="UTC days back, today included.")] = 1,
    config: ConfigOpt = None,
) -> None:
    """Requests, refusals, tokens and spend per key and per head, with each key's limits.

    Example: council usage   ·   council usage alice --days 7
    """
    quota = _quota(config)
    try:
        report = quota.usage(name, days)
    finally:
        quota.store.close()
    table = Table("key", "head", "requests", "refused", "calls", "tokens", "USD", "limits",
                  title=f"Usage since {report['since']} (UTC)")  # fmt: skip
    for k in report["keys"]:
        lim = k["limits"]
        limits_text = " · ".join(f"{n} {'∞' if v is None else f'{v:g}'}" for n, v in lim.items())
        table.add_row(k["key"], "all", str(k["requests"]), str(k["rejected"]), str(k["calls"]),
                      f"{k['tokens']:,}", f"{k['cost_usd']:.4f}", limits_text)  # fmt: skip
        for h in k["heads"]:
            tokens = h["tokens_in"] + h["tokens_out"]
            table.add_row("", h["head"], "", "", str(h["calls"]), f"{tokens:,}",
                          f"{h['cost_usd']:.4f}", "")  # fmt: skip
    if not report["keys"]:
        out.print(f"No requests from any key since {report['since']} (UTC).")
        return
    out.print(table)
