"""`council serve --nightly 02:00`: the improvement cycle on a schedule, inside the server.

APScheduler fires at the given local time and starts `council improve` as a child process:
training gets its own process and thread budget, and the cycle's leader lock still keeps a
cron-started cycle from running beside it.

Replicas each schedule it; the first to claim the night (shared.claim_once: Redis SET NX, or a
file on a shared data dir) starts it, the others skip that night. The lock alone would not do:
a cycle that ends in seconds (too few held-out questions) frees it before a slower replica's
child even asks.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from typing import Any

from council.config import Settings
from council.errors import ConfigError
from council.shared import claim_once

log = logging.getLogger(__name__)
SKIPPED = -1  # run_cycle's code when another replica has this night's cycle
NIGHT_TTL_S = 20 * 3_600  # a night's claim outlives the night, never the next one


def parse_time(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise ConfigError(f"--nightly takes a time of day as HH:MM (e.g. 02:00), not {text!r}.")
    return int(m.group(1)), int(m.group(2))


def run_cycle(settings: Settings) -> int:
    """One `council improve` as a child process; returns its exit code, or SKIPPED when
    another replica claimed tonight's cycle."""
    night = time.strftime("%Y-%m-%d", time.localtime())
    if not claim_once(settings, f"nightly:{night}", NIGHT_TTL_S):
        log.info("nightly cycle of %s started by another replica; skipped here", night)
        return SKIPPED
    log_dir = settings.server.data_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = f"http://{settings.server.host}:{settings.server.port}"
    env = {**os.environ, "COUNCIL_DATA_DIR": str(settings.server.data_dir)}
    if settings.deploy.redis_url:  # the child takes the same leader lock as the other replicas
        env["COUNCIL_REDIS_URL"] = settings.deploy.redis_url
    with (log_dir / "nightly.log").open("a") as sink:
        code = subprocess.run(
            [sys.executable, "-m", "council", "improve", "--server", server],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        ).returncode  # fmt: skip
    log.info("nightly cycle exited with %d (see %s)", code, log_dir / "nightly.log")
    return code


def start_nightly(settings: Settings, at: str) -> Any:
    """Schedule the cycle daily at `at` (local time); returns the running scheduler."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    hour, minute = parse_time(at)
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(run_cycle, CronTrigger(hour=hour, minute=minute), args=[settings],
                      id="nightly-improve", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)  # fmt: skip
    scheduler.start()
    log.info("nightly improvement cycle scheduled at %02d:%02d", hour, minute)
    return scheduler
