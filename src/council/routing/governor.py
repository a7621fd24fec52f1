"""The governor: cost and locality switches that outlive a restart.

Its five switches are Settings fields (`governor_enabled` is the API's `enabled`); overrides
are persisted in data_dir/governor.json and written onto the Settings object the council and
the learning jobs share, so `settings.routing.local_only` (read by learning/arbiter.py and
agent0.py) is always the governed value. A file changed by another process (`council governor ...`
while the server runs) is picked up on the next request.

With COUNCIL_REDIS_URL the overrides live in a Redis hash instead (one field per switch, so
two replicas changing different switches lose neither). Enforcement re-reads it at most every
REDIS_REFRESH_S (a read per head call cost a tenth of a replica's CPU in
benchmarks/replicas.py); the API's reads and this process's own changes are at once. The first
replica seeds the hash from governor.json when it has none. Redis down: the last values read
stay in force.

Enforcement happens where every head call passes, `Council.call`: a cloud head is refused
while local_only is on, and a priced head once today's spend reaches daily_budget_usd.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from council.config import HeadSpec, Settings
from council.errors import ConfigError, InvalidRequestError, SharedStateUnavailable
from council.routing.selector import CHARS_PER_TOKEN
from council.routing.spend import SpendLedger
from council.types import Completion, Message

log = logging.getLogger(__name__)
FILE = "governor.json"
REDIS_KEY = "council:governor"
REDIS_REFRESH_S = 0.25  # how stale another replica's switch may be where it is enforced
# API name -> (Settings section, attribute)
FIELDS = {
    "enabled": ("routing", "governor_enabled"),
    "enable_oracle_refinement": ("learning", "enable_oracle_refinement"),
    "force_arbiter": ("learning", "force_arbiter"),
    "local_only": ("routing", "local_only"),
    "daily_budget_usd": ("routing", "daily_budget_usd"),
}


class GovernorState(BaseModel):
    """The governor's switches as GET /api/config/governor shows them."""

    enabled: bool = Field(description="Enforce daily_budget_usd on priced heads.")
    enable_oracle_refinement: bool = Field(description="Learning: an Oracle reviews answers.")
    force_arbiter: bool = Field(description="Learning: the Arbiter decides every answer.")
    local_only: bool = Field(description="Never call a cloud head (answers or learning).")
    daily_budget_usd: float | None = Field(description="Cap on today's (UTC) priced spend.")


