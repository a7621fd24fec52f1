"""The reading set: generated documents with stated facts, ingested through `council ingest`,
then questions about them through the council (vote, the packaged catalogue's enabled heads).

Each document (fixed seed) is about an invented thing, so no head can know the answer
without reading: a number (length, staff, visitors), a name (who founded or designed it) and
a year it was opened or founded, among filler sentences. Three questions per document. The
documents are written as Markdown files and ingested by the real CLI (`python -m council
ingest DIR`, COUNCIL_DATA_DIR set) into a fresh data dir; the council then answers with
knowledge recall on (rag=True), as a server would.

An answer is right when it contains the stated fact (case and thousands separators folded).
Single heads are the model heads, each its own vote on the council's ballot (same prompt).
Per item results go to --out as they finish; a rerun with the same --out skips the items
already there (resumable on a busy machine), and the report covers every item in the file.

    python benchmarks/reading.py [--docs 20] [--seed 7] [--max-tokens 32] [--concurrency 4]
                                 [--data-dir DIR] [--out F] [--report] [--shard K/N] [--reverse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import mcnemar_p, wilson

from council.config import Settings, packaged_catalogue
from council.council import Council
from council.types import GenParams

SYLLABLES = ["vor", "tan", "mel", "quo", "ris", "bal", "dun", "kes", "lio", "mar", "zen", "path"]
FIRST = ["Ilsa", "Tomas", "Reni", "Oskar", "Wanda", "Felix", "Maren", "Jorah", "Petra", "Aldo"]
LAST = ["Marrow", "Quell", "Dravik", "Ostby", "Lunde", "Varga", "Castell", "Brenner", "Holm"]
FILLER = [
    "It is often mentioned in local guidebooks.",
    "Visitors describe the surroundings as quiet and green.",
    "The site was renovated several times over the decades.",
    "A small museum nearby tells its history.",
    "Photographs of it appear on regional postcards.",
]
KINDS = [  # (kind, number fact, its question, name fact, its question, year fact, its question)
    ("bridge", "{x} is {n:,} metres long.", "How long is {x} in metres?",
     "{x} was designed by the engineer {p}.", "Who designed {x}?",
     "{x} was opened to traffic in {y}.", "In which year was {x} opened?"),
    ("company", "{x} employs {n:,} people.", "How many people does {x} employ?",
     "{x} was founded by {p}.", "Who founded {x}?",
     "{x} was founded in {y}.", "In which year was {x} founded?"),
    ("library", "{x} holds {n:,} books.", "How many books does {x} hold?",
     "The first librarian of {x} was {p}.", "Who was the first librarian of {x}?",
     "{x} opened its doors in {y}.", "In which year did {x} open its doors?"),
    ("ship", "{x} carries {n:,} passengers.", "How many passengers does {x} carry?",
     "The captain of {x} is {p}.", "Who is the captain of {x}?",
     "{x} was launched in {y}.", "In which year was {x} launched?"),
]  # fmt: skip
NOUN = {"bridge": "Bridge", "company": "Works", "library": "Library", "ship": "Star"}


@dataclass(frozen=True)
class Item:
    doc: str
    question: str
    gold: str


def generate(docs: int, seed: int) -> tuple[dict[str, str], list[Item]]:
    """File name -> Markdown text, and the questions about them (fixed by `seed`)."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    items: list[Item] = []
    names: set[str] = set()
    while len(files) < docs:
        kind, nf, nq, pf, pq, yf, yq = KINDS[len(files) % len(KINDS)]
        word = "".join(rng.sample(SYLLABLES, 2)).capitalize()
        if word in names:
            continue
        names.add(word)
        x = f"The {word} {NOUN[kind]}"
        n, p = rng.randint(120, 9800), f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        y = rng.randint(1850, 2015)
        facts = [nf.format(x=x, n=n), pf.format(x=x, p=p), yf.format(x=x, y=y)]
        body = [*facts, *rng.sample(FILLER, 2)]
        rng.shuffle(body)
        name = f"{word.lower()}-{kind}.md"
        files[name] = f"# {x[4:]}\n\n{' '.join(body)}\n"
        items += [
            Item(name, nq.format(x=x[0].lower() + x[1:]), f"{n:,}"),
            Item(name, pq.format(x=x[0].lower() + x[1:]), p),
            Item(name, yq.format(x=x[0].lower() + x[1:]), str(y)),
        ]  # fmt: skip
    return files, items


def _fold(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3})", "", " ".join(text.lower().split()))


def right(answer: str, gold: str) -> bool:
    """The answer states the fact: the gold text inside it, as a whole number or words."""
    return re.search(rf"(?<![\w]){re.escape(_fold(gold))}(?![\w])", _fold(answer)) is not None


