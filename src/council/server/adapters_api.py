"""Adapters in production: registry, promote / rollback (hot-swap), training runs.

Admin endpoints (COUNCIL_ADMIN_TOKEN, see admin_api.require_admin). A promotion is applied to
this server before the response is sent: the next call already uses the new adapter.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from council.adapters import registry as adapters
from council.adapters.deployer import Deployer
from council.errors import InvalidRequestError
from council.jobs.runs import Runs, spawn_training
from council.server.admin_api import require_admin
from council.server.schemas import require_id

router = APIRouter(tags=["adapters"], dependencies=[Depends(require_admin)])


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(
        None, min_length=1, description="Default: the role's challenger; 'base': none."
    )
    canary: bool = True
    share: float | None = Field(None, gt=0.0, le=1.0)
    window_s: float | None = Field(None, gt=0.0)
    requests: int | None = Field(None, ge=1)
    reason: str = ""

    _ids = field_validator("version", mode="before")(require_id)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = "rolled back by an operator"


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str | None = Field(
        None, min_length=1, description="Frozen dataset version; default: the newest."
    )
    role: str = Field("core", min_length=1)
    epochs: float | None = Field(None, gt=0.0)
    learning_rate: float | None = Field(None, gt=0.0)

    _ids = field_validator("dataset", "role", mode="before")(require_id)


def deployer_of(request: Request) -> Deployer:
    deployer: Deployer | None = getattr(request.app.state, "deployer", None)
    if deployer is None:
        raise InvalidRequestError("Adapters are not available: the server has no store.")
    return deployer


@router.get("/api/adapters")
async def list_adapters(request: Request) -> dict[str, Any]:
    """Every adapter version, oldest first, with the aliases that point at it."""
    registry = deployer_of(request).registry
    await asyncio.to_thread(registry.discover)
    return {"adapters": await asyncio.to_thread(registry.versions)}


@router.get("/api/adapters/state")
async def state(request: Request) -> dict[str, Any]:
    """Per role: champion / challenger / previous, the canary watched, recent changes, and
    what this server is serving right now."""
    deployer = deployer_of(request)
    return {
        "roles": await asyncio.to_thread(deployer.registry.state),
        "serving": deployer.state(),
    }


@router.post("/api/adapters/promote/{role}")
async def promote(role: str, body: PromoteRequest, request: Request) -> dict[str, Any]:
    """Make a version (default: the challenger) the role's champion, under a canary unless
    canary=false. Applied here before this returns; other servers follow within a second."""
    deployer = deployer_of(request)
    registry = deployer.registry
    version = body.version
    if version is None:
        version = registry.aliases(role)["challenger"]
        if version is None:
            raise InvalidRequestError(
                f"Role {role!r} has no challenger; pass a version (see GET /api/adapters)."
            )
    started = time.perf_counter()
    dep = await asyncio.to_thread(
        adapters.deploy, deployer.settings, registry, role, adapters.parse_version(version),
        canary=body.canary, share=body.share, window_s=body.window_s, requests=body.requests,
        action="promote", reason=body.reason or "promoted through the API", announce=False,
    )  # fmt: skip
    await deployer.sync()
    applied_ms = round(1000 * (time.perf_counter() - started), 2)
    await asyncio.to_thread(adapters.announce_deploy, deployer.settings, dep)
    return {"deployment": dep, "applied_ms": applied_ms}


@router.post("/api/adapters/rollback/{role}")
async def rollback(role: str, request: Request, body: RollbackRequest | None = None) -> Any:
    """Back to the previous champion now (a watched canary ends rolled back)."""
    deployer = deployer_of(request)
    reason = (body or RollbackRequest()).reason
    dep = await asyncio.to_thread(adapters.rollback, deployer.settings, deployer.registry,
                                  role, reason, announce=False)  # fmt: skip
    await deployer.sync()  # applied first: a slow webhook never delays the rollback
    await asyncio.to_thread(adapters.announce_rollback, deployer.settings, dep)
    return {"deployment": dep}


@router.post("/api/train", status_code=202)
async def train(body: TrainRequest, request: Request) -> dict[str, Any]:
    """Start a training run in its own process; follow it at /api/runs/{id}."""
    deployer = deployer_of(request)
    runs = Runs(deployer.registry.store, deployer.settings.server.data_dir)
    run_id = await asyncio.to_thread(
        spawn_training, deployer.settings, runs, dataset=body.dataset, role=body.role,
        epochs=body.epochs, learning_rate=body.learning_rate,
    )  # fmt: skip
    return {"run_id": run_id, "status": "running", "url": f"/api/runs/{run_id}"}


@router.get("/api/runs")
async def list_runs(request: Request, kind: str | None = None) -> dict[str, Any]:
    deployer = deployer_of(request)
    runs = Runs(deployer.registry.store, deployer.settings.server.data_dir)
    return {"runs": await asyncio.to_thread(runs.recent, kind)}


@router.get("/api/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """Status, step, progress (0-1), per-step timings, result, and the log's last lines."""
    deployer = deployer_of(request)
    runs = Runs(deployer.registry.store, deployer.settings.server.data_dir)
    return await asyncio.to_thread(runs.get, run_id)
