"""Council overhead, measured in one run.

1. Five remote OpenAI-compatible heads with fixed latencies (loopback servers that sleep, then
   answer): council wall time / slowest head's wall time. Target <= 1.05.
2. Five local personas on the embedded SmolLM2: batched (one generate call) vs one head alone
   vs the five one after another. Target: batched <= 1.6x one head.

    python benchmarks/council_overhead.py [--trials 15] [--local-trials 3] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import ThreadServer

from council.config import HeadSpec, Settings, packaged_catalogue
from council.council import Council
from council.types import GenParams, Message

LATENCIES_MS = (200, 250, 300, 350, 400)


def remote_stub(latency_ms: int) -> FastAPI:
    """A remote model with a known latency (the edge we do not run here: a real GPU server)."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(body: dict) -> dict:
        await asyncio.sleep(latency_ms / 1000)
        return {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "The answer is 42."},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    return app


async def remote_overhead(trials: int) -> None:
    servers = [ThreadServer(remote_stub(ms)).__enter__() for ms in LATENCIES_MS]
    heads = [
        HeadSpec(id=f"remote{i}", kind="openai", model="m", base_url=f"{s.url}/v1")
        for i, s in enumerate(servers)
    ]
    council = Council(Settings(heads=heads, embedder="none", memory=False))
    await council.ask("warm up")
    ratios, walls, slowest = [], [], []
    for _ in range(trials):
        started = time.perf_counter()
        v = await council.ask("What is 6 * 7?")
        wall = (time.perf_counter() - started) * 1000
        slow = max(x.latency_ms for x in v.votes)
        ratios.append(wall / slow)
        walls.append(wall)
        slowest.append(slow)
    await council.close()
    for s in servers:
        s.__exit__()
    print(f"[remote] 5 heads, latencies {LATENCIES_MS} ms, {trials} trials")
    print(
        f"  council wall p50 {statistics.median(walls):.1f} ms · slowest head p50 "
        f"{statistics.median(slowest):.1f} ms · head sum {sum(LATENCIES_MS)} ms"
    )
    print(
        f"  council / slowest head: median {statistics.median(ratios):.3f} "
        f"(max {max(ratios):.3f})  target <= 1.05"
    )


async def local_batching(trials: int, max_tokens: int, data_dir: Path) -> None:
    specs = [h for h in packaged_catalogue() if h.enabled and h.kind == "local"]
    council = Council(Settings(heads=specs, data_dir=data_dir, embedder="none", memory=False))
    await council.start()
    heads = [council.heads[s.id] for s in specs]
    q = [Message("user", "Explain in two sentences why the sky is blue.")]
    p = GenParams(max_tokens=max_tokens)

    async def one() -> tuple[float, int]:
        t = time.perf_counter()
        [c] = await heads[0].complete(q, params=p)
        return time.perf_counter() - t, c.tokens_out

    async def batched() -> tuple[float, int]:
        t = time.perf_counter()
        rs = await asyncio.gather(*(h.complete(q, params=p) for h in heads))
        return time.perf_counter() - t, max(r[0].tokens_out for r in rs)

    async def sequential() -> tuple[float, int]:
        t = time.perf_counter()
        outs = [await h.complete(q, params=p) for h in heads]
        return time.perf_counter() - t, max(r[0].tokens_out for r in outs)

    await one()  # warm up
    results: dict[str, list[tuple[float, int]]] = {"one": [], "batched": [], "sequential": []}
    for _ in range(trials):  # interleaved so machine noise hits all three alike
        results["one"].append(await one())
        results["batched"].append(await batched())
        results["sequential"].append(await sequential())
    await council.close()
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    toks = {k: max(n for _, n in v) for k, v in results.items()}
    print(f"[local] 5 SmolLM2-135M personas, max_tokens {max_tokens}, {trials} trials, 1 thread")
    for k in ("one", "batched", "sequential"):
        print(f"  {k:<10} median {med[k]:6.2f} s  (longest answer {toks[k]} tokens)")
    print(f"  batched / one head:   {med['batched'] / med['one']:.2f}x  target <= 1.6")
    print(f"  sequential / batched: {med['sequential'] / med['batched']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--local-trials", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the converted model lives (default: a temp dir)",
    )
    ap.add_argument("--skip-local", action="store_true")
    args = ap.parse_args()
    asyncio.run(remote_overhead(args.trials))
    if not args.skip_local:
        data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-bench-"))
        asyncio.run(local_batching(args.local_trials, args.max_tokens, data_dir))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
