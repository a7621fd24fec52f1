"""The pieces benchmarks/replicas.py runs: replicas (optionally under py-spy), the fake head,
a pgserver Postgres, CPU accounting per process, and the py-spy summary by part."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from tests.helpers import ServerProcess, free_port


class Replica(ServerProcess):
    """`council serve` like tests.helpers.ServerProcess, or under `py-spy record` (spy_to);
    `src`: another checkout's src/ to serve instead of this one's."""

    def __init__(
        self, config: Path, data_dir: Path, spy_to: Path | None = None, src: Path | None = None
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
        env.update(COUNCIL_CONFIG=str(config), COUNCIL_DATA_DIR=str(data_dir),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # fmt: skip
        if src is not None:
            env["PYTHONPATH"] = str(src)
        cmd = [sys.executable, "-m", "council", "serve", "--port", str(self.port)]
        if spy_to:
            spy = Path(sys.executable).parent / "py-spy"
            # a child of py-spy: attaching to a running pid is refused in this container
            cmd = [str(spy), "record", "-r", "100", "-f", "raw", "-o", str(spy_to), "--", *cmd]
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)  # fmt: skip
        self.spied = spy_to is not None

    @property
    def pid(self) -> int:
        """The server's own pid (under py-spy: py-spy's child)."""
        if not self.spied:
            return self.proc.pid
        return psutil.Process(self.proc.pid).children()[0].pid

    def stop(self) -> None:
        if self.spied:  # stop the server; py-spy writes its file when its target exits
            psutil.Process(self.pid).terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                print(f"py-spy did not finish: see {self.log}", file=sys.stderr)
        super().stop()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their children (Postgres's backends)."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Postgres:
    server: Any
    url: str

    def pids(self) -> list[int]:
        """The postmaster (its backends are its children)."""
        first = (Path(self.server.pgdata) / "postmaster.pid").read_text().split()[0]
        return [int(first)]

    def stop(self) -> None:
        self.server.cleanup()


def postgres(where: Path) -> Postgres:
    """A pgserver Postgres with pgvector and an empty `council` database."""
    import pgserver

    server = pgserver.get_server(where, cleanup_mode="stop")
    server.psql("CREATE DATABASE council;")
    return Postgres(server, str(server.get_uri("council")))


# Leaf frames of threads that wait, not run (a pool worker's queue.get, a lock, the selector;
# the embed batcher's queue.get: its work runs in the model's frames, below it).
WAITS = ("Condition.wait", "Event.wait", "_worker (concurrent/futures/thread.py", ".select (",
         "council/microbatch.py")  # fmt: skip
# Where a sample's CPU went: the first part matched walking from the leaf frame to the root.
PARTS = (
    ("json", ("json/", "orjson")),
    ("pydantic", ("pydantic",)),
    ("logging", ("logging/",)),
    ("store: sqlite3/psycopg", ("sqlite3/", "psycopg/", "council/db/")),
    ("redis client", ("redis/",)),
    ("openai SDK", ("openai/",)),
    ("http (httpx/httpcore/h11/anyio)", ("httpx/", "httpcore/", "h11/", "anyio/")),
    (
        "embedder (torch/transformers)",
        ("torch/", "transformers/", "sentence_transformers/", "tokenizers/", "council/embeddings"),
    ),
    ("faiss", ("faiss/",)),
    ("server (uvicorn/starlette/fastapi)", ("uvicorn/", "starlette/", "fastapi/")),
    (
        "asyncio/threads/socket",
        ("asyncio/", "threading.py", "concurrent/", "selectors.py", "socket.py", "ssl.py"),
    ),
    ("council (own code)", ("council/",)),
)


def spy_summary(path: Path, top: int = 15) -> str:
    """py-spy's raw stacks as shares of the replica's CPU by part, and the costliest frames."""
    parts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for text in path.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        frames = stack.split(";")
        if any("_find_and_load" in f for f in frames):
            continue  # imports at start-up, not the workload
        if any(w in frames[-1] for w in WAITS):
            continue  # a thread waiting: py-spy's idle test does not catch these here
        n = int(count)
        total += n
        leaf_first = frames[::-1]
        part = "other"
        for f in leaf_first:
            where = f.rpartition(" (")[2]  # "module/path.py:line)"
            hit = next((name for name, keys in PARTS if any(k in where for k in keys)), None)
            if hit:
                part = hit
                break
        parts[part] += n
        council = next((f for f in leaf_first if "council/" in f), None)
        if council:
            own[council] += n
    lines = [f"py-spy: {total} samples at 100 Hz (imports and waits left out)",
             "CPU by part (leaf-most):"]  # fmt: skip
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in parts.most_common()]
    lines.append(f"innermost council frame of each sample (top {top}):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)
