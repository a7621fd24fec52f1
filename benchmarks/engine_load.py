"""The local engine under load, against a saved figure of the engine it replaced.

A real `council serve` with five local personas on one model, and:
1. answers/min, tokens/s and p50 / p95 latency at each concurrency, for council requests
   (five personas, one ballot) and single-head requests (`model=h0`);
2. single-head streaming: time to the first content chunk (p50 / p95), one at a time;
3. short single-head requests alone, then while one long request (max_tokens 512) runs; the
   long one's stream hangs up once they are done (an engine that cancels stops it there);
4. the persona ratio: a council request's latency over a single head's, one at a time.

The micro-batch engine is gone from this checkout. `--old-rev f78cc05^` (the last commit
that had it) serves that revision beside this one, from a temporary `git worktree` with
`engine = "batch"`, the same model and config, its own port and data dir; each measurement
runs on the old server, then on the new one, before the next, so machine load hits both
alike. Without it, the old engine's saved figures (`REFERENCE`, or any JSON line this script
printed, via --reference) print as reference lines; those from another machine or load do
not compare.

    python benchmarks/engine_load.py [--tiny] [--concurrency 1,4,8,16] [--requests 24]
                                     [--council-only] [--old-rev f78cc05^ | --reference F]
                                     [--prefix-off] [--bf16] [--fixed-threads]

`--prefix-off` serves this checkout a second time with its prefix cache off, alternating
with it per cell as `--old-rev` does; `--bf16` likewise with `weight_dtype = "bfloat16"`, and
`--fixed-threads` with `adaptive_threads = false`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
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

# The micro-batch engine (`engine = "batch"`, removed), from the one run that measured it and
# the continuous engine cell by cell on a quiet 2-core box (load average 1.0-1.6; `--old-rev
# f78cc05^ --concurrency 1,4,8,16 --requests 16 --ttft 5 --shorts 3 --ratio 3`, SmolLM2-135M,
# max_tokens 24, each engine at its own default max_batch: 32 old, 64 new; prefix cache on).
# The continuous engine in that run: council c=8 44.9 answers/min (1.70x), single c=8 83.6
# (1.48x), TTFT p50 0.378 s, short under long 1.25x, personas 1.24. Only a run on the same
# machine under the same load compares with these; --old-rev measures both anew.
REFERENCE: dict[str, Any] = {
    "council c=1": {"per_min": 12.08, "failed": 0, "tok_s": 24.16, "p50": 4.94, "p95": 5.36},
    "council c=4": {"per_min": 20.01, "failed": 0, "tok_s": 40.01, "p50": 11.86, "p95": 12.61},
    "council c=8": {"per_min": 26.41, "failed": 0, "tok_s": 52.81, "p50": 15.61, "p95": 17.18},
    "council c=16": {"per_min": 30.8, "failed": 0, "tok_s": 61.61, "p50": 25.49, "p95": 30.95},
    "single c=1": {"per_min": 19.69, "failed": 0, "tok_s": 7.88, "p50": 3.1, "p95": 3.41},
    "single c=4": {"per_min": 33.89, "failed": 0, "tok_s": 13.55, "p50": 6.8, "p95": 7.72},
    "single c=8": {"per_min": 56.64, "failed": 0, "tok_s": 22.66, "p50": 8.21, "p95": 8.97},
    "single c=16": {"per_min": 79.42, "failed": 0, "tok_s": 31.77, "p50": 12.02, "p95": 12.08},
    "ttft": {"p50": 3.32, "p95": 3.61},
    "short": {
        "alone": 1.1,
        "under_long": 1.48,
        "under_long_failed": 0,
        "long_still_running": False,
    },
    "personas": {"single": 3.62, "council": 5.5, "ratio": 1.52},
}
REPO = Path(__file__).resolve().parents[1]
ASK = [{"role": "user", "content": "Tell me about rivers."}]
SHORT = {"model": "h0", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi"}]}


def post(url: str, **body: Any) -> tuple[float, int, int]:
    """(seconds, completion tokens, HTTP status) of one request."""
    body = {"messages": ASK, **body}
    started = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=900)
    tokens = int(r.json()["usage"]["completion_tokens"]) if r.status_code == 200 else 0
    return time.perf_counter() - started, tokens, r.status_code


def first_token(url: str, **body: Any) -> float:
    body = {"messages": ASK, **body, "stream": True}
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as r:
        for line in r.iter_lines():
            if first is None and line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if any(c["delta"].get("content") for c in chunk.get("choices", [])):
                    first = time.perf_counter() - started
    assert first is not None, "the stream had no content"
    return first


def p(seconds: list[float], q: int) -> float:
    if len(seconds) == 1:
        return seconds[0]
    return statistics.quantiles(seconds, n=100, method="inclusive")[q - 1]


def load(url: str, *, n: int, concurrency: int, **body: Any) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        got = list(pool.map(lambda _: post(url, **body), range(n)))
    wall = time.perf_counter() - started
    seconds = [s for s, _, _ in got]
    return {
        "per_min": sum(code == 200 for _, _, code in got) / wall * 60,  # answers, not errors
        "failed": sum(code != 200 for _, _, code in got),
        "tok_s": sum(t for _, t, _ in got) / wall,
        "p50": statistics.median(seconds),
        "p95": p(seconds, 95),
    }


def cells(args: argparse.Namespace) -> list[tuple[str, Callable[[str], dict[str, Any]]]]:
    """Each measurement as (name, run it against a server's URL), in the order they run."""
    out: list[tuple[str, Callable[[str], dict[str, Any]]]] = []
    kinds = [("council", "council"), ("single", "h0")][: 1 if args.council_only else 2]
    for label, model in kinds:
        for c in args.concurrency:
            body = {"model": model, "max_tokens": args.max_tokens}
            run = functools.partial(load, n=max(c, args.requests), concurrency=c, **body)
            out.append((f"{label} c={c}", run))
    if not args.council_only:
        out += [
            ("ttft", functools.partial(ttft, args=args)),
            ("short", functools.partial(short_under_long, args=args)),
            ("personas", functools.partial(personas, args=args)),
        ]
    return out


def ttft(url: str, args: argparse.Namespace) -> dict[str, Any]:
    firsts = [first_token(url, model="h0", max_tokens=args.max_tokens) for _ in range(args.ttft)]
    return {"p50": statistics.median(firsts), "p95": p(firsts, 95)}


def short_under_long(url: str, args: argparse.Namespace) -> dict[str, Any]:
    alone = [post(url, **SHORT)[0] for _ in range(args.shorts)]
    done, leave = threading.Event(), threading.Event()
    long = threading.Thread(target=long_request, args=(url, done, leave))
    long.start()
    time.sleep(0.5)  # the long request is generating
    under = [post(url, **SHORT) for _ in range(args.shorts)]
    long_running = not done.is_set()
    leave.set()  # hang up: an engine that cancels stops the row, the next cell starts now
    long.join()
    return {
        "alone": statistics.median(alone),
        "under_long": statistics.median(s for s, _, _ in under),
        "under_long_failed": sum(code != 200 for _, _, code in under),
        "long_still_running": long_running,
    }


def long_request(url: str, done: threading.Event, leave: threading.Event) -> None:
    """One max_tokens=512 single-head stream, read until it ends or `leave` is set."""
    body = {"messages": ASK, "model": "h0", "max_tokens": 512, "temperature": 2.0, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as r:
        for _ in r.iter_lines():
            if leave.is_set():
                return
    done.set()


def personas(url: str, args: argparse.Namespace) -> dict[str, Any]:
    one = statistics.median(
        [post(url, model="h0", max_tokens=args.max_tokens)[0] for _ in range(args.ratio)]
    )
    five = statistics.median(
        [post(url, model="council", max_tokens=args.max_tokens)[0] for _ in range(args.ratio)]
    )
    return {"single": one, "council": five, "ratio": five / one}


def report(results: dict[str, dict[str, Any]]) -> None:
    rows = [k for k in next(iter(reversed(results.values()))) if "c=" in k]
    print(
        f"\n{'':16}{'engine':>12}{'answers/min':>13}{'tokens/s':>10}{'p50 s':>8}{'p95 s':>8}"
        f"{'failed':>8}"
    )
    for key in rows:
        for engine, r in results.items():
            if key not in r:
                continue
            m = r[key]
            print(
                f"{key:16}{engine:>12}{m['per_min']:13.1f}{m['tok_s']:10.1f}"
                f"{m['p50']:8.2f}{m['p95']:8.2f}{m['failed']:8d}"
            )
    for engine, r in results.items():
        if "short" not in r:  # --council-only
            continue
        s, t, q = r["short"], r["ttft"], r["personas"]
        print(f"\n{engine}: single-head TTFT p50 {t['p50']:.3f} s, p95 {t['p95']:.3f} s")
        print(
            f"{engine}: short alone {s['alone']:.3f} s, under a 512-token request "
            f"{s['under_long']:.3f} s ({s['under_long'] / s['alone']:.2f}x, "
            f"{s['under_long_failed']} failed; long still "
            f"running at the end: {s['long_still_running']})"
        )
        print(
            f"{engine}: council {q['council']:.2f} s / single {q['single']:.2f} s "
            f"= {q['ratio']:.2f} (five personas over one head)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a random 2-layer model (fast, CI)")
    ap.add_argument(
        "--concurrency", default="1,4,8,16", type=lambda s: [int(x) for x in s.split(",")]
    )
    ap.add_argument("--requests", type=int, default=24, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--ttft", type=int, default=10, help="streamed requests timed")
    ap.add_argument("--shorts", type=int, default=5, help="short requests per measurement")
    ap.add_argument("--ratio", type=int, default=5, help="requests per side of the persona ratio")
    ap.add_argument("--reference", type=Path, help="a saved run's JSON (default: REFERENCE)")
    ap.add_argument(
        "--old-rev",
        help='also serve this git revision with engine = "batch" (e.g. f78cc05^) from a '
        "temporary worktree, measured cell by cell alternately with this checkout",
    )
    ap.add_argument(
        "--prefix-off",
        action="store_true",
        help="also serve this checkout with its prefix cache off (prefix_cache_tokens = 0), "
        "measured cell by cell alternately with it on",
    )
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="also serve this checkout with weight_dtype = bfloat16 (bf16 packed layers), "
        "measured cell by cell alternately with it in float32",
    )
    ap.add_argument(
        "--fixed-threads",
        action="store_true",
        help="also serve this checkout with adaptive_threads = false (one torch thread, "
        "as before it), measured cell by cell alternately with it",
    )
    ap.add_argument(
        "--council-only",
        action="store_true",
        help="council throughput only (no single-head, "
        "TTFT, short-under-long or persona-ratio measurements)",
    )
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="council-engine-"))
    model = convert_default_model(root / "models")
    if args.tiny:
        model = build_tiny_model(model, root / "tiny")
    config = write_config(
        root / "council.toml",
        local_specs(model, 5),
        embedder="none",
        memory=False,
        queue_size=256,
    )
    results: dict[str, dict[str, Any]] = {}
    if not args.old_rev:
        results["batch (ref)"] = (
            json.loads(args.reference.read_text()) if args.reference else REFERENCE
        )
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        if args.old_rev:
            old_src = stack.enter_context(checkout(args.old_rev)) / "src"
            old = old_engine(args.old_rev)
            servers[old] = serve(stack, config, root / "old-data", old_src, COUNCIL_ENGINE="batch")
        servers["continuous"] = serve(stack, config, root / "data", REPO / "src")
        if args.prefix_off:
            servers["continuous, no prefix cache"] = serve(
                stack, config, root / "off-data", REPO / "src", COUNCIL_PREFIX_CACHE_TOKENS="0"
            )
        if args.bf16:
            servers["continuous, bf16"] = serve(
                stack, config, root / "bf16-data", REPO / "src", COUNCIL_WEIGHT_DTYPE="bfloat16"
            )
        if args.fixed_threads:
            servers["continuous, 1 thread"] = serve(
                stack, config, root / "ft-data", REPO / "src", COUNCIL_ADAPTIVE_THREADS="false"
            )
        for server in servers.values():
            server.wait_ready(timeout=600)
            post(server.url, model="council", max_tokens=4)  # warm
        started = time.perf_counter()
        for name, run in cells(args):  # engines alternate per cell: load hits both alike
            for engine, server in servers.items():
                results.setdefault(engine, {})[name] = run(server.url)
                print(f"{name:12} {engine:>20}: {json.dumps(results[engine][name])}", flush=True)
        print(f"measured in {time.perf_counter() - started:.0f} s", flush=True)
    for engine, r in results.items():
        if engine in servers:
            print(f"{engine}: {json.dumps(r)}", flush=True)  # --reference takes a line's JSON
    print(f"load average at end: {os.getloadavg()}")
    print(f"model {model.name}, 5 personas, max_tokens {args.max_tokens}")
    report(results)


def old_engine(rev: str) -> str:
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"batch @{sha}"


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary detached `git worktree` of rev, removed at the end."""
    where = Path(tempfile.mkdtemp(prefix="council-old-")) / "src-tree"
    git = ["git", "-C", str(REPO), "worktree"]
    subprocess.run([*git, "add", "--detach", str(where), rev], check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run([*git, "remove", "--force", str(where)], check=True)
        shutil.rmtree(where.parent, ignore_errors=True)


def serve(stack: ExitStack, config: Path, data: Path, src: Path, **env: str) -> ServerProcess:
    """`council serve` from the checkout at src (its own port and data dir), stopped last."""
    server = ServerProcess(config, data, env={"PYTHONPATH": str(src), **env})
    stack.callback(server.stop)
    return server


if __name__ == "__main__":
    main()
