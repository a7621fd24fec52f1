"""Run records for background work (a training, an improvement cycle): status, steps, logs.

A run lives in the store's `runs` table, so any process can follow it: the server that
started it, the CLI, or another host. Its log is a file beside the data; `tail()` serves the
end of it. Training runs start as a separate process with their own thread budget, so
training never starves serving. Its SQL is in jobs/ledger.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from council.config import Settings
from council.errors import RunNotFoundError
from council.jobs import ledger
from council.memory.store import Store


class Runs:
    def __init__(self, store: Store, data_dir: Path):
        self.store = store
        self.root = data_dir / "runs"

    def create(self, kind: str, params: dict[str, Any] | None = None) -> str:
        run_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
        self.root.mkdir(parents=True, exist_ok=True)
        ledger.insert_run(
            self.store, run_id=run_id, kind=kind, params_json=json.dumps(params or {}),
            log_path=str(self.log_path(run_id)), host=socket.gethostname(), pid=os.getpid(),
            now=time.time(),
        )  # fmt: skip
        return run_id

    def log_path(self, run_id: str) -> Path:
        return self.root / f"{run_id}.log"

    def update(self, run_id: str, **fields: Any) -> None:
        """Set status / step / progress / pid / error (and `result` or `steps` as JSON)."""
        cols = {k: v for k, v in fields.items() if k in ("status", "step", "progress", "pid",
                                                         "error")}  # fmt: skip
        for name in ("result", "steps", "params"):
            if name in fields:
                cols[f"{name}_json"] = json.dumps(fields[name], default=str)
        if fields.get("status") in ("succeeded", "failed", "skipped"):
            cols["finished_at"] = time.time()
        cols["updated_at"] = time.time()
        ledger.update_run(self.store, run_id, cols)

    def log(self, run_id: str, line: str) -> None:
        with self.log_path(run_id).open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def get(self, run_id: str, tail: int = 40) -> dict[str, Any]:
        row = ledger.run_row(self.store, run_id)
        if row is None:
            raise RunNotFoundError(
                f"No run {run_id!r}; POST /api/train (or council improve) starts one."
            )
        run = dict(row)
        for name in ("params", "steps", "result"):
            run[name] = json.loads(run.pop(f"{name}_json"))
        run["logs_tail"] = self.tail(run_id, tail)
        return run

    def tail(self, run_id: str, lines: int = 40) -> list[str]:
        path = self.log_path(run_id)
        if not path.exists():
            return []
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
        return text.splitlines()[-lines:]

    def recent(self, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return ledger.recent_runs(self.store, kind, limit)

    def abandon_dead(self, kind: str, keep: str) -> list[str]:
        """Mark `running` runs of this host whose process is gone as failed (a crash or
        kill -9 mid-run); the caller holds the leader lock, so none of them is alive."""
        host = socket.gethostname()
        rows = ledger.unfinished_runs(self.store, kind, host, keep)
        dead = [r["id"] for r in rows if not _alive(r["pid"])]
        for run_id in dead:
            self.update(run_id, status="failed", error="the process died mid-run")
        return dead

    def prune(self, keep: int) -> int:
        """Delete the logs of all but the newest `keep` runs (their rows stay: metrics)."""
        removed = 0
        for run_id in ledger.finished_runs_past(self.store, keep):
            path = self.log_path(run_id)
            if path.exists():
                path.unlink()
                removed += 1
        return removed


def train_command(
    settings: Settings, *, role: str, dataset: str | None, epochs: float | None,
    learning_rate: float | None, run_id: str | None = None,
) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    """argv and environment of `council train` as its own process, with the training
    thread budget (the API's background runs and the nightly cycle both start it so)."""
    argv = [sys.executable, "-m", "council", "train", "--role", role]
    for flag, value in (("--run-id", run_id), ("--dataset", dataset), ("--epochs", epochs),
                        ("--learning-rate", learning_rate)):  # fmt: skip
        if value is not None and value != "":
            argv += [flag, str(value)]
    env = {**os.environ, "COUNCIL_DATA_DIR": str(settings.server.data_dir),
           "COUNCIL_THREADS": str(training_threads())}  # fmt: skip
    return argv, env


def spawn_training(
    settings: Settings, runs: Runs, *, dataset: str | None, role: str, epochs: float | None,
    learning_rate: float | None,
) -> str:  # fmt: skip
    """Start `council train` in the background; returns the run id to follow."""
    params = {"dataset": dataset or "latest", "role": role, "epochs": epochs,
              "learning_rate": learning_rate}  # fmt: skip
    run_id = runs.create("train", params)
    argv, env = train_command(settings, role=role, dataset=dataset, epochs=epochs,
                              learning_rate=learning_rate, run_id=run_id)  # fmt: skip
    with runs.log_path(run_id).open("a") as log:  # the child keeps its own handle
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    runs.update(run_id, status="running", pid=proc.pid, step="starting")
    return run_id


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def training_threads() -> int:
    """Leave one core to serving; training takes the rest."""
    return max(1, (os.cpu_count() or 2) - 1)
