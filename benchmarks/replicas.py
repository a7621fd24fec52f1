"""Requests/s and p95 of one `council serve` against two on the same Redis and store.

The heads are remote with a fixed latency (a small OpenAI-compatible server that sleeps
--delay-ms and answers "4"), so the ratio measures the service (request handling, the store,
the embedder, Redis-backed limits), not a model. The load is closed-loop: --clients
concurrent clients, each posting /vote with an API key (its rpm counted in Redis) as soon as
its last answer came back, spread round robin over the replicas. The clients run in
--client-procs processes of their own, so the load generator is not what is measured.

Both replicas start once (same data dir or --postgres database, same Redis); each of --runs
rounds measures replica A alone, then A and B together, and the median ratio is reported.
Each measurement also reports the CPU each part used per request (replicas, clients, fake
heads, Redis, Postgres) and how busy the machine's cores were: a ratio below 2 with the cores
saturated is the box, not the service. Target: two replicas >= 1.7x one.

    python benchmarks/replicas.py [--clients 32] [--seconds 20] [--delay-ms 100] [--heads 3]
        [--runs 3] [--client-procs 2] [--postgres]
    python benchmarks/replicas.py --profile prof.txt [--seconds 20]   # one replica, py-spy
    python benchmarks/replicas.py --old-rev main [--seconds 10] [--runs 2]   # CPU before/after

`--profile` runs one replica under py-spy (sampling at 100 Hz, the same load) and prints where
its CPU goes by part (JSON, pydantic, logging, store, Redis, HTTP client, embedder, ...).
`--old-rev REV` serves one replica from a temporary worktree of REV beside one of this checkout
(same store, Redis and heads) and measures them alternately on the same load: the replica's CPU
per request before and after a change, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import free_port, write_config

from benchmarks.engine_load import checkout
from benchmarks.replica_parts import Replica, cpu_seconds, postgres, spy_summary

REDIS_SERVER = "/usr/bin/redis-server"


def wait_http(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


async def load(urls: list[str], key: str, clients: int, start: float, seconds: float) -> dict:
    """Closed-loop load from wall-clock `start` for `seconds`; client i posts to urls[i % n]."""
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    await asyncio.sleep(max(0.0, start - time.time()))
    stop = time.perf_counter() + seconds

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

    began, cpu = time.perf_counter(), time.process_time()
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(urls[i % len(urls)], http) for i in range(clients)))
    return {"latencies": latencies, "codes": dict(codes), "wall": time.perf_counter() - began,
            "cpu": time.process_time() - cpu}  # fmt: skip


def _load_proc(job: tuple[list[str], str, int, float, float]) -> dict:
    return asyncio.run(load(*job))


def measure(urls: list[str], key: str, clients: int, seconds: float, procs: int,
            parts: dict[str, list[int]], pool: Any) -> dict[str, Any]:  # fmt: skip
    """Load from `procs` processes at once; requests/s, p50/p95 and CPU per request by part."""
    start = time.time() + 1.0  # every load process begins together, after it is ready
    share = [clients // procs + (i < clients % procs) for i in range(procs)]
    # client i of the whole load goes to urls[i % n]: offset each process's urls to keep that
    jobs = []
    first = 0
    for n in share:
        jobs.append(([urls[(first + j) % len(urls)] for j in range(len(urls))], key, n, start,
                     seconds))  # fmt: skip
        first += n
    before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    machine = psutil.cpu_times()
    outs = pool.map(_load_proc, jobs)
    used = {name: cpu_seconds(pids) - before[name] for name, pids in parts.items()}
    busy = psutil.cpu_times()
    idle = (busy.idle + busy.iowait) - (machine.idle + machine.iowait)
    total = sum(busy) - sum(machine)
    latencies = sorted(x for o in outs for x in o["latencies"])
    codes: Counter[int] = Counter()
    for o in outs:
        codes.update({int(k): v for k, v in o["codes"].items()})
    wall = max(o["wall"] for o in outs)
    ok = len(latencies)
    used["clients"] = sum(o["cpu"] for o in outs)
    q = statistics.quantiles(latencies, n=20, method="inclusive") if ok > 1 else [0.0] * 19
    return {
        "replicas": len(urls), "ok": ok, "statuses": dict(codes), "rps": round(ok / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if ok else None,
        "p95_ms": round(q[18] * 1000, 1),
        "cpu_ms_per_request": {k: round(v * 1000 / max(ok, 1), 2) for k, v in used.items()},
        "machine_busy": round(1 - idle / total, 2) if total else None,
    }  # fmt: skip


def line(r: dict[str, Any]) -> str:
    cpu = " ".join(f"{k} {v}" for k, v in r["cpu_ms_per_request"].items())
    return (f"{r['replicas']} replica{'s' if r['replicas'] > 1 else ' '}: {r['rps']:7.1f} req/s  "
            f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  statuses {r['statuses']}  "
            f"CPU ms/request: {cpu}  machine busy {r['machine_busy']:.0%}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per setup")
    ap.add_argument("--delay-ms", type=float, default=100.0, help="each head call's latency")
    ap.add_argument("--heads", type=int, default=3, help="remote heads on the ballot")
    ap.add_argument("--runs", type=int, default=3, help="rounds of (A alone, A and B)")
    ap.add_argument("--client-procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--postgres", action="store_true", help="the store in Postgres (pgserver)")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                    help="record exchanges in the store, with the embedder")  # fmt: skip
    ap.add_argument("--torch-threads", type=int,
                    help="OMP_NUM_THREADS for the replicas (the embedder's torch threads; "
                         "unset: torch's default, one per core)")  # fmt: skip
    ap.add_argument("--profile", type=Path, help="one replica under py-spy; raw stacks here")
    ap.add_argument(
        "--old-rev",
        help="one replica of this git revision against one of this checkout, alternately: "
        "CPU per request before/after",
    )
    args = ap.parse_args()
    if not Path(REDIS_SERVER).exists():
        sys.exit(f"{REDIS_SERVER} is missing: apt-get install redis-server")
    print("$ python benchmarks/replicas.py " + " ".join(sys.argv[1:]), flush=True)
    if args.torch_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)  # inherited by the replicas

    from council.config import HeadSpec, Settings
    from council.storage import open_store
    from council.users.keys import Users

    tmp = Path(tempfile.mkdtemp(prefix="council-replicas-"))
    data = tmp / "data"
    children: list[subprocess.Popen[bytes]] = []
    servers: list[Replica] = []
    pg = None
    try:
        redis_port, head_port = free_port(), free_port()
        children.append(subprocess.Popen(
            [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
        ))  # fmt: skip
        children.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fake_head.py")), str(head_port),
             str(args.delay_ms)],
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{head_port}/docs")
        heads = [HeadSpec(id=f"h{i}", kind="openai", provider="vllm", model=f"fake-{i}",
                          base_url=f"http://127.0.0.1:{head_port}/v1")
                 for i in range(args.heads)]  # fmt: skip
        extra: dict[str, Any] = (
            {"memory": True} if args.memory else {"memory": False, "embedder": "none"}
        )
        parts = {"redis": [children[0].pid], "heads": [children[1].pid]}
        if args.postgres:
            pg = postgres(tmp / "pg")
            extra["database_url"] = pg.url
            parts["postgres"] = pg.pids()
        config = write_config(
            tmp / "council.toml", heads, redis_url=f"redis://127.0.0.1:{redis_port}/0",
            fact_head="none", rpm=1_000_000, log_level="warning", **extra,
        )  # fmt: skip
        settings = Settings(data_dir=data, database_url=extra.get("database_url"))
        store = open_store(settings)  # migrated before the servers start
        key = Users(store).add("bench")[1]
        store.close()

        ctx = multiprocessing.get_context("fork")  # the load needs only httpx: no re-import
        with ctx.Pool(args.client_procs) as pool:
            if args.profile:
                profile(args, config, data, key, parts, pool)
                return
            if args.old_rev:
                compare(args, config, data, key, parts, pool)
                return
            for _ in range(2):
                servers.append(Replica(config, data))
            for s in servers:
                s.wait_ready(timeout=600)
            parts["replicas"] = [s.pid for s in servers]
            if pg:
                parts["postgres"] = pg.pids()  # with the replicas' backends
            urls = [s.url for s in servers]
            results: list[list[dict[str, Any]]] = []
            for run in range(args.runs):
                pair = []
                for n in (1, 2):
                    # warm up (first round: the embedder, connections), then measure
                    measure(urls[:n], key, min(args.clients, 4 * n), 3 if run else 8, 1, {}, pool)
                    r = measure(urls[:n], key, args.clients, args.seconds, args.client_procs,
                                parts, pool)  # fmt: skip
                    pair.append(r)
                    print(f"run {run + 1}: " + line(r), flush=True)
                results.append(pair)
                print(f"run {run + 1}: 2 replicas / 1 = {pair[1]['rps'] / pair[0]['rps']:.2f}x",
                      flush=True)  # fmt: skip
        ratios = [p[1]["rps"] / p[0]["rps"] for p in results if p[0]["rps"]]
        median = statistics.median(ratios) if ratios else 0.0
        print(f"2 replicas / 1: median {median:.2f}x of {[round(r, 2) for r in ratios]} "
              f"(target >= 1.7x) on {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        print(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                          "cpus": os.cpu_count(), "results": results,
                          "ratios": [round(r, 2) for r in ratios],
                          "median_ratio": round(median, 2)}))  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        for child in children:
            child.terminate()
            child.wait(timeout=10)
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def compare(args: Any, config: Path, data: Path, key: str, parts: dict[str, list[int]],
            pool: Any) -> None:  # fmt: skip
    """One replica of --old-rev and one of this checkout, measured in turn on the same load."""
    cpu: dict[str, list[float]] = {args.old_rev: [], "this checkout": []}
    with checkout(args.old_rev) as old:
        pair = {args.old_rev: Replica(config, data, src=old / "src"),
                "this checkout": Replica(config, data)}  # fmt: skip
        try:
            for replica in pair.values():
                replica.wait_ready(timeout=600)
            for run in range(args.runs):
                for name, replica in pair.items():
                    measure([replica.url], key, 4, 3 if run else 8, 1, {}, pool)  # warm up
                    spent = {**parts, "replicas": [replica.pid]}
                    r = measure([replica.url], key, args.clients, args.seconds,
                                args.client_procs, spent, pool)  # fmt: skip
                    cpu[name].append(r["cpu_ms_per_request"]["replicas"])
                    print(f"run {run + 1} {name}: " + line(r), flush=True)
        finally:
            for replica in pair.values():
                replica.stop()
    for name, ms in cpu.items():
        print(f"{name}: replica CPU {statistics.median(ms):.1f} ms/request (median of {ms}) "
              f"on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def profile(args: Any, config: Path, data: Path, key: str, parts: dict[str, list[int]],
            pool: Any) -> None:  # fmt: skip
    """One replica under py-spy through a warm-up and one measurement; where its CPU went."""
    replica = Replica(config, data, spy_to=args.profile)
    try:
        replica.wait_ready(timeout=600)
        parts["replicas"] = [replica.pid]
        measure([replica.url], key, 4, 8, 1, {}, pool)
        r = measure([replica.url], key, args.clients, args.seconds, args.client_procs, parts,
                    pool)  # fmt: skip
        print("profiled: " + line(r), flush=True)
    finally:
        replica.stop()  # py-spy writes its file when its target exits
    print(spy_summary(args.profile))


if __name__ == "__main__":
    main()
