"""The running batch's K/V, appended into spare columns against re-concatenated, in one run.

transformers' DynamicLayer appends a decode step's keys and values with torch.cat, copying
the whole cache every step; the engine's running batch (heads/kvbatch.py `SpareLayer`)
writes them into spare columns and copies once per SPARE steps. This serves --rows greedy
rows of --tokens tokens, each after a prompt of about --context tokens, through the engine
itself (`LocalModel`, the default model, float32), alternating the two ways --reps times
per context; it prints the median seconds, the ratio, and whether every row's tokens were
the same both ways.

    python benchmarks/kv_growth.py [--rows 40] [--tokens 64] [--context 100,400] [--reps 2]
                                   [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from transformers.cache_utils import DynamicLayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import convert_default_model

from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.heads.kvbatch import SpareLayer
from council.types import Message

WORDS = ["river", "stone", "lantern", "orchard", "copper", "meadow", "harbor", "violin"]
SPARE_UPDATE = SpareLayer.update


def prompts(engine: LocalModel, rows: int, context: int) -> list[list[int]]:
    """`rows` different prompts of about `context` tokens (the word order differs per row)."""
    out = []
    for r in range(rows):
        words = [WORDS[(r * 7 + i * (r % 3 + 1)) % len(WORDS)] for i in range(context - 40)]
        out.append(engine.encode([Message("user", "Summarise these words: " + " ".join(words))]))
    return out


async def run(
    engine: LocalModel, ids: list[list[int]], tokens: int, spare: bool
) -> tuple[float, list[list[int]]]:
    """Seconds for one batch of rows, and each row's tokens."""
    SpareLayer.update = SPARE_UPDATE if spare else DynamicLayer.update
    rows = [Row(list(p), max_new_tokens=tokens) for p in ids]
    started = time.perf_counter()
    done = await engine.generate(rows)
    return time.perf_counter() - started, [d.token_ids for d in done]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--context", default="100,400", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--reps", type=int, default=2, help="timed runs per way and context")
    ap.add_argument(
        "--models-dir", type=Path, default=None, help="where the default model is converted once"
    )
    args = ap.parse_args()
    folder = convert_default_model(args.models_dir or Path(tempfile.mkdtemp()))
    engine = LocalModel(folder, window_ms=1, max_batch=max(64, args.rows), queue_size=256)
    await engine.ensure_loaded()
    try:
        for context in args.context:
            ids = prompts(engine, args.rows, context)
            await run(engine, ids[:2], 4, spare=True)  # warm (and prefix-cache the template)
            times: dict[bool, list[float]] = {True: [], False: []}
            outs: dict[bool, list[list[int]]] = {}
            for _ in range(args.reps):
                for spare in (False, True):  # alternating, so drift hits both alike
                    seconds, outs[spare] = await run(engine, ids, args.tokens, spare)
                    times[spare].append(seconds)
            old, new = (statistics.median(times[k]) for k in (False, True))
            same = sum(a == b for a, b in zip(outs[False], outs[True], strict=True))
            size = statistics.median(len(p) for p in ids)
            print(f"prompts of {size:.0f} tokens, {args.rows} rows x {args.tokens} tokens: "
                  f"torch.cat {old:.2f} s, spare columns {new:.2f} s -> {old / new:.2f}x; "
                  f"same tokens {same}/{args.rows}", flush=True)  # fmt: skip
    finally:
        SpareLayer.update = SPARE_UPDATE
        engine.close()


if __name__ == "__main__":
    asyncio.run(main())
