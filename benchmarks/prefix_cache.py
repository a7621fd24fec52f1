"""Prefix caching on and off, in one run: two engines on the same model, measured in turns.

A council wave is `--councils` councils arriving together, each the five packaged personas
on one question (40 rows for 8), as `benchmarks/engine_load.py --concurrency 8` sends them.
Per round, each engine answers a prefill-only wave (max_tokens 1: the prefill and one pick)
and a whole wave (max_tokens 24), cache on then off, so machine load hits both alike. The
first round on the cached engine fills its cache (cold) and is reported apart; later rounds
are warm, the steady state of a server whose personas keep asking.

    python benchmarks/prefix_cache.py [--model DIR] [--councils 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from council.catalogue import packaged_catalogue
from council.config import Settings
from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.heads.weights import resolve_model_dir
from council.types import Message

MODEL = "smollm2-135m-instruct"  # the packaged council: its five personas on this model
QUESTIONS = [
    "What is the capital of France, and why is it famous? Answer briefly.",
    "How many legs does a spider have?",
    "Write a Python function that reverses a string.",
    "Is 97 a prime number? Explain.",
    "What causes the seasons on Earth?",
    "Translate 'good morning' into Spanish and German.",
    "If a train leaves at 3pm and travels 120 km at 60 km/h, when does it arrive?",
    "Name three uses of copper.",
]


def wave(councils: int, max_tokens: int) -> list[Row]:
    heads = packaged_catalogue()
    personas = [h.system_prompt for h in heads if h.kind == "local" and h.model == MODEL]
    return [
        Row(
            [],
            messages=[Message("system", p or ""), Message("user", QUESTIONS[c % len(QUESTIONS)])],
            temperature=0.0,
            max_new_tokens=max_tokens,
        )
        for c in range(councils)
        for p in personas
    ]


async def timed(engine: LocalModel, rows: list[Row]) -> tuple[float, list[list[int]]]:
    started = time.perf_counter()
    results = await engine.generate(rows)
    return time.perf_counter() - started, [r.token_ids for r in results]


async def run(model: Path, councils: int, rounds: int) -> dict[str, object]:
    on, off = (
        LocalModel(model, max_batch=64),
        LocalModel(model, max_batch=64, prefix_cache_tokens=0),
    )
    figures: dict[str, list[float]] = {}
    same = True
    for r in range(rounds + 1):
        for name, max_tokens in (("prefill", 1), ("wave", 24)):
            s_on, t_on = await timed(on, wave(councils, max_tokens))
            s_off, t_off = await timed(off, wave(councils, max_tokens))
            same = same and t_on == t_off
            tag = "cold" if r == 0 else "warm"
            figures.setdefault(f"{name}_{tag}_on_s", []).append(s_on)
            figures.setdefault(f"{name}_{tag}_off_s", []).append(s_off)
    out: dict[str, object] = {k: round(statistics.median(v), 3) for k, v in figures.items()}
    for name in ("prefill", "wave"):
        warm_on, warm_off = out[f"{name}_warm_on_s"], out[f"{name}_warm_off_s"]
        out[f"{name}_speedup_warm"] = round(float(warm_off) / float(warm_on), 2)  # type: ignore[arg-type]
    out["greedy_equal"] = same
    out["rows"] = len(wave(councils, 1))
    out["prefill_tokens_on"], out["prefill_tokens_off"] = on.prefill_tokens, off.prefill_tokens
    out["prefix_cache"] = on.prefixes.counters()
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)
    on.close()
    off.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--councils", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = args.model or resolve_model_dir(MODEL, Settings().models_dir)
    print(json.dumps(asyncio.run(run(model, args.councils, args.rounds))))


if __name__ == "__main__":
    main()
