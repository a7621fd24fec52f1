"""`council serve --nightly HH:MM`: the time is checked and the job is scheduled daily."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.config import Settings
from council.errors import ConfigError
from council.jobs.schedule import parse_time, start_nightly


def test_times_of_day_are_parsed_and_bad_ones_say_the_format() -> None:
    assert parse_time("02:00") == (2, 0) and parse_time("23:59") == (23, 59)
    for bad in ("24:00", "2am", "02:60", ""):
        with pytest.raises(ConfigError, match=r"HH:MM \(e\.g\. 02:00\)"):
            parse_time(bad)


def test_the_cycle_is_scheduled_once_a_day_at_that_time(tmp_path: Path) -> None:
    scheduler = start_nightly(Settings(data_dir=tmp_path), "02:30")
    try:
        (job,) = scheduler.get_jobs()
        first = job.next_run_time
        assert (first.hour, first.minute) == (2, 30)
        assert job.trigger.get_next_fire_time(first, first).day != first.day  # daily
    finally:
        scheduler.shutdown(wait=False)