class GovernorUpdate(BaseModel):
    """A change to some switches; fields left out keep their value. null budget: no cap."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    enable_oracle_refinement: bool | None = None
    force_arbiter: bool | None = None
    local_only: bool | None = None
    daily_budget_usd: float | None = Field(None, ge=0.0)


class Governor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.server.data_dir / FILE
        self.ledger = SpendLedger(settings.server.data_dir / "spend")
        self._mtime: float | None = None
        self.redis_url = settings.deploy.redis_url
        self._seen: dict[str, Any] | None = None  # the hash as last read (Redis only)
        self._read_at = 0.0  # monotonic time of that read
        if self.redis_url:
            self._seed_redis()
        self.refresh()

    # the switches --------------------------------------------------------------------
    def state(self) -> GovernorState:
        self.refresh(fresh=True)
        return GovernorState(
            **{k: getattr(getattr(self.settings, sec), v) for k, (sec, v) in FIELDS.items()}
        )

    def update(self, change: GovernorUpdate | dict[str, Any]) -> GovernorState:
        """Apply and persist a change (atomic write); returns the new state."""
        if isinstance(change, dict):
            try:
                change = GovernorUpdate(**change)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InvalidRequestError(
                    f"Invalid governor setting {'.'.join(map(str, first['loc']))}: "
                    f"{first['msg']}. Known: {', '.join(FIELDS)}",
                    param=str(first["loc"][0]) if first["loc"] else None,
                ) from None
        given = {  # null means "unchanged", except for the budget, where it means "no cap"
            k: v
            for k, v in change.model_dump(exclude_unset=True).items()
            if v is not None or k == "daily_budget_usd"
        }
        if self.redis_url:
            self._write_redis(given)
            self.refresh(fresh=True)
            log.info("governor updated: %s", given)
            return self.state()
        saved = {**self._read(), **given}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(saved, indent=2, sort_keys=True))
        os.replace(tmp, self.path)  # readers see the old file or the new one, never half
        self._apply(saved)
        self._mtime = self.path.stat().st_mtime
        log.info("governor updated: %s", given)
        return self.state()

    def refresh(self, fresh: bool = False) -> None:
        """Re-read governor.json (or the Redis hash) when another process changed it; with
        Redis, at most every REDIS_REFRESH_S unless `fresh`."""
        if self.redis_url:
            if fresh or time.monotonic() - self._read_at >= REDIS_REFRESH_S:
                self._refresh_redis()
            return
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self._mtime = mtime
            self._apply(self._read())

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
            return GovernorUpdate(**data).model_dump(exclude_unset=True)
        except FileNotFoundError:
            return {}
        except (ValueError, ValidationError) as exc:
            raise ConfigError(
                f"{self.path} is not a valid governor file ({exc}); fix it or delete it to "
                "return to the settings' values."
            ) from None

    # Redis ---------------------------------------------------------------------------------
    def _client(self) -> Any:
        from council.shared import redis_client

        return redis_client(str(self.redis_url))

    def _seed_redis(self) -> None:
        """Carry governor.json's overrides into an empty hash (the first replica on Redis)."""
        import redis

        saved = self._read()
        if not saved:
            return
        try:
            if self._client().hsetnx(REDIS_KEY, "_seeded", "1"):
                self._client().hset(REDIS_KEY, mapping={k: json.dumps(v) for k, v in saved.items()})
        except redis.RedisError as exc:
            log.error("governor switches not copied to Redis (%s); check COUNCIL_REDIS_URL", exc)

    def _refresh_redis(self) -> None:
        import redis

        try:
            raw = self._client().hgetall(REDIS_KEY)
            self._read_at = time.monotonic()
        except redis.RedisError as exc:
            log.warning("governor switches not read from Redis (%s); keeping the last ones", exc)
            self._read_at = time.monotonic()  # a Redis that is down is not asked per call
            return
        try:
            saved = GovernorUpdate(**{
                k.decode(): json.loads(v) for k, v in raw.items() if k.decode() in FIELDS
            }).model_dump(exclude_unset=True)  # fmt: skip
        except (ValueError, ValidationError) as exc:
            log.error("governor switches in Redis %s are invalid (%s); fix them with "
                      "`council governor` or delete the key", REDIS_KEY, exc)  # fmt: skip
            return
        if saved != self._seen:
            self._seen = saved
            self._apply(saved)

    def _write_redis(self, given: dict[str, Any]) -> None:
        import redis

        if not given:
            return
        try:
            self._client().hset(REDIS_KEY, mapping={k: json.dumps(v) for k, v in given.items()})
        except redis.RedisError as exc:
            raise SharedStateUnavailable(
                f"Cannot save the governor's switches in Redis ({exc}); check that "
                "COUNCIL_REDIS_URL is reachable and retry."
            ) from None

    def _apply(self, saved: dict[str, Any]) -> None:
        for key, value in saved.items():
            section, name = FIELDS[key]
            setattr(getattr(self.settings, section), name, value)

    # enforcement ---------------------------------------------------------------------
    def refusal(self, spec: HeadSpec) -> str | None:
        """Why this head may not be called now, or None."""
        self.refresh()  # a long learning job sees a switch flipped while it runs
        s = self.settings
        if s.routing.local_only and spec.is_cloud:
            return (
                f"refused by the governor: {spec.id} is a cloud head and local_only is on "
                '(POST /api/config/governor {"local_only": false} or `council governor '
                "--no-local-only` allows it)"
            )
        left = self.remaining()
        if left is not None and left <= 0 and spec.priced:
            return (
                f"refused by the governor: today's spend ${self.ledger.today():.4f} reached "
                f"daily_budget_usd ${s.routing.daily_budget_usd:g}; raise it (POST "
                "/api/config/governor) or wait for midnight UTC"
            )
        return None

    def allowed(self, specs: list[HeadSpec]) -> tuple[list[HeadSpec], list[str]]:
        """(heads that may sit on a ballot, why each other one may not)."""
        ok, why = [], []
        for spec in specs:
            reason = self.refusal(spec)
            if reason is None:
                ok.append(spec)
            else:
                why.append(f"{spec.id}: {reason.removeprefix('refused by the governor: ')}")
        return ok, why

    def record(
        self, spec: HeadSpec, messages: list[Message], completions: list[Completion]
    ) -> None:
        """Book each completion's cost. A priced head that reported no token usage (some
        OpenAI-compatible servers do not) is charged on estimated tokens, never $0."""
        for c in completions:
            if spec.priced and c.ok and c.cost_usd == 0:
                chars = sum(len(m.content) for m in messages)
                c.tokens_in = c.tokens_in or max(1, chars // CHARS_PER_TOKEN)
                c.tokens_out = c.tokens_out or max(1, len(c.text) // CHARS_PER_TOKEN)
                c.cost_usd = spec.cost(c.tokens_in, c.tokens_out)
                log.warning("head %s reported no usage; charged $%.6f on estimated tokens",
                            spec.id, c.cost_usd)  # fmt: skip
            self.ledger.add(spec.id, c.cost_usd, spec.provider)

    def remaining(self) -> float | None:
        """What is left of today's budget; None when there is no cap."""
        s = self.settings
        if not s.routing.governor_enabled or s.routing.daily_budget_usd is None:
            return None
        return s.routing.daily_budget_usd - self.ledger.today()

    def report(self) -> dict[str, Any]:
        """The state plus today's spend, for the admin API and `council stats`."""
        by_head = self.ledger.by_head()
        left = self.remaining()
        return {
            **self.state().model_dump(),
            "spent_today_usd": round(sum(by_head.values()), 6),
            "spent_by_head_usd": {k: round(v, 6) for k, v in sorted(by_head.items())},
            "remaining_usd": None if left is None else round(left, 6),
            "file": str(self.path),
        }
