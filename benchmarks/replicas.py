"""Requests/s and p95 of one `council serve` against two on the same Redis and store.

The heads are remote with a fixed latency (a small OpenAI-compatible server that sleeps
--delay-ms and answers "4"), so the ratio measures the service (request handling, the store,
the embedder, Redis-backed limits), not a model. The load is closed-loop: --clients
concurrent clients, each posting /vote with an API key (its rpm counted in Redis) as soon as
its last answer came back, spread round robin over the replicas. One replica is measured
first, then a second joins on the same data dir and Redis and both are measured together.
Target: two replicas >= 1.7x one. It needs a core per replica (and some for the load).

    python benchmarks/replicas.py [--clients 32] [--seconds 20] [--delay-ms 100] [--heads 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import ServerProcess, free_port, write_config

REDIS_SERVER = "/usr/bin/redis-server"


def fake_head(port: int, delay_ms: float) -> None:
    """An OpenAI-compatible chat server that takes delay_ms to answer "4" (its own process)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(delay_ms / 1000)
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "4"}}  # fmt: skip
        usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [choice], "usage": usage}  # fmt: skip

    # keep-alive longer than the clients': an idle connection closed under a reused one is a
    # connection error that is no part of the service
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                timeout_keep_alive=120, backlog=4096)  # fmt: skip


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


async def load(urls: list[str], key: str, clients: int, seconds: float) -> dict[str, Any]:
    """Closed-loop load for `seconds`; each client sticks to one replica (round robin)."""
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(url: str, http: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                r = await http.post(f"{url}/vote", json={"prompt": "What is 2 + 2?"},
                                    headers=headers)  # fmt: skip
                codes[r.status_code] += 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - started)
            except httpx.HTTPError as exc:
                codes[-1] += 1
                print(f"  request failed: {exc!r}", file=sys.stderr)

    began = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(urls[i % len(urls)], http) for i in range(clients)))
    wall = time.perf_counter() - began
    q = (
        statistics.quantiles(latencies, n=20, method="inclusive")
        if len(latencies) > 1
        else [0] * 19
    )
    return {
        "replicas": len(urls),
        "ok": len(latencies),
        "statuses": dict(codes),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(q[18] * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per setup")
    ap.add_argument("--delay-ms", type=float, default=100.0, help="each head call's latency")
    ap.add_argument("--heads", type=int, default=3, help="remote heads on the ballot")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                    help="record exchanges in the store, with the embedder")  # fmt: skip
    ap.add_argument("--fake-head", type=int, help=argparse.SUPPRESS)  # the child's mode
    args = ap.parse_args()
    if args.fake_head:
        fake_head(args.fake_head, args.delay_ms)
        return
    if not Path(REDIS_SERVER).exists():
        sys.exit(f"{REDIS_SERVER} is missing: apt-get install redis-server")

    from council.config import HeadSpec, Settings
    from council.storage import open_store
    from council.users.keys import Users

    tmp = Path(tempfile.mkdtemp(prefix="council-replicas-"))
    data = tmp / "data"
    children: list[subprocess.Popen[bytes]] = []
    servers: list[ServerProcess] = []
    try:
        redis_port, head_port = free_port(), free_port()
        children.append(subprocess.Popen(
            [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
        ))  # fmt: skip
        children.append(subprocess.Popen(
            [sys.executable, __file__, "--fake-head", str(head_port),
             "--delay-ms", str(args.delay_ms)],
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{head_port}/docs")
        heads = [HeadSpec(id=f"h{i}", kind="openai", provider="vllm", model=f"fake-{i}",
                          base_url=f"http://127.0.0.1:{head_port}/v1")
                 for i in range(args.heads)]  # fmt: skip
        extra: dict[str, Any] = (
            {"memory": True} if args.memory else {"memory": False, "embedder": "none"}
        )
        config = write_config(
            tmp / "council.toml", heads, redis_url=f"redis://127.0.0.1:{redis_port}/0",
            fact_head="none", rpm=1_000_000, log_level="warning", **extra,
        )  # fmt: skip
        store = open_store(Settings(data_dir=data))  # migrated before the servers start
        key = Users(store).add("bench")[1]
        store.close()

        results = []
        for n in (1, 2):
            servers.append(ServerProcess(config, data))
            servers[-1].wait_ready(timeout=600)
            urls = [s.url for s in servers]
            asyncio.run(load(urls, key, min(args.clients, 4 * n), 5))  # warm up each replica
            result = asyncio.run(load(urls, key, args.clients, args.seconds))
            results.append(result)
            print(f"{n} replica{'s' if n > 1 else ' '}: {result['rps']:7.1f} req/s   "
                  f"p50 {result['p50_ms']:7.1f} ms   p95 {result['p95_ms']:7.1f} ms   "
                  f"statuses {result['statuses']}", flush=True)  # fmt: skip
        ratio = results[1]["rps"] / results[0]["rps"] if results[0]["rps"] else 0.0
        print(f"2 replicas / 1: {ratio:.2f}x (target >= 1.7x) on {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(json.dumps({"clients": args.clients, "seconds": args.seconds,
                          "delay_ms": args.delay_ms, "heads": args.heads,
                          "memory": args.memory, "cpus": os.cpu_count(), "results": results,
                          "ratio": round(ratio, 2)}))  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        for child in children:
            child.terminate()
            child.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
