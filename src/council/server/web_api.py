"""The web chat: GET / (the page), /static (its assets), and the /api it needs beyond /v1:
conversations (list, open, rename, delete) and the strategies the picker offers."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from starlette.responses import Response

from council.errors import ConversationNotFoundError, CouncilError, MemoryOffError
from council.memory.store import Store
from council.server.auth import owner, scoped_to
from council.server.council_api import council_of
from council.server.schemas import check_id
from council.strategies import STRATEGIES

STATIC_DIR = Path(__file__).parent / "static"
# The page renders model output; this policy is the second wall behind the sanitizer: no
# inline script or handler runs and nothing loads from another origin, even if HTML slips by.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

router = APIRouter(tags=["web"])


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description="The new title.")

    @field_validator("title")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title is blank; send the new title text")
        return v.strip()


class RevalidatedStaticFiles(StaticFiles):
    """Assets revalidate on every load (a 304 on loopback), so an upgrade never runs old JS."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _user_list(value: Any) -> Any:
    return check_id(value, "user", "omit it for the anonymous user's conversations")


def install_web(app: FastAPI) -> None:
    """Serve the chat page at / and its assets at /static."""
    app.include_router(router)
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")


def store_of(request: Request) -> Store:
    memory = council_of(request).memory
    if memory is None:
        raise MemoryOffError(
            "Memory is switched off on this server, so conversations are not kept; "
            "start it with COUNCIL_MEMORY=true to enable them."
        )
    return memory.store


async def _found(store: Store, cid: str) -> dict[str, Any]:
    """The conversation, if the caller may see it; another user's answers as a missing one."""
    found = await asyncio.to_thread(store.conversation, cid)
    mine = scoped_to()
    if found is None or (mine is not None and found["user_id"] != mine):
        raise ConversationNotFoundError(
            f"No conversation {cid!r}: it was deleted or never answered. "
            "List yours with GET /api/conversations."
        )
    return found


def turn(ex: dict[str, Any]) -> dict[str, Any]:
    """A stored exchange in the shape the page renders, like the `council` block of /v1."""
    meta_keys = (
        "votes", "confidence", "strategy", "latency_ms", "cost_usd", "task_type", "tokens_in",
        "tokens_out", "notes", "recalled", "success", "label_source", "models",
    )  # fmt: skip
    return {
        "exchange_id": ex["id"],
        "created_at": ex["created_at"],
        "prompt": ex["prompt"],
        "answer": ex["answer"],
        "meta": {"exchange_id": ex["id"], **{k: ex.get(k) for k in meta_keys}},
        "feedback": ex["feedback"],
    }


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The chat page."""
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


@router.get("/api/strategies")
async def strategies(request: Request) -> dict[str, Any]:
    """What the page's controls offer: strategies, the default, the heads, the fast head."""
    council = council_of(request)
    try:
        fast: str | None = council.fastest().id
    except CouncilError:
        fast = None  # no enabled head: the page still loads and shows why sends fail
    return {
        "strategies": list(STRATEGIES),
        "default": council.settings.routing.strategy,
        "descriptions": {
            name: (inspect.getdoc(fn) or "").split("\n")[0] for name, fn in STRATEGIES.items()
        },
        "heads": [h.id for h in council.enabled],
        "fast_head": fast,
        "memory": council.memory is not None,
        "max_prompt_chars": council.settings.server.max_prompt_chars,
    }


@router.get("/api/conversations")
async def conversations(
    request: Request,
    user: Annotated[
        str | None,
        BeforeValidator(_user_list),
        Query(min_length=1, max_length=200, description="Whose list (single-user mode)."),
    ] = None,
) -> dict[str, Any]:
    """The caller's conversations, most recently active first."""
    who = owner(user)  # another user's name is refused before anything else
    store = store_of(request)
    return {"conversations": await asyncio.to_thread(store.conversations, who)}


@router.get("/api/conversations/{cid}")
async def conversation(cid: str, request: Request) -> dict[str, Any]:
    """One conversation with every exchange: prompt, answer, ballot, feedback."""
    store = store_of(request)
    found = await _found(store, cid)
    exchanges = await asyncio.to_thread(store.conversation_exchanges, cid)
    return {**found, "exchanges": [turn(ex) for ex in exchanges]}


@router.patch("/api/conversations/{cid}")
async def rename(cid: str, body: RenameRequest, request: Request) -> dict[str, Any]:
    """Give a conversation a new title."""
    store = store_of(request)
    await _found(store, cid)  # 404 unless it is the caller's
    if not await asyncio.to_thread(store.rename_conversation, cid, body.title):
        await _found(store, cid)  # deleted meanwhile: raises the 404 with its hint
    return await _found(store, cid)


@router.delete("/api/conversations/{cid}")
async def delete(cid: str, request: Request) -> dict[str, Any]:
    """Hide a conversation and forget its memories (the exchanges stay for audit)."""
    store = store_of(request)
    await _found(store, cid)
    await asyncio.to_thread(store.delete_conversation, cid)
    return {"id": cid, "deleted": True}
