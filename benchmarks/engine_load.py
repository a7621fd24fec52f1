"""The local engine under load, against a saved figure of the engine it replaced.

A real `council serve` with five local personas on one model, and:
1. answers/min, tokens/s and p50 / p95 latency at each concurrency, for council requests
   (five personas, one ballot) and single-head requests (`model=h0`);
2. single-head streaming: time to the first content chunk (p50 / p95), one at a time;
3. short single-head requests alone, then while one long request (max_tokens 512) runs;
4. the persona ratio: a council request's latency over a single head's, one at a time.

The micro-batch engine is gone; its figures from the last run that measured both engines
side by side (`REFERENCE`, or any JSON this script printed, via --reference) print beside
the new ones as reference lines. Figures from another machine or load do not compare.

    python benchmarks/engine_load.py [--tiny] [--concurrency 1,4,8,16] [--requests 24]
                                     [--council-only] [--reference saved.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
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

# The micro-batch engine (`engine = "batch"`, removed), measured in the same run as the
# continuous engine just before its removal (`--concurrency 8 --requests 8 --council-only`,
# SmolLM2-135M, max_tokens 24) on 2 cores shared with other jobs (load average ~20): the
# continuous engine got 7.1 answers/min, p50 45.7 s, p95 59.9 s in that run. Only a run on the
# same machine under the same load compares with these.
REFERENCE: dict[str, Any] = {
    "council c=8": {"per_min": 4.42, "failed": 0, "tok_s": 8.84, "p50": 108.18, "p95": 108.44}
}
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


def load(url: str, n: int, concurrency: int, **body: Any) -> dict[str, float]:
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


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kinds = [("council", "council"), ("single", "h0")][: 1 if args.council_only else 2]
    for label, model in kinds:
        for c in args.concurrency:
            out[f"{label} c={c}"] = load(
                url, max(c, args.requests), c, model=model, max_tokens=args.max_tokens
            )
    if args.council_only:
        return out
    ttft = [first_token(url, model="h0", max_tokens=args.max_tokens) for _ in range(args.ttft)]
    out["ttft"] = {"p50": statistics.median(ttft), "p95": p(ttft, 95)}
    alone = [post(url, **SHORT)[0] for _ in range(args.shorts)]
    done = threading.Event()
    long = threading.Thread(
        target=lambda: (post(url, model="h0", max_tokens=512, temperature=2.0), done.set())
    )
    long.start()
    time.sleep(0.5)  # the long request is generating
    under = [post(url, **SHORT) for _ in range(args.shorts)]
    long_running = not done.is_set()
    long.join()
    out["short"] = {
        "alone": statistics.median(alone),
        "under_long": statistics.median(s for s, _, _ in under),
        "under_long_failed": sum(code != 200 for _, _, code in under),
        "long_still_running": long_running,
    }
    one = statistics.median(
        [post(url, model="h0", max_tokens=args.max_tokens)[0] for _ in range(5)]
    )
    five = statistics.median(
        [post(url, model="council", max_tokens=args.max_tokens)[0] for _ in range(5)]
    )
    out["personas"] = {"single": one, "council": five, "ratio": five / one}
    return out


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
    ap.add_argument("--reference", type=Path, help="a saved run's JSON (default: REFERENCE)")
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
    reference = json.loads(args.reference.read_text()) if args.reference else REFERENCE
    results: dict[str, dict[str, Any]] = {"batch (ref)": reference}
    config = write_config(
        root / "council.toml",
        local_specs(model, 5),
        embedder="none",
        memory=False,
        queue_size=256,
    )
    server = ServerProcess(config, root / "data")
    try:
        server.wait_ready(timeout=600)
        post(server.url, model="council", max_tokens=4)  # warm
        started = time.perf_counter()
        results["continuous"] = measure(server.url, args)
        print(f"measured in {time.perf_counter() - started:.0f} s", flush=True)
        print(json.dumps(results["continuous"]), flush=True)  # --reference takes this line
    finally:
        server.stop()
    print(f"model {model.name}, 5 personas, max_tokens {args.max_tokens}")
    report(results)


if __name__ == "__main__":
    main()