def ingest(docs_dir: Path, data_dir: Path) -> str:
    """`council ingest` through the real CLI, into `data_dir`."""
    env = {**os.environ, "COUNCIL_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "council", "ingest", str(docs_dir)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"council ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


async def run(args: argparse.Namespace) -> None:
    files, items = generate(args.docs, args.seed)
    docs_dir = args.data_dir / "reading-docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (docs_dir / name).write_text(text)
    began = time.perf_counter()
    print(f"council ingest: {ingest(docs_dir, args.data_dir)} ({time.perf_counter() - began:.0f}s)")
    done = _done(args.out)
    shard, shards = args.shard
    todo = [(k, it) for k, it in enumerate(items) if k not in done and k % shards == shard]
    todo = todo[::-1] if args.reverse else todo
    specs = [h.model_copy(update={"timeout_s": 3600.0}) for h in packaged_catalogue() if h.enabled]
    settings = Settings(heads=specs, data_dir=args.data_dir, memory=True, facts=False,
                        queue_size=max(16, 8 * args.concurrency * len(specs)))  # fmt: skip
    council = Council(settings)
    await council.start()
    params = GenParams(max_tokens=args.max_tokens)
    gate = asyncio.Semaphore(args.concurrency)
    print(f"{len(items)} questions on {len(files)} documents; {len(todo)} to run", flush=True)

    async def one(k: int, it: Item) -> None:
        async with gate:
            v = await council.ask(it.question, strategy="vote", params=params, record=False,
                                  recall=False, rag=True)  # fmt: skip
        line = {"item": k, "doc": it.doc, "question": it.question, "gold": it.gold,
                "answer": v.answer, "correct": right(v.answer, it.gold),
                "head_calls": v.head_calls, "notes": v.notes,
                "votes": [{"head": x.head, "answer": x.answer, "abstained": x.abstained,
                           "error": x.error} for x in v.votes]}  # fmt: skip
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        done[k] = line
        if len(done) % 10 == 0:
            print(f"  {len(done)}/{len(items)} items, {time.perf_counter() - began:.0f}s",
                  file=sys.stderr, flush=True)  # fmt: skip

    await asyncio.gather(*(one(k, it) for k, it in todo))
    await council.close()
    report(args.out)


def _done(out: Path) -> dict[int, dict]:
    if not out.exists():
        return {}
    return {x["item"]: x for x in map(json.loads, out.read_text().splitlines()) if x}


def report(out: Path) -> None:
    lines = sorted(_done(out).values(), key=lambda x: x["item"])
    n = len(lines)
    if not n:
        print("no items finished")
        return
    council = [x["correct"] for x in lines]
    heads = sorted({v["head"] for x in lines for v in x["votes"]})
    single = {
        h: [any(v["head"] == h and not v["abstained"] and right(v["answer"], x["gold"])
                for v in x["votes"]) for x in lines]
        for h in heads
    }  # fmt: skip
    models = [h for h in heads if not any(v["head"] == h and v["abstained"] for x in lines
                                           for v in x["votes"])]  # fmt: skip
    models = [h for h in models if h not in ("calculator", "reader", "dates", "units")]
    k = sum(council)
    lo, hi = wilson(k, n)
    print(f"\nreading set: {n} questions, vote {k / n:.3f} [{lo:.3f}, {hi:.3f}] "
          f"(target >= 0.80: {'met' if k / n >= 0.8 else 'NOT met'}), head calls "
          f"{statistics.mean(x['head_calls'] for x in lines):.2f} per question")  # fmt: skip
    for h in heads:
        said = [v for x in lines for v in x["votes"] if v["head"] == h and not v["abstained"]]
        answered = len(said)
        print(f"  {h:<16}{sum(single[h]) / n:>7.3f}  ({sum(single[h])}/{n}; answered {answered})")
    best = max(models, key=lambda h: sum(single[h]))
    wins = sum(a and not b for a, b in zip(council, single[best], strict=True))
    losses = sum(b and not a for a, b in zip(council, single[best], strict=True))
    print(f"vote vs best single model head {best} {sum(single[best]) / n:.3f}: {wins} wins, "
          f"{losses} losses, one-sided McNemar p={mcnemar_p(wins, losses):.3g}")  # fmt: skip
    by_kind: dict[str, list[bool]] = {}
    for x in lines:
        kind = "number" if x["gold"][0].isdigit() and len(x["gold"]) != 4 else (
            "year" if x["gold"].isdigit() else "name")  # fmt: skip
        by_kind.setdefault(kind, []).append(x["correct"])
    print("  by fact: " + ", ".join(f"{kd} {sum(v)}/{len(v)}" for kd, v in by_kind.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--docs", type=int, default=20, help="documents (three questions each)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--data-dir", type=Path, default=None, help="a fresh dir (default: temp)")
    ap.add_argument("--out", type=Path, default=None, help="per-item results (JSONL)")
    ap.add_argument("--report", action="store_true", help="only report --out's items (files)")
    ap.add_argument("--reverse", action="store_true", help="last items first (a 2nd process)")
    ap.add_argument(
        "--shard",
        default="0/1",
        help="K/N: only the items whose index is K mod N (N processes, one --out each)",
    )
    args = ap.parse_args()
    args.shard = tuple(int(x) for x in args.shard.split("/"))
    args.data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-reading-"))
    args.out = args.out or args.data_dir / "reading.jsonl"
    if args.report:
        report(args.out)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
