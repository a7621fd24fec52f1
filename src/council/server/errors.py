"""The one place HTTP errors are shaped: OpenAI's {"error": {message, type, param, code}}, or
Anthropic's {"type": "error", "error": {type, message}} on the Anthropic routes (/v1/messages)."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from council.errors import CouncilError

log = logging.getLogger(__name__)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# Anthropic's error types by status (docs.anthropic.com/en/api/errors); 5xx: api_error.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
ANTHROPIC_PREFIX = "/v1/messages"


def anthropic_route(path: str) -> bool:
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def anthropic_body(message: str, status: int) -> dict:
    type_ = ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": type_, "message": message}}


def body_for(
    path: str,
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
) -> dict:
    """The error body in the shape the route's clients read: Anthropic's or OpenAI's."""
    if anthropic_route(path):
        return anthropic_body(message, status)
    return error_body(message, type_, param, code)


def _describe(exc: RequestValidationError) -> tuple[str, str | None, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return (
            f"Malformed JSON body: {first.get('ctx', {}).get('error', 'could not parse')}. "
            "Send a JSON object with Content-Type: application/json.",
            None,
            "invalid_json",
        )
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        # Our validators' messages name the field and the fix; pydantic's prefix adds nothing.
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc or 'body'}: {msg}")
    param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
    return "Invalid request: " + "; ".join(parts), param, "invalid_value"


def retry_after(exc: Exception) -> dict[str, str] | None:
    """Retry-After (whole seconds, at least 1) for any error that says when to come back."""
    seconds = getattr(exc, "retry_after", None)
    if seconds is None:
        return None
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CouncilError)
    async def _council(request: Request, exc: CouncilError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc.message)
        path, status = request.url.path, exc.status_code
        body = body_for(path, status, exc.message, exc.error_type, exc.param, exc.code)
        return JSONResponse(body, status_code=status, headers=retry_after(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _describe(exc)
        body = body_for(request.url.path, 400, message, "invalid_request_error", param, code)
        return JSONResponse(body, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}. See /docs for the API."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /docs."
        body = body_for(request.url.path, exc.status_code, message, "invalid_request_error")
        return JSONResponse(body, exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        return JSONResponse(body_for(request.url.path, 500, message, "server_error"), 500)
