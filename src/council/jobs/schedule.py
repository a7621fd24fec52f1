"""`council serve --nightly 02:00`: the improvement cycle on a schedule, inside the server.

APScheduler fires at the given local time and starts `council improve` as a child process:
training gets its own process and thread budget, and the cycle's leader lock still keeps a
cron-started cycle from running beside it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from typing import Any

from council.config import Settings
from council.errors import ConfigError

log = logging.getLogger(__name__)


def parse_time(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise ConfigError(f"--nightly takes a time of day as HH:MM (e.g. 02:00), not {text!r}.")
    return int(m.group(1)), int(m.group(2))


def run_cycle(settings: Settings) -> int:
    """One `council improve` as a child process; returns its exit code."""
    log_dir = settings.server.data_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = f"http://{settings.server.host}:{settings.server.port}"
    env = {**os.environ, "COUNCIL_DATA_DIR": str(settings.server.data_dir)}
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
