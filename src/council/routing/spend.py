"""The spend ledger: every priced head call appended to data_dir/spend/<UTC day>.jsonl.

A file per day, appended line by line, survives restarts and is shared by processes (the
server and `council harvest` spend from one budget): each reader picks up the lines appended
since it last looked. Calls that cost nothing are not written; a self-hosted head with a
configured price is written like any other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class SpendLedger:
    def __init__(self, root: Path, clock: Callable[[], float] = time.time):
        self.root = root
        self.clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._offset = 0
        self._by_head: dict[str, float] = {}
        self._unsaved: dict[str, float] = {}  # when the data dir is not writable

    def path(self, day: str) -> Path:
        return self.root / f"{day}.jsonl"

    def add(self, head: str, usd: float, provider: str = "local") -> None:
        if usd <= 0:
            return
        now = self.clock()
        line = json.dumps({"ts": now, "head": head, "provider": provider, "usd": usd})
        with self._lock:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                with self.path(utc_day(now)).open("a") as f:
                    f.write(line + "\n")
            except OSError as exc:
                if not self._unsaved:
                    log.error("cannot write the spend ledger in %s (%s); counting in memory",
                              self.root, exc)  # fmt: skip
                self._unsaved[head] = self._unsaved.get(head, 0.0) + usd

    def by_head(self) -> dict[str, float]:
        """Today's (UTC) spend per head, every process's calls included."""
        with self._lock:
            self._refresh()
            totals = dict(self._by_head)
            for head, usd in self._unsaved.items():
                totals[head] = totals.get(head, 0.0) + usd
            return totals

    def today(self) -> float:
        return sum(self.by_head().values())

    def _refresh(self) -> None:
        day = utc_day(self.clock())
        if day != self._day:
            self._day, self._offset, self._by_head, self._unsaved = day, 0, {}, {}
        path = self.path(day)
        try:
            with path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # a line another process is still writing waits
        for raw in chunk[:end].splitlines():
            try:
                rec = json.loads(raw)
                self._by_head[rec["head"]] = self._by_head.get(rec["head"], 0.0) + rec["usd"]
            except (ValueError, KeyError, TypeError):
                log.warning("skipping a malformed line in %s: %r", path, raw[:80])
        self._offset += end
