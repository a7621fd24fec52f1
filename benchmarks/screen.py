"""Screen tool-less reasoning-gym families for a council margin, cheaply and offline.

Step 1 (collect): every model head of the packaged catalogue (the five SmolLM2-135M personas
and the two Gemma-3-270M heads, enabled here; no tool heads: none applies to these families)
answers --items fixed-seed items of each --families family, once, on the full council's
ballot (`vote`, same prompts, params and seeds as the server). Each item's answers go to
--out (JSONL) as they come; a rerun skips the (family, item) pairs already there.

Step 2 (report, offline, no model): each head's accuracy, then for every subset of heads the
council's `vote` and `weighted` answer recomputed with the ballot's own code (extract_answer,
cluster_answers, tally with the catalogue quality as trust: what a fresh server uses), against
the best single head on the same items: paired wins and losses, one-sided exact McNemar p.
An answer is right when its ballot key equals the gold answer's ("True." and "true" agree).
The best of ~250 subsets on ~30 items is chosen on the same items it is scored on: a margin
here is a lead to confirm on >= 200 fresh items (strategies.py --family ... --heads ...), not
a result.

    python benchmarks/screen.py --out F [--families a,b] [--items 30] [--seed 1234]
                                [--max-tokens 32] [--concurrency 8] [--data-dir DIR]
    python benchmarks/screen.py --report F [--top 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import FAMILIES, mcnemar_p, wilson

from council.ballot.normalize import extract_answer
from council.ballot.vote import cluster_answers, tally
from council.config import Settings, packaged_catalogue
from council.council import Council
from council.heads import build_heads, make_context
from council.types import GenParams, Message

# Tool-less families with short discrete answers (True/False, Yes/No, a word, a small integer),
# configured as strategies.py runs them
SCREEN: dict[str, dict[str, Any]] = {f: c for f, c in FAMILIES.items() if f != "basic_arithmetic"}


def key(text: str) -> str | None:
    """The ballot's comparable key of an answer (None: prose with no clear answer)."""
    return extract_answer(text).key


def model_specs() -> list[Any]:
    return [
        h.model_copy(update={"enabled": True, "timeout_s": 3600.0})
        for h in packaged_catalogue()
        if h.kind == "local"
    ]


# step 1: collect ------------------------------------------------------------------------------
async def collect(args: argparse.Namespace) -> None:
    import reasoning_gym

    done: set[tuple[str, int]] = set()
    if args.out.exists():
        done = {(x["family"], x["item"]) for x in map(json.loads, args.out.open()) if x}
    specs = model_specs()
    settings = Settings(heads=specs, data_dir=args.data_dir, memory=False, pack_weights=args.pack,
                        queue_size=max(16, 8 * args.concurrency * len(specs)))  # fmt: skip
    ctx = make_context(settings)
    heads = build_heads(settings, ctx)
    council = Council(settings, heads=heads)
    began = time.perf_counter()
    # One model at a time: two families loading at once on threads came back with a random
    # lm_head (tied embeddings left untied, transformers 5.23), and packing then failed.
    for h in heads:
        await h.start()
    await council.start()
    print(f"{len(specs)} heads loaded in {time.perf_counter() - began:.0f}s", flush=True)
    params = GenParams(max_tokens=args.max_tokens)
    gate = asyncio.Semaphore(args.concurrency)
    todo = []
    for family in args.families:
        items = reasoning_gym.create_dataset(family, size=args.items, seed=args.seed,
                                             **SCREEN.get(family, {}))  # fmt: skip
        todo += [(family, k, item) for k, item in enumerate(items) if (family, k) not in done]
    finished = 0
    by_id = {h.id: h for h in heads}
    sampled = GenParams(max_tokens=args.max_tokens, temperature=args.temperature)

    async def one(family: str, k: int, item: dict[str, Any]) -> None:
        nonlocal finished
        line = {"family": family, "item": k, "question": item["question"],
                "gold": item["answer"]}  # fmt: skip
        async with gate:
            if args.samples:  # self-consistency: K samples of each --sample-heads head
                for h in args.sample_heads:
                    got = await by_id[h].complete([Message("user", item["question"])],
                                                  n=args.samples, params=sampled)  # fmt: skip
                    line.setdefault("samples", {})[h] = [c.text for c in got if not c.error]
            else:
                v = await council.ask(item["question"], strategy="vote", params=params,
                                      record=False, recall=False, rag=False)  # fmt: skip
                line["answer"] = v.answer
                line["votes"] = [{"head": x.head, "answer": x.answer, "error": x.error}
                                 for x in v.votes]  # fmt: skip
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        finished += 1
        if finished % 10 == 0 or finished == len(todo):
            print(f"  {finished}/{len(todo)} items, {time.perf_counter() - began:.0f}s",
                  file=sys.stderr, flush=True)  # fmt: skip

    await asyncio.gather(*(one(*t) for t in todo))
    await council.close()
    ctx.pool.close()


