"""State shared by replicas: one Redis client per URL (settings.deploy.redis_url), and
`claim_once`, which lets exactly one replica do a thing (send a webhook, start the nightly
cycle) however many try.

Without Redis, a claim is a file created with O_EXCL under data_dir/locks/once/: replicas on
one data dir (one host) still do the thing once.

    if claim_once(settings, f"webhook:deploy:{deployment_id}", ttl_s=7 * 86_400):
        post(...)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from council.config import Settings

log = logging.getLogger(__name__)

PREFIX = "council:"
_clients: dict[str, Any] = {}
_guard = threading.Lock()
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def redis_client(url: str) -> Any:
    """A `redis.Redis` for `url`, one per process and URL (its pool is thread-safe)."""
    import redis

    with _guard:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
            _clients[url] = client
        return client


def claim_once(settings: Settings, key: str, ttl_s: float) -> bool:
    """True for the first caller of `key` (across replicas) within ttl_s, False for the rest.

    Redis: SET NX with an expiry. Redis down: True (doing a thing twice beats never doing
    it), logged. No Redis: an O_EXCL file, kept ttl_s.
    """
    url = settings.deploy.redis_url
    if url:
        import redis

        try:
            done = redis_client(url).set(f"{PREFIX}once:{key}", os.getpid(), nx=True,
                                         px=max(1, int(ttl_s * 1000)))  # fmt: skip
        except redis.RedisError as exc:
            log.error("cannot claim %r in Redis (%s); doing it here, check COUNCIL_REDIS_URL",
                      key, exc)  # fmt: skip
            return True
        return bool(done)
    return _claim_file(Path(settings.server.data_dir) / "locks" / "once", key, ttl_s)


def _claim_file(folder: Path, key: str, ttl_s: float) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = folder / f"{_SAFE.sub('_', key)[:80]}-{digest}"
    try:
        if time.time() - path.stat().st_mtime > ttl_s:
            path.unlink(missing_ok=True)  # expired: the key may be claimed again
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        log.error("cannot claim %r in %s (%s); doing it here", key, folder, exc)
        return True
    os.close(fd)
    return True
