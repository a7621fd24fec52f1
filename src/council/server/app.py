"""create_app(settings): the FastAPI application around one Council."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from council import __version__
from council.adapters.deployer import Deployer
from council.adapters.registry import Registry
from council.config import Settings
from council.council import Council
from council.learning.store_metrics import StoreMetrics
from council.server import (
    adapters_api,
    admin_api,
    anthropic_api,
    council_api,
    embeddings_api,
    facts_api,
    memory_api,
    openai_api,
)
from council.server.auth import Authenticate, across_users, loopback
from council.server.errors import install_error_handlers
from council.server.limits import BodyLimit, HostCheck, allowed_hosts
from council.server.quota import admit, install_quota
from council.server.users_api import admin as users_admin
from council.server.users_api import session as users_session
from council.server.web_api import install_web
from council.storage import open_store
from council.users.keys import Users

log = logging.getLogger(__name__)


async def warn_if_locked(settings: Settings, users: Users) -> None:
    """Beyond loopback every request needs a key: say so at startup while none exists."""
    host = settings.server.host
    if loopback(host) or await asyncio.to_thread(users.keys_exist):
        return
    token = settings.server.admin_token
    who = (
        "only the admin token (COUNCIL_ADMIN_TOKEN) gets in"
        if token is not None and token.get_secret_value()
        else "nobody gets in (no COUNCIL_ADMIN_TOKEN is set either)"
    )
    log.warning(
        "Listening on %s with no API key yet: every request needs one, so %s. Create a "
        "key with `council users add NAME` (--admin to manage users), or listen on "
        "127.0.0.1 for single-user mode.",
        host,
        who,
    )


def create_app(settings: Settings, council: Council | None = None) -> FastAPI:
    """Build the app; the council's heads load at startup, before the port accepts requests."""
    council = council or Council(settings)
    # Users live in the store even when memory (recording exchanges) is off.
    own_store = council.memory is None
    users = Users(council.memory.store if council.memory is not None else open_store(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        await council.start()
        # the registry lives in the store, which is there with memory off too: a promoted
        # adapter is what the heads answer with whether or not exchanges are remembered
        deployer = Deployer(council, Registry(users.store, settings.server.data_dir), settings)
        council.metrics.registry.register(StoreMetrics(users.store))
        await deployer.start()  # each role's champion is loaded before the port opens
        app.state.deployer = deployer
        log.info(
            "council ready in %.1fs with %d heads",
            time.perf_counter() - started,
            len(council.enabled),
        )
        await warn_if_locked(settings, users)
        yield
        await deployer.close()
        await council.close()
        if own_store:
            users.store.close()

    app = FastAPI(
        title="Council",
        version=__version__,
        summary="Every answer is a vote of several model heads.",
        lifespan=lifespan,
        dependencies=[Depends(admit)],  # limits per key, before any request asks the council
    )
    app.state.council = council
    app.state.settings = settings
    app.state.started_at = time.time()
    app.state.users = users
    install_error_handlers(app)
    app.include_router(council_api.router)
    app.include_router(openai_api.router)
    app.include_router(embeddings_api.router)
    app.include_router(anthropic_api.router)
    app.include_router(memory_api.router)
    app.include_router(facts_api.router)
    app.include_router(admin_api.router)
    app.include_router(adapters_api.router)
    app.include_router(users_admin)
    app.include_router(users_session)
    install_web(app)
    install_quota(app, council, settings, users.store)
    app.add_middleware(Authenticate, settings=settings, users=users)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        council.metrics.requests.labels(path, str(response.status_code)).inc()
        return response

    @app.get("/metrics", tags=["ops"], dependencies=[Depends(across_users)])
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(council.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, limit=settings.server.max_body_bytes)
    app.add_middleware(HostCheck, allowed_hosts=allowed_hosts(settings))  # outermost
    return app