# step 2: report ---------------------------------------------------------------------------------
def decide(row: dict[str, Any], heads: tuple[str, ...], quality: dict[str, float],
           weighted: bool) -> str | None:  # fmt: skip
    """The winning key of a ballot of `heads` only, counted as count_decision counts it."""
    votes = [v for v in row["votes"] if v["head"] in heads]
    extracted = [None if v["error"] else extract_answer(v["answer"]) for v in votes]
    clusters = cluster_answers(extracted)  # no embedder: free text joins on equal text only
    trust = [
        quality[v["head"]] if e is not None else 0.0 for v, e in zip(votes, extracted, strict=True)
    ]
    weights = trust if weighted else [1.0 if e is not None else 0.0 for e in extracted]
    t = tally(clusters, weights, None, trust)
    if t.winner_index is None:
        return None
    won = extracted[t.winner_index]
    return won.key if won is not None else None


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(x) for x in args.report.read_text().splitlines() if x.strip()]
    quality = {s.id: s.quality for s in model_specs()}
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["family"]].append(r)
    table: dict[str, dict[str, float]] = {}
    for family, items in by.items():
        items.sort(key=lambda r: r["item"])
        n, gold = len(items), [key(r["gold"]) for r in items]
        heads = tuple(v["head"] for v in items[0]["votes"])
        single = {h: [any(v["head"] == h and not v["error"] and key(v["answer"]) == g
                          for v in r["votes"]) for r, g in zip(items, gold, strict=True)]
                  for h in heads}  # fmt: skip
        best = max(heads, key=lambda h: sum(single[h]))
        full = [key(r["answer"]) == g for r, g in zip(items, gold, strict=True)]
        print(f"\n{family}: {n} items, gold {dict(_count(gold))}")
        for h in heads:
            said = _count([key(v["answer"]) for r in items for v in r["votes"] if v["head"] == h])
            common = ", ".join(
                f"{k}: {c}" for k, c in sorted(said.items(), key=lambda x: -x[1])[:3]
            )
            print(
                f"  single {h:<15}{sum(single[h]) / n:6.3f}  ({sum(single[h])}/{n})  says {common}"
            )
        table[family] = {h: sum(single[h]) / n for h in heads}
        scored = []
        for size in range(2, len(heads) + 1):
            for sub in itertools.combinations(heads, size):
                for weighted in (False, True):
                    c = [
                        decide(r, sub, quality, weighted) == g
                        for r, g in zip(items, gold, strict=True)
                    ]
                    w = sum(a and not b for a, b in zip(c, single[best], strict=True))
                    lo = sum(b and not a for a, b in zip(c, single[best], strict=True))
                    scored.append((sum(c), w, lo, "weighted" if weighted else "vote", sub))
        scored.sort(key=lambda s: (-s[0], -s[1] + s[2], len(s[4])))
        k_full = sum(full)
        same = sum(decide(r, heads, quality, False) == key(r["answer"]) for r in items)
        print(f"  council (vote, all {len(heads)}, as run) {k_full / n:.3f}  ({k_full}/{n}); "
              f"recomputed here: the same key on {same}/{n}")  # fmt: skip
        for k, w, lo, how, sub in scored[: args.top]:
            ci = wilson(k, n)
            print(f"  {how:<8} {k / n:.3f} [{ci[0]:.2f}, {ci[1]:.2f}] vs {best}: {w} W {lo} L "
                  f"p={mcnemar_p(w, lo):.3g}  {'+'.join(sub)}")  # fmt: skip
        top = scored[0]
        table[family]["best subset"] = top[0] / n
        table[family]["margin pp"] = 100 * (top[0] - sum(single[best])) / n
        # what any choice among the heads could reach, and what always giving the commonest
        # gold answer scores (a head that always says "True" is no evidence of skill)
        table[family]["any head right"] = sum(map(any, zip(*single.values(), strict=True))) / n
        table[family]["commonest gold"] = max(_count(gold).values()) / n
    if args.samples_report is not None:
        report_samples(args, by)
    heads_all = list(next(iter(table.values())))
    print("\nheads x families (accuracy); best subset = best vote/weighted over all subsets")
    print(f"{'':<22}" + "".join(f"{f[:12]:>13}" for f in table))
    for h in heads_all:
        print(f"{h:<22}" + "".join(f"{table[f].get(h, float('nan')):>13.3f}" for f in table))


