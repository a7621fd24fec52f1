"""Users and sign-in over HTTP: the admin's /api/users, the page's /api/session, and the
admin's view of every user's conversations (/api/admin/...). Users own their data everywhere
else; only these admin endpoints see across users."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from council.errors import AuthenticationError, ConversationNotFoundError, InvalidRequestError
from council.memory import ownership
from council.server.admin_api import require_admin
from council.server.auth import PAGE_HEADER, SESSION_COOKIE, caller, keys_mode
from council.server.web_api import store_of, turn
from council.users.keys import Users

admin = APIRouter(tags=["users"], dependencies=[Depends(require_admin)])
session = APIRouter(tags=["users"])


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="The user's name (their data).")
    admin: bool = Field(False, description="May use the admin endpoints.")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200, description="The key `users add` printed.")


def users_of(request: Request) -> Users:
    users: Users = request.app.state.users
    return users


@admin.post("/api/users", status_code=201)
async def add_user(body: NewUser, request: Request) -> dict[str, Any]:
    """A new user and their key. The key is shown this once: hand it to the user."""
    name, key = await asyncio.to_thread(users_of(request).add, body.name, body.admin)
    return {"name": name, "key": key, "admin": body.admin}


@admin.get("/api/users")
async def list_users(request: Request) -> dict[str, Any]:
    """Every user, whether admin or revoked, and the first characters of their live keys."""
    return {"users": await asyncio.to_thread(users_of(request).list)}


@admin.delete("/api/users/{name}")
async def revoke_user(name: str, request: Request) -> dict[str, Any]:
    """Revoke a user's keys and sessions; their very next request answers 401."""
    await asyncio.to_thread(users_of(request).revoke, name)
    return {"name": name, "revoked": True}


@admin.get("/api/admin/conversations")
async def all_conversations(
    request: Request, user: str | None = Query(None, description="Only this user's.")
) -> dict[str, Any]:
    """Every user's conversations (or one user's), most recently active first."""
    store = store_of(request)
    return {"conversations": await asyncio.to_thread(ownership.all_conversations, store, user)}


@admin.get("/api/admin/conversations/{cid}")
async def any_conversation(cid: str, request: Request) -> dict[str, Any]:
    """Any user's conversation with every exchange."""
    store = store_of(request)
    found = await asyncio.to_thread(store.conversation, cid)
    if found is None:
        raise ConversationNotFoundError(f"No conversation {cid!r}.")
    exchanges = await asyncio.to_thread(store.conversation_exchanges, cid)
    return {**found, "exchanges": [turn(ex) for ex in exchanges]}


# the page's sign-in --------------------------------------------------------------------------
async def _mode(request: Request) -> str:
    on = await keys_mode(request.app.state.settings, users_of(request))
    return "keys" if on else "single-user"


@session.get("/api/session")
async def whoami(request: Request) -> dict[str, Any]:
    """Which mode the server is in, and who this browser is signed in as (null: nobody)."""
    who = caller()
    return {
        "mode": await _mode(request),
        "user": who.name if who.signed_in else None,
        "admin": who.admin,
    }


def _page_only(request: Request) -> None:
    if PAGE_HEADER not in request.headers:
        raise InvalidRequestError(
            f"Sign-in is for the web page, which sends the '{PAGE_HEADER}' header; other "
            "clients send their key as 'Authorization: Bearer <key>' instead.",
            code="csrf",
        )


@session.post("/api/session")
async def sign_in(body: SignIn, request: Request) -> JSONResponse:
    """Sign this browser in with a key: an HttpOnly, SameSite=Strict session cookie."""
    _page_only(request)
    ttl = request.app.state.settings.server.session_hours * 3600
    opened = await asyncio.to_thread(users_of(request).open_session, body.key.strip(), ttl)
    if opened is None:
        raise AuthenticationError(
            "This key is unknown or was revoked. Ask an admin for one: `council users add NAME`."
        )
    sid, who = opened
    response = JSONResponse({"mode": await _mode(request), "user": who.name, "admin": who.admin})
    response.set_cookie(
        SESSION_COOKIE, sid, max_age=int(ttl), path="/", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@session.delete("/api/session")
async def sign_out(request: Request) -> JSONResponse:
    """Sign this browser out: the session ends on the server and the cookie is cleared."""
    _page_only(request)
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await asyncio.to_thread(users_of(request).close_session, sid)
    response = JSONResponse({"mode": await _mode(request), "user": None, "admin": False})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
