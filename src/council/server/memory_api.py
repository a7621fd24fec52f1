"""/api: feedback on answers, stored exchanges, memory search and stats, documents.

Every id is the caller's: another user's exchange answers 404, like one that does not exist."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator

from council.errors import ExchangeNotFoundError, InvalidRequestError, PermissionDeniedError
from council.memory import ownership
from council.memory.corrections import check_correction
from council.memory.episodic import Memory
from council.memory.rag import Knowledge
from council.memory.store import Store
from council.server.auth import across_users, caller, owner, scoped_to
from council.server.council_api import council_of
from council.server.schemas import DocumentRequest, FeedbackRequest, check_id

router = APIRouter(prefix="/api", tags=["memory"])


def _user_filter(value: Any) -> Any:
    return check_id(value, "user", "omit it to search every user's memories")


def memory_of(request: Request) -> Memory:
    memory = council_of(request).memory
    if memory is None:
        raise InvalidRequestError(
            "Memory is switched off on this server; set COUNCIL_MEMORY=true to record exchanges."
        )
    return memory


async def _mine(store: Store, exchange_id: str) -> None:
    """404 for an exchange of another user (single-user mode: every exchange is yours)."""
    mine = scoped_to()
    if mine is None:
        return
    if await asyncio.to_thread(ownership.exchange_owner, store, exchange_id) != mine:
        raise ExchangeNotFoundError(
            f"No exchange {exchange_id!r}. Use the exchange_id returned with your answer."
        )


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    """Rate an answer (1 good, -1 bad; a -1 may carry the right answer as "correction"): the
    exchange is relabelled; feedback overrides."""
    correction = check_correction(body.rating, body.correction)  # 400 before any lookup
    store = memory_of(request).store
    await _mine(store, body.exchange_id)
    success = await asyncio.to_thread(
        store.add_feedback, body.exchange_id, body.rating, body.comment, correction
    )
    return {"exchange_id": body.exchange_id, "success": success, "label_source": "feedback"}


@router.get("/exchanges/{exchange_id}")
async def exchange(exchange_id: str, request: Request) -> dict[str, Any]:
    """One stored exchange with its votes and feedback."""
    store = memory_of(request).store
    await _mine(store, exchange_id)
    found = await asyncio.to_thread(store.exchange, exchange_id)
    if found is None:
        raise ExchangeNotFoundError(f"No exchange {exchange_id!r}.")
    return found


@router.get("/memory/stats", dependencies=[Depends(across_users)])
async def stats(request: Request) -> dict[str, Any]:
    """What is stored: exchanges by label, memories, documents, and the indexes."""
    memory = memory_of(request)
    out = await asyncio.to_thread(memory.store.stats)
    out["memory_index"] = memory.table.index.info.__dict__
    knowledge = council_of(request).knowledge
    if knowledge is not None:
        out["knowledge_index"] = knowledge.table.index.info.__dict__
    return out


@router.get("/memory/search")
async def search(
    request: Request,
    q: str = Query(min_length=1, description="What to look for."),
    user: Annotated[
        str | None,
        BeforeValidator(_user_filter),
        Query(min_length=1, description="Whose memories; omit for all."),
    ] = None,
    k: int = Query(5, ge=1, le=100),
) -> dict[str, Any]:
    """Memories (and knowledge snippets) closest in meaning to q: the caller's own (in
    single-user mode, `user`'s, or everyone's without it)."""
    memory = memory_of(request)
    who = owner(user) if scoped_to() is not None else user
    filters = {"user": who} if who else None
    found = await asyncio.to_thread(memory.query, q, k, filters)
    result: dict[str, Any] = {"memories": found}
    knowledge = council_of(request).knowledge
    if knowledge is not None:
        snippets = await asyncio.to_thread(knowledge.search, q, k, scoped_to())
        result["knowledge"] = [s.to_dict() for s in snippets]
    return result


def knowledge_of(request: Request) -> Knowledge:
    knowledge = council_of(request).knowledge
    if knowledge is None:
        raise InvalidRequestError(
            "The knowledge store is off on this server; set COUNCIL_MEMORY=true (and an "
            "embedder) to ingest documents."
        )
    return knowledge


@router.post("/documents", status_code=201)
async def add_document(body: DocumentRequest, request: Request) -> dict[str, Any]:
    """Add a document as text (replaced if the name was sent before). A signed-in user's
    documents are recalled for them alone; an admin (or single-user mode) shares them.

    Example: {"name": "notes.md", "text": "The wifi password is on the fridge."}
    """
    who = caller()
    shared = not who.signed_in or who.admin
    if body.shared is False:
        shared = False
    elif body.shared and not shared:
        raise PermissionDeniedError(
            "Only an admin can share a document with every user: drop 'shared' to keep it "
            "yours, or ask an admin to ingest it (`council ingest PATH`).",
            param="shared",
            code="not_admin",
        )
    doc_owner = None if shared else owner(None)
    report = await asyncio.to_thread(
        knowledge_of(request).ingest_text, body.name, body.text, doc_owner
    )
    return {
        "document": (report.added + report.replaced + report.unchanged)[0],
        "scope": "shared" if shared else "owner",
        "owner": doc_owner,
        "chunks": report.chunks,
        "status": "added" if report.added else "replaced" if report.replaced else "unchanged",
    }
