"""Memory: feedback, ingest, `memory search|list|forget`; the memory statistics."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from council.cli.common import ConfigOpt, err, out, settings_from

if TYPE_CHECKING:
    from council.config import Settings

commands = typer.Typer()
group = typer.Typer(help="Inspect what the council remembers.", no_args_is_help=True)


class Rating(StrEnum):
    up = "up"
    down = "down"


def _open(settings: Settings) -> tuple[Any, Any, Any]:
    """(store, memory, knowledge) without loading any model heads."""
    from council.embeddings import make_embedder
    from council.errors import ConfigError
    from council.memory.episodic import Memory
    from council.memory.rag import Knowledge
    from council.storage import open_store

    embedder = make_embedder(settings.memory.embedder, settings.heads.threads)
    if embedder is None:
        raise ConfigError("Memory needs an embedder; set COUNCIL_EMBEDDER (e.g. minilm).")
    store = open_store(settings)
    return store, Memory(settings, embedder, store), Knowledge(settings, embedder, store)


@commands.command()
def feedback(
    exchange_id: Annotated[str, typer.Argument(help="The exchange id printed with the answer.")],
    rating: Annotated[Rating, typer.Argument(help="up = good answer, down = bad answer.")],
    comment: Annotated[str | None, typer.Option(help="Why (kept with the rating).")] = None,
    correction: Annotated[
        str | None, typer.Option(help="With down: what the answer should have been.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Rate an answer; the exchange is relabelled (feedback overrides other signals). A
    correction is the strongest label: the nightly cycle learns to reach it.

    Example: council feedback ex_3f2a... down --correction "391"
    """
    from council.storage import open_store

    store = open_store(settings_from(config))
    rated = 1 if rating is Rating.up else -1
    success = store.add_feedback(exchange_id, rated, comment, correction)
    note = " with a correction" if correction else ""
    out.print(f"{exchange_id} labelled {'success' if success else 'failure'} (feedback{note})")


@commands.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .html .pdf).")],
    config: ConfigOpt = None,
) -> None:
    """Add documents to the knowledge store (changed files are replaced, unchanged skipped).

    Example: council ingest docs/ notes.md manual.pdf
    """
    _, _, knowledge = _open(settings_from(config))
    report = knowledge.ingest(paths)
    for path in report.added:
        out.print(f"added      {path}", highlight=False)
    for path in report.replaced:
        out.print(f"replaced   {path}", highlight=False)
    for path in report.unchanged:
        out.print(f"unchanged  {path}", highlight=False)
    for path, why in report.errors:
        err.print(f"[yellow]skipped[/]    {path}: {why}", highlight=False, soft_wrap=True)
    out.print(
        f"{len(report.added)} added, {len(report.replaced)} replaced, "
        f"{len(report.unchanged)} unchanged, {len(report.errors)} skipped; "
        f"{report.chunks} chunks stored"
    )
    if report.errors and not (report.added or report.replaced or report.unchanged):
        raise typer.Exit(1)


def print_memory_stats(settings: Settings) -> None:
    """What is stored: exchanges by label, memories, documents, index state."""
    store, memory, knowledge = _open(settings)
    table = Table(title="Memory")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for key, value in store.stats().items():
        table.add_row(key, str(value))
    for name, t in (("memory index", memory.table), ("knowledge index", knowledge.table)):
        i = t.index.info
        table.add_row(name, f"{i.kind}, {i.count} vectors ({t.opened_as})")
    out.print(table)


@group.command("stats", hidden=True)  # README's spelling of `council stats memory`
def memory_stats(config: ConfigOpt = None) -> None:
    """Show what is stored: exchanges by label, memories, documents, index state.

    Example: council memory stats
    """
    print_memory_stats(settings_from(config))


@group.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for, by meaning.")],
    k: Annotated[int, typer.Option(help="How many results.")] = 5,
    user: Annotated[str | None, typer.Option(help="Only this user's memories.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Search memories and knowledge by meaning.

    Example: council memory search "capital of France" --user ana
    """
    _, memory, knowledge = _open(settings_from(config))
    table = Table(title=f"Closest to {text!r}")
    for col in ("score", "kind", "source", "text"):
        table.add_column(col, overflow="fold")
    for r in memory.query(text, k, {"user": user} if user else None):
        label = {True: "ok", False: "failed", None: "?"}[r["success"]]
        table.add_row(f"{r['score']:.2f}", f"{r['role']} ({label})", r["user_id"], r["text"][:200])
    for s in knowledge.search(text, k):
        table.add_row(f"{s.score:.2f}", "knowledge", f"{s.source}#{s.position}", s.text[:200])
    out.print(table)


def _facts(settings: Settings) -> Any:
    """The facts of this data dir (rules only: the CLI loads no model heads)."""
    from council.facts.facts import Facts

    store, memory, _ = _open(settings)
    return Facts(store, memory.embedder, None, settings.memory), memory


@group.command("list")
def list_facts(
    user: Annotated[str | None, typer.Option(help="Only this user's facts.")] = None,
    history: Annotated[bool, typer.Option(help="Include superseded facts.")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the facts Council keeps about users (newest first).

    Example: council memory list --user ana
    """
    import time

    facts, _ = _facts(settings_from(config))
    table = Table(title="Facts")
    for col in ("id", "user", "said", "text", "from exchange", "superseded by"):
        table.add_column(col, overflow="fold")
    for f in facts.list(user, history):
        said = time.strftime("%Y-%m-%d", time.gmtime(f["said_at"]))
        table.add_row(str(f["id"]), f["user_id"], said, f["text"], f["exchange_id"] or "",
                      str(f["superseded_by"] or ""))  # fmt: skip
    out.print(table)


@group.command()
def forget(
    fact_id: Annotated[int | None, typer.Argument(help="The fact's id (see memory list).")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Erase everything about --user: facts, exchanges.")
    ] = False,
    user: Annotated[str | None, typer.Option(help="Whose data --all erases.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Erase one fact, or with --all everything about a user (facts, memories, exchanges).

    Example: council memory forget 12; council memory forget --all --user ana --yes
    """
    from council.errors import FactNotFoundError, InvalidRequestError

    facts, memory = _facts(settings_from(config))
    if all_:
        if not user or fact_id is not None:
            raise InvalidRequestError("Use either ID, or --all with --user NAME.")
        if not yes:
            typer.confirm(f"Erase every fact, memory and exchange of {user!r}?", abort=True)
        counts = facts.forget_user(user)
        memory.table.rebuild()  # the erased memories' vectors leave the index files too
        out.print(", ".join(f"{n} {what}" for what, n in counts.items()) + f" of {user} erased")
        return
    if fact_id is None:
        raise InvalidRequestError("Name the fact to forget (council memory list), or use --all.")
    if not facts.forget(fact_id):
        raise FactNotFoundError(f"No fact {fact_id}. List them with: council memory list")
    out.print(f"fact {fact_id} erased")