def report_samples(args: argparse.Namespace, ballots: dict[str, list[dict[str, Any]]]) -> None:
    """Self-consistency: the majority of each sampled head's K samples (the ballot's count,
    one vote each), against that head's greedy ballot answer and the best single head."""
    rows = [json.loads(x) for x in args.samples_report.read_text().splitlines() if x.strip()]
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = {r["item"]: r for r in rows if r["family"] == family}
        base = {r["item"]: r for r in ballots.get(family, []) if r["item"] in mine}
        items = sorted(base)
        if not items:
            continue
        gold = [key(base[k]["gold"]) for k in items]
        heads = [v["head"] for v in base[items[0]]["votes"]]
        single = {h: [any(v["head"] == h and not v["error"] and key(v["answer"]) == g
                          for v in base[k]["votes"]) for k, g in zip(items, gold, strict=True)]
                  for h in heads}  # fmt: skip
        best = max(heads, key=lambda h: sum(single[h]))
        n = len(items)
        print(f"\n{family} self-consistency ({n} items; best single head {best} "
              f"{sum(single[best]) / n:.3f})")  # fmt: skip
        for h in mine[items[0]]["samples"]:
            texts = [mine[k]["samples"][h] for k in items]
            k_ = len(texts[0])
            each = sum(key(t) == g for ts, g in zip(texts, gold, strict=True) for t in ts)
            maj = []
            for ts, g in zip(texts, gold, strict=True):
                ex = [extract_answer(t) for t in ts]
                t = tally(cluster_answers(ex), [1.0] * len(ex))
                won = ex[t.winner_index] if t.winner_index is not None else None
                maj.append(won is not None and won.key == g)
            w = sum(a and not b for a, b in zip(maj, single[best], strict=True))
            lo = sum(b and not a for a, b in zip(maj, single[best], strict=True))
            print(f"  {h}: greedy {sum(single[h]) / n:.3f}, a sample {each / (n * k_):.3f}, "
                  f"majority of {k_} {sum(maj) / n:.3f}; vs {best}: {w} W {lo} L "
                  f"p={mcnemar_p(w, lo):.3g}")  # fmt: skip


def _count(keys: list[str | None]) -> dict[str | None, int]:
    out: dict[str | None, int] = defaultdict(int)
    for k in keys:
        out[k] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--families", default="syllogism,ransom_note,isomorphic_strings,"
                    "family_relationships,aiw")  # fmt: skip
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--data-dir", type=Path, default=None, help="where converted models live")
    ap.add_argument("--out", type=Path, default=None, help="per-item answers (JSONL), resumable")
    ap.add_argument("--report", type=Path, default=None, help="report an --out file")
    ap.add_argument(
        "--no-pack",
        dest="pack",
        action="store_false",
        help="pack_weights=False (oneDNN packing fails on some converted models)",
    )
    ap.add_argument(
        "--samples",
        type=int,
        default=0,
        help="instead of the ballot: K samples per --sample-heads head (to --out)",
    )
    ap.add_argument("--sample-heads", default="smol-precise,gemma-qa")
    ap.add_argument("--temperature", type=float, default=0.7, help="of the --samples calls")
    ap.add_argument(
        "--samples-report",
        type=Path,
        default=None,
        help="with --report: a --samples file, majority of K against each head",
    )
    ap.add_argument("--top", type=int, default=5, help="best subsets shown per family")
    args = ap.parse_args()
    if args.report is not None:
        report(args)
        return
    if args.out is None:
        sys.exit("--out FILE is required: the answers are what the report reads")
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    args.sample_heads = [h.strip() for h in args.sample_heads.split(",") if h.strip()]
    args.data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-screen-"))
    asyncio.run(collect(args))


if __name__ == "__main__":
    main()
