"""Who is asking: every request is authenticated here, once, and its Caller bound for the
routes below (users.caller.current()).

Two modes. Single-user (no key was ever issued, and the server listens on loopback): nobody
signs in, the body's `user` is a label, as it always was, so `make run` works at once. Keys
(a key exists, or the server listens beyond loopback): every route but /health and the page's
files needs `Authorization: Bearer <key>` or the page's session cookie, and the key alone
decides who the user is.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from council.config import Settings
from council.errors import (
    AuthenticationError,
    ConversationNotFoundError,
    CouncilError,
    PermissionDeniedError,
)
from council.memory import ownership
from council.memory.store import ANONYMOUS
from council.server.errors import body_for
from council.server.schemas import MemoryOptions
from council.users.caller import Caller, bind, current
from council.users.keys import Users

SESSION_COOKIE = "council_session"
# The page sends this on every call; a cross-site form or fetch cannot (no CORS here), so a
# state-changing request carried by the cookie alone is refused (CSRF), SameSite or not.
PAGE_HEADER = "x-council-page"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = {"/", "/health", "/favicon.ico", "/api/session"}
ADMIN = Caller(":admin", admin=True, key=":admin-token")  # ':' is never in a user name
HOW_TO_GET_A_KEY = "An admin creates one with `council users add NAME` (it prints the key once)."


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may answer beyond this machine


async def keys_mode(settings: Settings, users: Users) -> bool:
    """Whether requests must sign in (see the module's docstring)."""
    if not loopback(settings.server.host):
        return True
    return await asyncio.to_thread(users.keys_exist)


def _bearer(request: Request) -> str | None:
    """The key: `Authorization: Bearer <key>` (OpenAI's SDK), else `x-api-key` (Anthropic's)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip() or None


def _is_admin_token(settings: Settings, given: str | None) -> bool:
    token = settings.server.admin_token
    if given is None or token is None or not token.get_secret_value():
        return False
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


class Authenticate:
    """ASGI middleware: a Caller for every HTTP request, or its 401/403 before any route runs."""

    def __init__(self, app: ASGIApp, settings: Settings, users: Users):
        self.app, self.settings, self.users = app, settings, users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            caller = await self.caller(request)
        except CouncilError as exc:
            body = body_for(
                request.url.path, exc.status_code, exc.message, exc.error_type, exc.param, exc.code
            )
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            await JSONResponse(body, exc.status_code, headers)(scope, receive, send)
            return
        with bind(caller):
            await self.app(scope, receive, send)

    async def caller(self, request: Request) -> Caller:
        bearer = _bearer(request)
        is_admin = _is_admin_token(self.settings, bearer)
        if not await keys_mode(self.settings, self.users):
            return Caller(ANONYMOUS, admin=is_admin)
        if is_admin:
            return ADMIN
        path = request.url.path
        try:
            return await self.signed_in(request, bearer)
        except AuthenticationError:
            if path in OPEN_PATHS or path.startswith("/static/"):
                return Caller(ANONYMOUS)  # not signed in, and that is fine here
            raise

    async def signed_in(self, request: Request, bearer: str | None) -> Caller:
        if bearer is not None:
            found = await asyncio.to_thread(self.users.caller, bearer)
            if found is None:
                raise AuthenticationError(
                    "This API key is unknown or was revoked. Ask an admin for a new one: "
                    "`council users add NAME`."
                )
            return found
        sid = request.cookies.get(SESSION_COOKIE)
        if sid is None:
            raise AuthenticationError(
                "This server needs an API key: send 'Authorization: Bearer <key>' (the OpenAI "
                "SDK's api_key) or 'x-api-key: <key>' (the Anthropic SDK's), or sign in on the "
                f"web page. {HOW_TO_GET_A_KEY}"
            )
        found = await asyncio.to_thread(self.users.session, sid)
        if found is None:
            raise AuthenticationError(
                "Your sign-in expired or its key was revoked: sign in again with your key.",
                code="session_expired",
            )
        if request.method not in SAFE_METHODS and PAGE_HEADER not in request.headers:
            raise PermissionDeniedError(
                f"A signed-in browser request that changes something must carry the "
                f"'{PAGE_HEADER}' header (the page sends it); other clients send their key as "
                "'Authorization: Bearer <key>'.",
                code="csrf",
            )
        return found


# what the routes ask -------------------------------------------------------------------------
def caller() -> Caller:
    return current() or Caller(ANONYMOUS)


def owner(claimed: str | None, param: str = "user") -> str:
    """Whose data a request reads and writes: the signed-in caller (naming anyone else is
    refused), or in single-user mode the label the request sent."""
    who = caller()
    if not who.signed_in:
        return claimed or ANONYMOUS
    if claimed and claimed != who.name:
        raise PermissionDeniedError(
            f"You are signed in as {who.name!r}, so you cannot act as {claimed!r}: drop the "
            f"'{param}' field (your key already says who you are) or use {claimed!r}'s own key.",
            param=param,
            code="user_mismatch",
        )
    return who.name


def across_users() -> None:
    """A dependency for routes whose figures span every user (/metrics, /api/memory/stats):
    with keys on, admins only. Single-user mode is unchanged."""
    who = caller()
    if who.signed_in and not who.admin:
        raise PermissionDeniedError(
            f"This route reports on every user, so it is for admins; {who.name!r} is not one. "
            "Your own usage is at GET /api/usage; scrape /metrics with an admin key or the "
            "admin token.",
            code="not_admin",
        )


def scoped_to() -> str | None:
    """The user whose ids a request may see; None in single-user mode (every id, as before)."""
    who = caller()
    return who.name if who.signed_in else None


async def memory_options(request: Request, body: MemoryOptions) -> dict[str, Any]:
    """A chat request's memory options with its owner settled: the caller's name (refusing
    another's), and a conversation id only if it is not someone else's (else 404, as if none)."""
    options = body.memory_options()
    options["user"] = owner(body.user)
    cid = options["conversation_id"]
    memory = request.app.state.council.memory
    if cid and memory is not None and caller().signed_in:
        taken = await asyncio.to_thread(
            ownership.conversation_taken, memory.store, cid, options["user"]
        )
        if taken:
            raise ConversationNotFoundError(
                f"No conversation {cid!r} of yours: start a new one with a fresh id."
            )
    return options
