"""/api: feedback on answers, stored exchanges, memory search and stats."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator

from council.errors import ExchangeNotFoundError, InvalidRequestError
from council.memory.episodic import Memory
from council.server.council_api import council_of
from council.server.schemas import FeedbackRequest, check_id

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


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    """Rate an answer (1 good, -1 bad): the exchange is relabelled; feedback overrides."""
    store = memory_of(request).store
    success = await asyncio.to_thread(
        store.add_feedback, body.exchange_id, body.rating, body.comment
    )
    return {"exchange_id": body.exchange_id, "success": success, "label_source": "feedback"}


@router.get("/exchanges/{exchange_id}")
async def exchange(exchange_id: str, request: Request) -> dict[str, Any]:
    """One stored exchange with its votes and feedback."""
    found = await asyncio.to_thread(memory_of(request).store.exchange, exchange_id)
    if found is None:
        raise ExchangeNotFoundError(f"No exchange {exchange_id!r}.")
    return found


@router.get("/memory/stats")
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
    """Memories (and knowledge snippets) closest in meaning to q."""
    memory = memory_of(request)
    filters = {"user": user} if user else None
    found = await asyncio.to_thread(memory.query, q, k, filters)
    result: dict[str, Any] = {"memories": found}
    knowledge = council_of(request).knowledge
    if knowledge is not None:
        snippets = await asyncio.to_thread(knowledge.search, q, k)
        result["knowledge"] = [s.to_dict() for s in snippets]
    return result
