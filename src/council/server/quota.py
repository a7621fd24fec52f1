"""Limits per key over HTTP: every request that asks the council is admitted (or refused with
429 and Retry-After) before it runs; GET /api/usage reports usage per key and per head.

`admit` is an app-wide dependency (create_app), so it runs after every middleware, whichever
binds the caller; it acts only on the routes in ASKS. Only user keys are metered: single-user
mode (nobody signs in) and the admin token are not limited.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request

from council.config import Settings
from council.council import Council
from council.errors import PermissionDeniedError
from council.quota.gate import Quota
from council.storage import Store
from council.users.caller import Caller, current

# The routes that ask the council (each costs one request and all the head calls it causes).
ASKS = frozenset({"/v1/chat/completions", "/v1/messages", "/vote", "/chat", "/hybrid",
                  "/v1/embeddings"})  # fmt: skip

router = APIRouter(tags=["usage"])


def caller_of(request: Request) -> Caller | None:
    caller: Caller | None = current() or getattr(request.state, "caller", None)
    return caller


def quota_of(request: Request) -> Quota:
    quota: Quota = request.app.state.quota
    return quota


async def admit(request: Request) -> None:
    """Refuse a request over its key's limits before it runs; count it otherwise."""
    path = getattr(request.scope.get("route"), "path", request.url.path)
    caller = caller_of(request)
    if path not in ASKS or caller is None or not caller.metered:
        return  # single-user mode (nobody signed in) and the admin token are not limited
    await asyncio.to_thread(quota_of(request).admit, caller)


@router.get("/api/usage")
async def usage(
    request: Request,
    user: str | None = Query(None, description="Whose usage (admins); default: your own."),
    days: int = Query(1, ge=1, le=366, description="UTC days back, today included."),
) -> dict[str, Any]:
    """Requests, refusals, tokens and spend per key and per head, with each key's limits."""
    caller = caller_of(request)
    if caller is not None and not caller.admin:
        if user not in (None, caller.name):
            raise PermissionDeniedError(
                f"Key {caller.name!r} may read only its own usage; drop ?user= or ask an "
                "admin (council users usage NAME).",
                code="not_admin",
            )
        user = caller.name
    return await asyncio.to_thread(quota_of(request).usage, user, days)


def install_quota(app: FastAPI, council: Council, settings: Settings, store: Store) -> Quota:
    """The app's Quota on `store` (the app's one store, which the app closes), charged by every
    head call of `council`, and its /api/usage route."""
    quota = Quota(settings, store, council.metrics).attach(council)
    app.state.quota = quota
    app.include_router(router)
    return quota
