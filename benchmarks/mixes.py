"""Which default mix is best: the SmolLM2 personas alone, or with one or two Gemma heads.

The packaged catalogue's five SmolLM2-135M personas, its two Gemma-3-270M heads (disabled
by default) and its tool heads (calculator, reader; --no-tool-heads leaves them out) are
loaded once; each mix is its own Council over a subset of them, and every mix answers every
item with `vote` (or --strategy). A head's answer to an item is generated once and counted in
every mix that has it: the same head, prompt, params and seed give the same call in any mix
(strategies.py's Shared cache). Single heads are the model heads, each answering alone on
the same prompt (its vote on the largest mix's ballot).

For each mix: accuracy (95 % Wilson), head calls per item, then against the best single head
of ALL model heads (not only the mix's), paired wins and losses on the same items and the
exact one-sided McNemar p; and each mix against the personas alone.

    python benchmarks/mixes.py [--family basic_arithmetic|letter_counting] [--items 100]
                               [--seed 1234] [--max-tokens 32] [--concurrency 8]
                               [--strategy vote] [--no-tool-heads] [--data-dir DIR] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import FAMILIES, TRACE, Shared, Trace, mcnemar_p, right, wilson

from council.config import HeadSpec, Settings, packaged_catalogue
from council.council import Council
from council.heads import Head, build_heads, make_context
from council.types import Completion, GenParams

GEMMA = ["gemma-qa", "gemma-qa-warm"]


def mixes(catalogue: list[HeadSpec]) -> dict[str, list[str]]:
    """Mix name -> head ids: the personas (and tools), then one and two Gemma heads."""
    base = [h.id for h in catalogue if h.enabled and h.id not in GEMMA]
    return {"smollm2 x5": base, "+1 gemma": base + GEMMA[:1], "+2 gemma": base + GEMMA}


async def run(args: argparse.Namespace) -> None:
    import reasoning_gym

    family = FAMILIES[args.family]
    items = list(reasoning_gym.create_dataset(args.family, size=args.items, seed=args.seed,
                                              **family))  # fmt: skip
    catalogue = [h for h in packaged_catalogue() if h.kind != "openai"]
    if not args.tool_heads:
        catalogue = [h for h in catalogue if h.kind != "tool"]
    mix = mixes(catalogue)
    specs = [
        h.model_copy(update={"enabled": True, "timeout_s": 3600.0})
        for h in catalogue
        if h.id in mix["+2 gemma"]
    ]

    def settings_for(ids: list[str]) -> Settings:
        return Settings(
            heads=[s for s in specs if s.id in ids],
            data_dir=args.data_dir,
            memory=False,
            queue_size=max(16, 8 * args.concurrency * len(specs)),
        )

    ctx = make_context(settings_for(mix["+2 gemma"]))
    cache: dict[Any, list[Completion]] = {}
    heads: dict[str, Head] = {
        h.id: Shared(h, cache) for h in build_heads(settings_for(mix["+2 gemma"]), ctx)
    }
    councils = {
        name: Council(settings_for(ids), heads=[heads[i] for i in ids]) for name, ids in mix.items()
    }
    loaded = time.perf_counter()
    for c in councils.values():
        await c.start()
    print(f"{len(specs)} heads loaded in {time.perf_counter() - loaded:.0f}s", flush=True)
    params = GenParams(max_tokens=args.max_tokens)
    singles = [s.id for s in specs if s.kind == "local"]
    right_by: dict[str, list[bool]] = {k: [False] * len(items) for k in [*mix, *singles]}
    calls: dict[str, list[int]] = {k: [0] * len(items) for k in mix}
    gate = asyncio.Semaphore(args.concurrency)
    began, done = time.perf_counter(), 0

    async def one(k: int, item: dict[str, Any]) -> None:
        nonlocal done
        async with gate:
            for name, council in councils.items():
                TRACE.set(Trace())
                v = await council.ask(item["question"], strategy=args.strategy, params=params,
                                      record=False, recall=False, rag=False)  # fmt: skip
                right_by[name][k] = right(v.answer, item["answer"])
                calls[name][k] = v.head_calls
                if name == "+2 gemma":
                    for x in v.votes:
                        if x.head in singles:
                            right_by[x.head][k] = x.error is None and right(
                                x.answer, item["answer"]
                            )
                write_out(args.out, k, name, item, v)
        done += 1
        if done % 10 == 0:
            print(f"  {done}/{len(items)} items, {time.perf_counter() - began:.0f}s",
                  file=sys.stderr, flush=True)  # fmt: skip

    await asyncio.gather(*(one(k, i) for k, i in enumerate(items)))
    for c in councils.values():
        await c.close()
    ctx.pool.close()
    report(args, right_by, calls, singles, list(mix), time.perf_counter() - began)


def write_out(out: Path | None, k: int, mix: str, item: dict[str, Any], v: Any) -> None:
    if out is None:
        return
    line = {"item": k, "mix": mix, "question": item["question"], "gold": item["answer"],
            "answer": v.answer, "correct": right(v.answer, item["answer"]), "notes": v.notes,
            "votes": [{"head": x.head, "answer": x.answer, "abstained": x.abstained}
                      for x in v.votes]}  # fmt: skip
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")


def paired(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    wins = sum(x and not y for x, y in zip(a, b, strict=True))
    losses = sum(y and not x for x, y in zip(a, b, strict=True))
    return wins, losses, mcnemar_p(wins, losses)


def report(
    args: argparse.Namespace,
    right_by: dict[str, list[bool]],
    calls: dict[str, list[int]],
    singles: list[str],
    names: list[str],
    wall: float,
) -> None:
    n = args.items
    print(
        f"\n{args.family} ({json.dumps(FAMILIES[args.family])}), {n} items, seed {args.seed}, "
        f"max_tokens {args.max_tokens}, strategy {args.strategy}, tool heads "
        f"{'on' if args.tool_heads else 'off'}, {wall:.0f}s wall"
    )
    for h in singles:
        k = sum(right_by[h])
        print(f"  single {h:<16}{k / n:>7.3f}  ({k}/{n})")
    best = max(singles, key=lambda h: sum(right_by[h]))
    print(f"best single head: {best} {sum(right_by[best]) / n:.3f}")
    base = names[0]
    for name in names:
        k = sum(right_by[name])
        lo, hi = wilson(k, n)
        w, l_, p = paired(right_by[name], right_by[best])
        line = (
            f"  {args.strategy} {name:<11}{k / n:>7.3f} [{lo:.3f}, {hi:.3f}] "
            f"calls {statistics.mean(calls[name]):.2f}; vs {best}: {w} wins, {l_} losses, "
            f"McNemar p={p:.3g}"
        )
        if name != base:
            w, l_, p = paired(right_by[name], right_by[base])
            line += f"; vs {base}: {w} wins, {l_} losses, p={p:.3g}"
        print(line)


def report_file(args: argparse.Namespace) -> None:
    """The report of a --out file, over the items every mix finished."""
    lines = [json.loads(x) for x in args.report.read_text().splitlines() if x.strip()]
    names = list(dict.fromkeys(x["mix"] for x in lines))
    by_item: dict[int, dict[str, Any]] = {}
    for x in lines:
        by_item.setdefault(x["item"], {})[x["mix"]] = x
    done = sorted(k for k, m in by_item.items() if len(m) == len(names))
    singles = [v["head"] for v in by_item[done[0]][names[-1]]["votes"] if not v["abstained"]
               and v["head"] not in ("calculator", "reader")]  # fmt: skip
    right_by = {n: [by_item[k][n]["correct"] for k in done] for n in names}
    for h in singles:
        right_by[h] = [
            any(v["head"] == h and right(v["answer"], by_item[k][names[-1]]["gold"])
                for v in by_item[k][names[-1]]["votes"])
            for k in done
        ]  # fmt: skip
    calls = {n: [len(by_item[k][n]["votes"]) for k in done] for n in names}
    args.items = len(done)
    report(args, right_by, calls, singles, names, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--family", choices=sorted(FAMILIES), default="basic_arithmetic")
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--strategy", default="vote")
    ap.add_argument("--no-tool-heads", dest="tool_heads", action="store_false")
    ap.add_argument("--data-dir", type=Path, default=None, help="where converted models live")
    ap.add_argument("--out", type=Path, default=None, help="per-item results (JSONL)")
    ap.add_argument("--report", type=Path, default=None,
                    help="report a (cut-short) run's --out file instead of running")  # fmt: skip
    args = ap.parse_args()
    if args.report is not None:
        report_file(args)
        return
    args.data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-mixes-"))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
