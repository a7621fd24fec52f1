"""/api/memories: the facts Council keeps about the caller, visible, editable and erasable.

Another user's fact id answers 404, like one that does not exist. Forgetting is erasure: the
row and its vector are deleted, not hidden."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from council.errors import FactNotFoundError, MemoryOffError
from council.facts.facts import Facts
from council.server.auth import owner, scoped_to
from council.server.council_api import council_of
from council.server.schemas import check_id

router = APIRouter(prefix="/api/memories", tags=["memory"])


class EditFact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000, description="The fact, corrected.")


class ForgetAll(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: Literal["forget everything"] = Field(description='Exactly "forget everything".')
    user: str | None = Field(None, description="Whose (single-user mode); default: the caller.")


def _user(value: Any) -> Any:
    return check_id(value, "user", "omit it for your own facts")


def facts_of(request: Request) -> Facts:
    facts = council_of(request).facts
    if facts is None:
        raise MemoryOffError(
            "This server keeps no facts about users: start it with COUNCIL_FACTS=true "
            "(and COUNCIL_MEMORY=true)."
        )
    return facts


async def _mine(facts: Facts, fact_id: int) -> None:
    found = await asyncio.to_thread(facts.get, fact_id)
    mine = scoped_to()
    if found is None or (mine is not None and found.user_id != mine):
        raise FactNotFoundError(
            f"No fact {fact_id}: it was forgotten or is not yours. List yours with "
            "GET /api/memories."
        )


@router.get("")
async def list_facts(
    request: Request,
    history: bool = False,
    user: Annotated[str | None, BeforeValidator(_user), Query(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    """The caller's facts, newest first, with the exchange each came from and when it was
    said; history=true adds the superseded ones (superseded_by names the newer fact)."""
    who = owner(user)
    facts = facts_of(request)
    return {"user": who, "memories": await asyncio.to_thread(facts.list, who, history)}


@router.patch("/{fact_id}")
async def edit_fact(fact_id: int, body: EditFact, request: Request) -> dict[str, Any]:
    """Correct a fact's text (it is embedded again)."""
    facts = facts_of(request)
    await _mine(facts, fact_id)
    edited = await asyncio.to_thread(facts.edit, fact_id, body.text.strip())
    return edited.to_dict() if edited else {}


@router.delete("/{fact_id}")
async def forget_fact(fact_id: int, request: Request) -> dict[str, Any]:
    """Erase one fact: its row and its vector are deleted."""
    facts = facts_of(request)
    await _mine(facts, fact_id)
    await asyncio.to_thread(facts.forget, fact_id)
    return {"id": fact_id, "deleted": True}


@router.delete("")
async def forget_everything(body: ForgetAll, request: Request) -> dict[str, Any]:
    """Erase everything about the caller: facts, memories, exchanges, conversations."""
    who = owner(body.user)
    council = council_of(request)
    counts = await asyncio.to_thread(facts_of(request).forget_user, who)
    if council.memory is not None:  # the erased memories' vectors leave the index files too
        await asyncio.to_thread(council.memory.table.rebuild)
    return {"user": who, "deleted": counts}
