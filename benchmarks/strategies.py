"""Strategies on reasoning-gym, measured in one run on the default models.

Fixed-seed items (basic_arithmetic, two 1-2 digit operands, + - *) go to the packaged
catalogue's heads (five SmolLM2-135M personas, two tool heads). Per strategy it prints
accuracy with a 95 % Wilson interval, head calls and tokens per item, cost, and p50/p95
latency, next to the best single head; then the selector (`auto`) against the full council
(`vote`).

Before the measured items, --warmup questions of the same family (another seed, none of the
measured ones) go to the full council with memory on, as a server's earlier traffic would:
the router learns how sure each head usually sounds and the cognitive map (written once,
after) which head is most often right. `auto` uses both; nothing it learns comes from gold
answers of the measured items (it keeps learning certainty from their ballots, as a live
server does).

How it stays affordable on 2 CPU cores, and what that means for the figures:
- identical head calls (same head, messages, params) are answered once and shared between
  strategies: they all start from the same first ballot. Head calls and tokens are counted
  per strategy as if nothing were shared. `auto` runs other batches (1 head, then 4) than
  the shared ballot, so on the timed items it shares nothing and runs for real;
- the first --latency-items items run one at a time and are timed; the rest run
  --concurrency at a time, untimed, so the model batches rows across items;
- the heavy strategies (best_of_n, rank, moa, debate, clone_dispatch) make 6-15 calls per item:
  `--heavy-items` can run them on the first N items only (default: all), compared with the
  rest on those items; on 2 cores, run them in a second process (`--strategies
  vote,rank,moa,debate --warmup 0`): each process reports vote and the single heads on its
  own items;
- latency is the critical path of each strategy's head calls (calls issued together run
  together, a later stage waits for the one before), each call at the latency measured when
  it really ran (inside whatever batch it ran in); counting/clustering time is left out;
- a single head's answer is its own vote on the full-council ballot (same prompt, params and
  seed as asking it alone); its latency is that ballot's batch (an upper bound);
- answers are right when the number extracted from them equals the gold answer exactly.

The packaged catalogue's tool heads (calculator, reader, dates, units: heads/tools.py) sit
beside the model heads unless --no-tool-heads; single heads are the model heads (a tool head
alone abstains on what it cannot do). An answer the calculator computed outranks a count that
disagrees (ballot/vote.py exact_override).
--family letter_counting is a family where no tool applies (both tool heads abstain); so are
syllogism, ransom_note, isomorphic_strings, family_relationships, aiw and course_schedule
(short discrete answers: True/False, Yes/No, a word, a small integer; right when the answer's
ballot key equals the gold's). --heads picks the model heads (a mix that screen.py found).

    python benchmarks/strategies.py [--items 200] [--heavy-items N] [--strategies vote,auto]
                                    [--warmup 100] [--concurrency 8] [--latency-items 20]
                                    [--max-tokens 32] [--seed 1234] [--quick] [--data-dir DIR]
                                    [--family NAME] [--heads a,b,c] [--no-tool-heads]
                                    [--champions DATA_DIR]

--champions serves each role's champion adapter from another data dir's registry (what a
nightly cycle promoted there), attached by the server's own Deployer: the council and the
single heads are then measured as that server answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from council.ballot.normalize import canonical_number, extract_answer
from council.config import Settings, packaged_catalogue
from council.council import Council
from council.heads import Head, build_heads, make_context
from council.routing import cognitive_map
from council.types import Completion, GenParams, Message

CHEAP = ["vote", "weighted", "consensus", "auto"]
HEAVY = ["best_of_n", "rank", "moa", "debate", "clone_dispatch"]
FAMILY = "basic_arithmetic"
# reasoning-gym draws item i from seed + i, so the warm-up's seed + 1 repeated the measured
# items shifted by one (and filtering them out left one warm-up question): go far away.
WARMUP_SEED_OFFSET = 1_000_000
# Division is left out: reasoning-gym 0.1.25 gives wrong gold answers for two-term divisions
# ("Calculate 5 / 9." with answer "10").
FAMILY_CONFIG: dict[str, Any] = dict(
    min_terms=2,
    max_terms=2,
    min_digits=1,
    max_digits=2,
    operators=["+", "-", "*"],
    allow_parentheses=False,
    allow_negation=False,
)
# --family: a checkable family (the calculator applies) and one where no tool applies
FAMILIES: dict[str, dict[str, Any]] = {
    "basic_arithmetic": FAMILY_CONFIG,
    "letter_counting": dict(min_words=3, max_words=6),
    # tool-less families with short discrete answers (benchmarks/screen.py screens them)
    "syllogism": {},
    "ransom_note": {},
    "isomorphic_strings": {},
    "family_relationships": {},
    "aiw": {},
    "course_schedule": {},
}


# sharing identical calls, and the critical path of each run --------------------------------
class Trace:
    """Virtual time of one strategy run: a call starts when every call that had returned
    before it was issued is done (the stage before it), and lasts its measured latency."""

    def __init__(self) -> None:
        self.frontier = 0.0

    def start(self) -> float:
        return self.frontier

    def finish(self, started: float, ms: float) -> None:
        self.frontier = max(self.frontier, started + ms)


TRACE: contextvars.ContextVar[Trace] = contextvars.ContextVar("trace")
OUT: Path | None = None
# `auto` asks 2 heads, then 3: shared with the 5-head ballot its latency would be counted at
# 5-row batch times, so on the first --latency-items items it keeps its calls to itself and
# is timed on what it really runs; after them it shares calls and is not timed.
SPACE: contextvars.ContextVar[str] = contextvars.ContextVar("space", default="shared")


class Shared(Head):
    """A head whose identical calls are answered once (see the module docstring)."""

    def __init__(self, inner: Head, cache: dict[Any, list[Completion]]):
        super().__init__(inner.spec, inner.ctx)
        self.inner = inner
        self.cache = cache

    async def start(self) -> None:
        await self.inner.start()

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        trace = TRACE.get()
        started = trace.start()  # at entry: before any call of the same gather has returned
        await asyncio.sleep(0)  # ... which this yield guarantees even for cache hits
        key = (SPACE.get(), self.id, tuple(messages), repr(params), n)
        if key not in self.cache:
            self.cache[key] = await self.inner.complete(messages, n=n, params=params)
        result = [replace(c) for c in self.cache[key]]
        trace.finish(started, max(c.latency_ms for c in result))
        return result


# scoring -----------------------------------------------------------------------------------
@dataclass
class Tally:
    correct: list[bool] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    cost: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # what the verdicts' notes report


EVENTS = {  # note fragment -> what it counts
    "unreadable": "unreadable reviews",
    "early stop:": "early stops",
    " was sure (": "stopped on one sure head",
    " agreed (": "stopped on agreement",
    "converged after": "debates converged",
    "did not converge": "debates not converged",
    "failed (": "synthesis/judge failures",
}


def right(text: str, gold: str) -> bool:
    """A number must equal a numeric gold exactly; other golds ("True", "Yes", "father")
    must give the same ballot key as the answer ("true." and "True" agree)."""
    got = extract_answer(text)
    number = canonical_number(gold)
    if number is not None:
        return got.kind == "number" and got.key == number
    return got.key is not None and got.key == extract_answer(gold).key


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def mcnemar_p(better: int, worse: int) -> float:
    """One-sided exact McNemar: the chance of at least `better` wins among the discordant."""
    n = better + worse
    return sum(math.comb(n, k) for k in range(better, n + 1)) / 2**n if n else 1.0


# the run -----------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> None:
    import reasoning_gym

    items = list(
        reasoning_gym.create_dataset(FAMILY, size=args.items, seed=args.seed, **FAMILY_CONFIG)
    )
    # Untimed items queue behind each other's batches: a head call may wait minutes for the
    # model, which says nothing about the strategy, so the heads' timeout is lifted here.
    catalogue = [h for h in packaged_catalogue() if h.enabled]
    if args.heads:  # these model heads (disabled ones too: the Gemma heads), and the tools
        unknown = set(args.heads) - {h.id for h in packaged_catalogue()}
        if unknown:
            sys.exit(f"--heads: no such head in the catalogue: {', '.join(sorted(unknown))}")
        catalogue = [
            h.model_copy(update={"enabled": True})
            for h in packaged_catalogue()
            if h.id in args.heads or (h.kind == "tool" and h.enabled)
        ]
    if not args.tool_heads:
        catalogue = [h for h in catalogue if h.kind != "tool"]
    specs = [h.model_copy(update={"timeout_s": 3600.0}) for h in catalogue]
    settings = Settings(
        heads=specs,
        data_dir=args.data_dir,
        memory=args.warmup > 0,  # the warm-up's exchanges are what the cognitive map reads
        rank_max_tokens=args.review_tokens,
        # every item in flight queues its heads' rows at once: room for all of them
        queue_size=max(16, 8 * args.concurrency * len(specs)),
    )
    ctx = make_context(settings)
    cache: dict[Any, list[Completion]] = {}
    heads: list[Head] = [Shared(h, cache) for h in build_heads(settings, ctx)]
    council = Council(settings, heads=heads)
    loaded = time.perf_counter()
    # One model at a time: SmolLM2 and Gemma loading at once on threads came back with a
    # random lm_head (tied embeddings left untied under transformers 5.23) and garbage text.
    for h in heads:
        await h.start()
    await council.start()
    if args.champions:
        await serve_champions([h.inner for h in heads], settings, args.champions)
    print(
        f"{len(specs)} heads loaded in {time.perf_counter() - loaded:.0f}s: "
        f"{', '.join(s.id for s in specs)}",
        flush=True,
    )
    params = GenParams(max_tokens=args.max_tokens)
    if args.warmup:
        await warm_up(council, items, params, args)
    names = ["vote", *[s for s in args.strategies if s != "vote"]]
    # Single heads are the model heads: a tool head alone abstains on what it cannot do.
    results = {n: Tally() for n in names} | {
        f"single:{s.id}": Tally() for s in specs if s.kind != "tool"
    }
    began = time.perf_counter()
    # Pass 1: the cheap strategies on every item; pass 2: the heavy ones on the first items
    # (their first ballot comes from pass 1). A cut-short pass 2 leaves pass 1 reported.
    passes = [
        ([n for n in names if n not in HEAVY], items),
        ([n for n in names if n in HEAVY], items[: args.heavy_items]),
    ]
    for p, (group, part) in enumerate(passes, 1):
        finished = await run_pass(council, p, group, part, params, args, began)
        for k, item in enumerate(part):  # recorded in item order: pairs stay aligned
            for name, outcome in zip(group, finished[k], strict=True):
                record(results, name, item, outcome)
        if p == 1 and passes[1][0] and part:
            report(results, args, time.perf_counter() - began)
    await council.close()
    ctx.pool.close()
    report(results, args, time.perf_counter() - began)


async def serve_champions(heads: list[Head], settings: Settings, data_dir: Path) -> None:
    """Each role's champion in `data_dir`'s adapter registry, attached to that role's heads
    by the server's own Deployer, as a server on that data dir serves it (no canary, no
    probes, no polling: one sync)."""
    from types import SimpleNamespace

    from council.adapters.deployer import Deployer
    from council.adapters.registry import Registry
    from council.storage import open_db

    store = open_db(data_dir / "council.db")
    try:
        stand_in = SimpleNamespace(enabled=heads, observers=[])  # what the Deployer reads
        deployer = Deployer(stand_in, Registry(store, data_dir), settings)
        await deployer.sync()
        if deployer.errors:
            sys.exit(f"--champions: {deployer.errors}")
        for role, aliases in deployer.registry.all_aliases().items():
            print(f"role {role}: champion {aliases.get('champion')}", flush=True)
    finally:
        store.close()


async def run_pass(
    council: Council,
    p: int,
    group: list[str],
    part: list[dict[str, Any]],
    params: GenParams,
    args: argparse.Namespace,
    began: float,
) -> dict[int, list[Outcome]]:
    """Every strategy of `group` on every item of `part`. The first --latency-items items run
    one at a time (their latencies are what one request sees); the rest run --concurrency
    at a time, untimed, so the model batches across items."""
    finished: dict[int, list[Outcome]] = {}
    gate = asyncio.Semaphore(args.concurrency)

    async def item_run(k: int, item: dict[str, Any]) -> None:
        timed = k < args.latency_items
        async with gate if not timed else contextlib.nullcontext():
            finished[k] = [
                await one(council, name, item, params, name == "auto" and timed, timed)
                for name in group
            ]
        for name, outcome in zip(group, finished[k], strict=True):
            write_out(k, name, item, outcome)  # as it happens: a cut-short run keeps its items
        if len(finished) % 10 == 0 or len(finished) == len(part):
            print(
                f"  pass {p}: {len(finished)}/{len(part)} items, "
                f"{time.perf_counter() - began:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    for k, item in enumerate(part[: args.latency_items]):
        await item_run(k, item)
    rest = list(enumerate(part))[args.latency_items :]
    await asyncio.gather(*(item_run(k, item) for k, item in rest))
    return finished


async def warm_up(
    council: Council, items: list[dict[str, Any]], params: GenParams, args: argparse.Namespace
) -> None:
    """Traffic before the measured items, as a server would have seen: full-council ballots
    on other questions of the family (another seed, none of the measured questions), stored
    with their verifier labels. From them the router learns how sure each head usually
    sounds, and the cognitive map (written once, after) which head is most often right."""
    import reasoning_gym

    measured = {i["question"] for i in items}
    extra = reasoning_gym.create_dataset(
        FAMILY, size=args.warmup * 2, seed=args.seed + WARMUP_SEED_OFFSET, **FAMILY_CONFIG
    )
    warm = [i for i in extra if i["question"] not in measured][: args.warmup]
    gate = asyncio.Semaphore(args.concurrency)
    began = time.perf_counter()

    memory = council.memory
    assert memory is not None
    rated = []

    async def ask(item: dict[str, Any]) -> None:
        async with gate:
            TRACE.set(Trace())
            SPACE.set("warm-up")
            v = await council.ask(item["question"], strategy="vote", params=params, recall=False,
                                  rag=False)  # fmt: skip
        if args.warmup_feedback and v.exchange_id is not None:
            # a user who knows the answer: 👍, or 👎 saying what it should have been
            good = right(v.answer, str(item["answer"]))
            rated.append(good)
            await asyncio.to_thread(memory.store.add_feedback, v.exchange_id, 1 if good else -1,
                                    None, None if good else str(item["answer"]))  # fmt: skip

    await asyncio.gather(*(ask(i) for i in warm))
    written = cognitive_map.write(council.settings.server.data_dir, memory.store)
    print(
        f"warm-up: {len(warm)} full-council questions (seed {args.seed + WARMUP_SEED_OFFSET}) in "
        f"{time.perf_counter() - began:.0f}s"
        + (f"; rated by a user who knows the answers: {sum(rated)} 👍, "
           f"{len(rated) - sum(rated)} 👎 with the right answer" if rated else ""),
        flush=True,
    )  # fmt: skip
    specs = [h.spec for h in council.enabled]
    for domain, heads in written["domains"].items():
        scores = ", ".join(f"{h} {s['accuracy']:.2f}" for h, s in heads["heads"].items())
        if scores:
            print(f"  the map's {domain} head scores: {scores}", flush=True)
    for domain, outcomes in written["outcomes"].items():
        w = cognitive_map.head_weights(outcomes, specs)
        shown = ", ".join(f"{h} {w[h]:.2f} ({int(outcomes[h]['n'])})" for h in w if h in outcomes)
        print(f"  learned {domain} weights (outcomes): {shown}", flush=True)


@dataclass
class Outcome:
    verdict: Any
    latency_ms: float | None  # None: run among concurrent items, not timed
    correct: bool


async def one(
    council: Council, name: str, item: dict[str, Any], params: GenParams, alone: bool, timed: bool
) -> Outcome:
    trace = Trace()
    tokens = TRACE.set(trace), SPACE.set("auto" if alone else "shared")
    try:
        v = await council.ask(
            item["question"], strategy=name, params=params, record=False, recall=False, rag=False
        )
    finally:
        TRACE.reset(tokens[0])
        SPACE.reset(tokens[1])
    return Outcome(v, trace.frontier if timed else None, right(v.answer, item["answer"]))


def write_out(k: int, name: str, item: dict[str, Any], o: Outcome) -> None:
    if OUT is None:
        return
    v = o.verdict
    line = {
        "item": k,
        "strategy": name,
        "question": item["question"],
        "gold": item["answer"],
        "answer": v.answer,
        "correct": o.correct,
        "head_calls": v.head_calls,
        "latency_ms": o.latency_ms,
        "notes": v.notes,
        "route": v.route,
        "votes": [{"head": x.head, "answer": x.answer, "logprob": x.logprob} for x in v.votes],
    }
    with OUT.open("a") as f:
        f.write(json.dumps(line) + "\n")


def record(results: dict[str, Tally], name: str, item: dict[str, Any], o: Outcome) -> None:
    v = o.verdict
    t = results[name]
    t.correct.append(o.correct)
    t.calls.append(v.head_calls)
    t.tokens.append(v.tokens_in + v.tokens_out)
    t.cost += v.cost_usd
    for note in v.notes:
        for fragment, label in EVENTS.items():
            if fragment in note:
                t.events[label] = t.events.get(label, 0) + 1
    if o.latency_ms is not None:
        t.latency_ms.append(o.latency_ms)
    if name == "vote":  # every head's own answer is a single-head result
        for x in v.votes:
            if f"single:{x.head}" not in results:  # a tool head
                continue
            s = results[f"single:{x.head}"]
            s.correct.append(x.error is None and right(x.answer, item["answer"]))
            s.calls.append(1)
            s.tokens.append(x.tokens_in + x.tokens_out)
            s.cost += x.cost_usd
            if o.latency_ms is not None:
                s.latency_ms.append(x.latency_ms)


def report(results: dict[str, Tally], args: argparse.Namespace, wall: float) -> None:
    print(
        f"\n{FAMILY} ({json.dumps(FAMILY_CONFIG)}), seed {args.seed}, max_tokens "
        f"{args.max_tokens}, tool heads {'on' if args.tool_heads else 'off'}, {wall:.0f}s wall"
    )
    header = f"{'strategy':<22}{'n':>4}  {'accuracy':>8}  {'95% CI':<15}{'calls':>6}"
    print(
        header
        + f"{'tokens':>8}{'cost $':>9}{'p50 s':>7}{'p95 s':>7}  same items: best single, vote"
    )
    singles = {k: t for k, t in results.items() if k.startswith("single:")}
    for name, t in results.items():
        n = len(t.correct)
        if n == 0:
            continue
        k = sum(t.correct)
        lo, hi = wilson(k, n)
        best_same = max(sum(s.correct[:n]) / n for s in singles.values())
        vote_same = sum(results["vote"].correct[:n]) / n
        print(
            f"{name:<22}{n:>4}  {k / n:>8.3f}  [{lo:.3f}, {hi:.3f}] "
            f"{statistics.mean(t.calls):>6.2f}{statistics.mean(t.tokens):>8.0f}"
            f"{t.cost:>9.4f}{pct(t.latency_ms, 0.5) / 1000:>7.2f}"
            f"{pct(t.latency_ms, 0.95) / 1000:>7.2f}  {best_same:.3f}, {vote_same:.3f}"
        )
    for name, t in results.items():
        if t.events:
            told = ", ".join(f"{v} {k}" for k, v in t.events.items())
            print(f"  {name}: {told} (over {len(t.correct)} items)")
    best_single = max(singles, key=lambda s: sum(singles[s].correct))
    councils = {k: t for k, t in results.items() if not k.startswith("single:") and t.correct}
    # Compared on every item: a heavy strategy's rate on a few items is no fair rival.
    most = max(len(t.correct) for t in councils.values())
    full = {k: t for k, t in councils.items() if len(t.correct) == most}
    best = max(full, key=lambda s: sum(full[s].correct))
    b, s = councils[best].correct, singles[best_single].correct[: len(councils[best].correct)]
    pairs = list(zip(b, s, strict=True))
    wins, losses = sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs)
    print(
        f"\nbest council strategy {best} {sum(b) / len(b):.3f} vs best single head "
        f"{best_single} {sum(s) / len(s):.3f} on the same {len(b)} items: {wins} wins, "
        f"{losses} losses, one-sided McNemar p={mcnemar_p(wins, losses):.3g} -> target "
        f"{'met' if sum(b) > sum(s) else 'NOT met'}"
    )
    if "auto" in results and results["auto"].correct:
        a, v = results["auto"], results["vote"]
        print(f"(auto is timed on its first {len(a.latency_ms)} items, run on its own calls)")
        acc = sum(a.correct) / max(1, sum(v.correct))
        calls = statistics.mean(a.calls) / statistics.mean(v.calls)
        ok = acc >= 0.95 and calls <= 0.5
        print(
            f"selector (auto) vs full council (vote): accuracy {sum(a.correct)}/{len(a.correct)}"
            f" vs {sum(v.correct)}/{len(v.correct)} = {acc:.1%} of it, head calls "
            f"{statistics.mean(a.calls):.2f} vs {statistics.mean(v.calls):.2f} = {calls:.1%};"
            f" target >= 95 % with <= 50 %: {'met' if ok else 'NOT met'}"
        )


def report_file(path: Path) -> None:
    """A (cut-short) run's --out file: each strategy against the best single model head, on
    the items every strategy finished (a busy box may stop a run anywhere)."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        x = json.loads(line)
        by.setdefault(x["strategy"], {})[x["item"]] = x
    items = sorted(set.intersection(*(set(d) for d in by.values())))
    votes = {k: by["vote"][k]["votes"] for k in items}
    heads = [v["head"] for v in votes[items[0]] if v["logprob"] is not None]  # model heads
    single = {
        h: [any(v["head"] == h and right(v["answer"], by["vote"][k]["gold"]) for v in votes[k])
            for k in items]
        for h in heads
    }  # fmt: skip
    n, best = len(items), max(heads, key=lambda h: sum(single[h]))
    print(f"{path}: {n} items finished by every strategy")
    for h in heads:
        print(f"  single {h:<16}{sum(single[h]) / n:.3f}  ({sum(single[h])}/{n})")
    for s, d in by.items():
        c = [d[k]["correct"] for k in items]
        w = sum(a and not b for a, b in zip(c, single[best], strict=True))
        lo = sum(b and not a for a, b in zip(c, single[best], strict=True))
        ci = wilson(sum(c), n)
        print(f"{s}: {sum(c) / n:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], head calls "
              f"{statistics.mean(d[k]['head_calls'] for k in items):.2f}; vs best single head "
              f"{best}: {w} wins, {lo} losses, one-sided exact McNemar p={mcnemar_p(w, lo):.3g}"
              )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument(
        "--heavy-items",
        type=int,
        default=None,
        help=f"run {', '.join(HEAVY)} on only the first N items (default: all)",
    )
    ap.add_argument("--strategies", default=",".join(CHEAP + HEAVY))
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument(
        "--latency-items",
        type=int,
        default=20,
        help="the first N items run one at a time and are timed; the rest run concurrently",
    )
    ap.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="untimed items in flight at once (the model batches across them)",
    )
    ap.add_argument("--review-tokens", type=int, default=40, help="rank_max_tokens")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="full-council questions (another seed) the router learns from first; 0: none",
    )
    ap.add_argument(
        "--warmup-feedback",
        action="store_true",
        help="a user who knows the answers rates each warm-up answer (👍, or 👎 with the right "
        "answer as its correction), so heads' weights learn on families no verifier checks",
    )
    ap.add_argument("--out", type=Path, default=None, help="write per-item results (JSONL)")
    ap.add_argument("--report", type=Path, default=None, help="only report an --out file")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="basic_arithmetic")
    ap.add_argument(
        "--heads",
        default="",
        help="comma-separated model head ids of the catalogue to run (Gemma heads included: "
        "gemma-qa, gemma-qa-warm); default: the enabled ones",
    )
    ap.add_argument(
        "--no-tool-heads",
        dest="tool_heads",
        action="store_false",
        help="leave the packaged catalogue's tool heads (calculator, reader, dates, units) out",
    )
    ap.add_argument(
        "--champions",
        type=Path,
        default=None,
        help="a data dir whose adapter registry names each role's champion (a nightly "
        "cycle's): the heads answer with it, as a server on that data dir does",
    )
    ap.add_argument("--quick", action="store_true", help="10 items, vote/auto/rank/debate")
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the converted model lives (default: a temp dir)",
    )
    args = ap.parse_args()
    if args.report is not None:
        report_file(args.report)
        return
    if args.quick:
        args.items, args.strategies, args.warmup = 10, "vote,auto,rank,debate", 30
        args.latency_items = min(args.latency_items, 4)
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    args.heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    args.heavy_items = args.items if args.heavy_items is None else args.heavy_items
    args.data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-bench-"))
    global OUT, FAMILY, FAMILY_CONFIG
    OUT = args.out
    FAMILY, FAMILY_CONFIG = args.family, FAMILIES[args.family]
    try:
        import reasoning_gym  # noqa: F401
    except ImportError:
        sys.exit("This benchmark needs reasoning-gym: pip install reasoning-gym")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
