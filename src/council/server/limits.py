"""What the server accepts before any route runs: the size of a body and the Host header."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette._utils import parse_host_header
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from council.config import Settings
from council.server.errors import body_for, error_body

LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]


def too_large(limit: int) -> str:
    return (
        f"The request body is over {limit} bytes (COUNCIL_MAX_BODY_BYTES). Send less "
        "(ingest large documents with `council ingest`) or raise the limit."
    )


class BodyLimit:
    """413 for a body over `limit` bytes: at once when Content-Length says so, else as soon
    as the bytes read pass it (a chunked body is never buffered whole)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        body = body_for(path, 413, too_large(self.limit), "invalid_request_error", None,
                        "body_too_large")  # fmt: skip
        refusal = JSONResponse(body, status_code=413)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await refusal(scope, receive, send)
            return
        seen, refused, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, refused
            if seen > self.limit:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # answer now; the route is told the client left
                if not started:
                    refused = True
                    await refusal(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer; the route's own reply is dropped
            started = True
            await send(message)

        await self.app(scope, counted, guarded)


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host names served: the setting, else loopback plus the bound host (any for a
    wildcard bind, where the names the machine is reached by are not known)."""
    if settings.server.allowed_hosts is not None:
        return settings.server.allowed_hosts
    host = settings.server.host
    if host in ("", "0.0.0.0", "::"):
        return ["*"]
    try:
        bracketed = ipaddress.ip_address(host).version == 6
    except ValueError:
        bracketed = False
    return [*LOOPBACK, f"[{host}]" if bracketed else host]


class HostCheck(TrustedHostMiddleware):
    """Starlette's TrustedHost (DNS rebinding), with an error that says the fix. The
    in-process TestClient (client "testclient") has no network peer, so it is not checked."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]):
        super().__init__(app, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket") or self.trusted(scope):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        message = (
            f"Host {host!r} is not served here. Use one of {', '.join(self.allowed_hosts)}, "
            "or add it to COUNCIL_ALLOWED_HOSTS."
        )
        body = error_body(message, "invalid_request_error", "host", "host_not_allowed")
        await JSONResponse(body, status_code=400)(scope, receive, send)

    def trusted(self, scope: Scope) -> bool:
        if (scope.get("client") or ("",))[0] == "testclient":
            return True
        parsed = parse_host_header(Headers(scope=scope).get("host"))
        if parsed is None:
            return False
        host = parsed.host.lower()
        return any(
            host == p or (p.startswith("*") and host.endswith(p[1:])) for p in self.allowed_hosts
        )
