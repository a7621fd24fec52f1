"""Admin endpoints: the governor, the cognitive map and routing figures.

They take COUNCIL_ADMIN_TOKEN or an admin user's key (`council users add NAME --admin`):
with no token configured and no admin caller they answer 403 (saying which setting turns them
on); with a missing or wrong `Authorization: Bearer <token>` they answer 401; a signed-in user
who is not an admin gets 403.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from fastapi import APIRouter, Depends, Header, Request

from council.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError
from council.routing import cognitive_map
from council.routing.governor import GovernorUpdate
from council.routing.stats import routing_stats
from council.server.council_api import council_of
from council.users.caller import current


def require_admin(request: Request, authorization: str | None = Header(None)) -> None:
    who = current()  # bound by server/auth.py: the admin token or an admin user's key
    if who is not None and who.admin:
        return
    if who is not None and who.signed_in:
        raise PermissionDeniedError(
            f"User {who.name!r} is not an admin: use an admin's key or the admin token "
            "(an admin user is added with `council users add NAME --admin`).",
            code="not_admin",
        )
    token = council_of(request).settings.server.admin_token
    if token is None or not token.get_secret_value():
        raise PermissionDeniedError(
            "Admin endpoints are off: set COUNCIL_ADMIN_TOKEN (or admin_token in council.toml) "
            "and send it as 'Authorization: Bearer <token>'."
        )
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise AuthenticationError(
            "Missing or wrong admin token: send 'Authorization: Bearer <COUNCIL_ADMIN_TOKEN>'."
        )


router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/api/config/governor")
async def get_governor(request: Request) -> dict[str, Any]:
    """The governor's switches and today's spend per head."""
    return council_of(request).governor.report()


@router.post("/api/config/governor")
async def set_governor(body: GovernorUpdate, request: Request) -> dict[str, Any]:
    """Change some switches (persisted; learning jobs and the council obey them at once).

    Example: {"local_only": true, "daily_budget_usd": 2.5}
    """
    governor = council_of(request).governor
    governor.update(body)
    return governor.report()


@router.get("/api/cognitive-map")
async def get_map(request: Request) -> dict[str, Any]:
    """The cognitive map the selector reads (per-domain confidence and its evidence)."""
    council = council_of(request)
    path = council.settings.server.data_dir / cognitive_map.FILE
    if not path.exists():
        raise InvalidRequestError(
            "No cognitive map yet: POST /api/cognitive-map (or run `council map`) to build it.",
            code="no_cognitive_map",
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@router.post("/api/cognitive-map")
async def rebuild_map(request: Request) -> dict[str, Any]:
    """Rebuild the cognitive map now from live success rates, gauntlet and training data."""
    council = council_of(request)
    store = request.app.state.users.store  # the app's one store, with memory on or off
    return await asyncio.to_thread(cognitive_map.write, council.settings.server.data_dir, store)


@router.get("/api/routing/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Answers, cloud share, escalations and early stops, plus the governor's report."""
    council = council_of(request)
    store = request.app.state.users.store  # the app's one store, with memory on or off
    return await asyncio.to_thread(routing_stats, council.settings, store, council.governor)
