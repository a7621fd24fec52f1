"""The one place HTTP errors are shaped: OpenAI's {"error": {message, type, param, code}}."""

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
        body = error_body(exc.message, exc.error_type, exc.param, exc.code)
        return JSONResponse(body, status_code=exc.status_code, headers=retry_after(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _describe(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param, code), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}. See /docs for the API."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /docs."
        return JSONResponse(error_body(message, "invalid_request_error"), exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        return JSONResponse(error_body(message, "server_error"), 500)
