"""Overload, measured against a real `council serve`.

1. p50 / p95 of short council requests, one at a time, with nothing else running, then while
   an abusive request runs (max_tokens at the cap, temperature 2; one over the cap is
   refused with 400 and is reported too).
2. The share of 503s (and any other status) when bursts of 2x and 4x capacity arrive at
   once; capacity = the requests one model's queue holds (queue_size // heads).

    python benchmarks/overload.py [--tiny] [--heads 3] [--queue-size 16] [--short 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import (
    ServerProcess,
    build_tiny_model,
    convert_default_model,
    local_specs,
    write_config,
)

SHORT = {"max_tokens": 8, "messages": [{"role": "user", "content": "Say hi"}]}
STORY = [{"role": "user", "content": "Tell me a very long story about rivers."}]


def post(url: str, timeout: float = 600, **body: Any) -> tuple[int, float]:
    body = {"model": "council", "messages": STORY, **body}
    started = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)
    return r.status_code, time.perf_counter() - started


def percentiles(seconds: list[float]) -> str:
    qs = statistics.quantiles(seconds, n=20, method="inclusive")
    return f"p50 {statistics.median(seconds) * 1000:7.0f} ms   p95 {qs[18] * 1000:7.0f} ms"


def shorts(url: str, n: int) -> list[float]:
    return [post(url, **SHORT)[1] for _ in range(n)]


def burst(url: str, n: int) -> Counter[int]:
    with ThreadPoolExecutor(n) as pool:
        return Counter(code for code, _ in pool.map(lambda _: post(url, **SHORT), range(n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a random 2-layer model (fast, CI)")
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--queue-size", type=int, default=16)
    ap.add_argument("--cap", type=int, default=1024, help="COUNCIL_MAX_TOKENS_CAP")
    ap.add_argument("--short", type=int, default=20, help="short requests per measurement")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="council-overload-"))
    model = convert_default_model(root / "models")
    if args.tiny:
        model = build_tiny_model(model, root / "tiny")
    config = write_config(root / "council.toml", local_specs(model, args.heads),
                          embedder="none", memory=False, queue_size=args.queue_size,
                          max_tokens_cap=args.cap)  # fmt: skip
    server = ServerProcess(config, root / "data")
    try:
        server.wait_ready(timeout=600)
        print(f"model {model.name}, {args.heads} heads, queue {args.queue_size}, cap {args.cap}")
        shorts(server.url, 2)  # warm
        alone = shorts(server.url, args.short)
        print(f"short requests alone:            {percentiles(alone)}")
        code, s = post(server.url, max_tokens=10**9, temperature=2.0)
        print(f"max_tokens 1e9 at temperature 2: HTTP {code} in {s * 1000:.0f} ms")
        done = threading.Event()
        abuse: list[tuple[int, float]] = []

        def abusive() -> None:
            abuse.append(post(server.url, max_tokens=args.cap, temperature=2.0))
            done.set()

        threading.Thread(target=abusive, daemon=True).start()
        time.sleep(0.2)
        during = shorts(server.url, args.short)
        done.wait()
        print(f"with one at the cap running:     {percentiles(during)}")
        print(f"  (the abusive request: HTTP {abuse[0][0]} in {abuse[0][1]:.1f} s)")
        capacity = max(1, args.queue_size // args.heads)
        for times in (2, 4):
            codes = burst(server.url, capacity * times)
            total = sum(codes.values())
            print(f"{times}x capacity ({total} at once): 503 share {codes[503] / total:5.1%}  "
                  f"statuses {dict(sorted(codes.items()))}")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
