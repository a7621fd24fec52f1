"""Which replica judges canaries, and how the others' live calls reach it.

With COUNCIL_REDIS_URL, replicas compete for the "canary" leader lock (jobs/lock.py) and the
holder alone judges: one verdict, one rollback or confirmation, one webhook; every replica
applies it when it sees the registry change. The others still serve the canary's share of
calls; what each call showed (ok, latency) is queued here and pushed to a Redis list per
deployment every poll, which the leader drains into its watch before judging. A leader that
dies stops renewing its lock, and another replica takes it within ttl_s.

Without Redis there is one server per data dir to judge, and it always leads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

from council.config import Settings
from council.jobs.lock import Lease, LockHeld, LockUnavailable, leader_lock

log = logging.getLogger(__name__)

LOCK = "canary"
TTL_S = 15.0  # a dead leader's lock outlives it this long
KEEP_S = 86_400  # an abandoned deployment's observations expire


class CanaryLeader:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.deploy.redis_url
        self.lease: Lease | None = None
        self._stack: contextlib.ExitStack | None = None
        self._outbox: list[tuple[int, str, bool, float]] = []
        self._guard = threading.Lock()

    @property
    def shared(self) -> bool:
        return bool(self.url)

    @property
    def leading(self) -> bool:
        return not self.shared or (self.lease is not None and not self.lease.lost)

    def contend(self) -> bool:
        """Keep or try to take the lock (blocking: call it from a thread); True when leading."""
        if not self.shared or self.leading:
            return True
        self.release()  # a lost lease: let it go before asking again
        stack = contextlib.ExitStack()
        try:
            self.lease = stack.enter_context(leader_lock(self.settings, LOCK, ttl_s=TTL_S))
        except LockHeld:
            return False
        except LockUnavailable as exc:
            log.error("canary leadership not taken: %s", exc.message)
            return False
        self._stack = stack
        log.info("this replica judges canaries now (%s)", self.lease.describe())
        return True

    def release(self) -> None:
        stack, self._stack, self.lease = self._stack, None, None
        if stack is not None:
            stack.close()

    # the followers' observations ------------------------------------------------------------
    def queue(self, deployment: int, kind: str, ok: bool, latency_ms: float) -> None:
        """A follower's live call on a canary's role (kind "candidate" or "baseline")."""
        if self.shared and not self.leading:
            with self._guard:
                self._outbox.append((deployment, kind, ok, latency_ms))

    def flush(self) -> None:
        """Push queued observations to Redis (blocking: call it from a thread)."""
        import redis

        with self._guard:
            sent, self._outbox = self._outbox, []
        if not sent or not self.url:
            return
        try:
            pipe = self._client().pipeline(transaction=False)
            for dep, kind, ok, ms in sent:
                pipe.rpush(self._key(dep), json.dumps([kind, ok, ms]))
            for dep in {s[0] for s in sent}:
                pipe.expire(self._key(dep), KEEP_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("%d canary observations not shared (%s); the leader judges without "
                        "them", len(sent), exc)  # fmt: skip

    def drain(self, deployment: int) -> list[tuple[str, bool, float]]:
        """The followers' observations of this deployment since the last drain (leader)."""
        import redis

        if not self.url:
            return []
        try:
            pipe = self._client().pipeline(transaction=True)
            pipe.lrange(self._key(deployment), 0, -1)
            pipe.delete(self._key(deployment))
            raw, _ = pipe.execute()
        except redis.RedisError as exc:
            log.warning("followers' canary observations not read (%s)", exc)
            return []
        out = []
        for item in raw:
            kind, ok, ms = json.loads(item)
            out.append((str(kind), bool(ok), float(ms)))
        return out

    def _client(self) -> Any:
        from council.shared import redis_client

        return redis_client(str(self.url))

    @staticmethod
    def _key(deployment: int) -> str:
        return f"council:canary:{deployment}:observations"
