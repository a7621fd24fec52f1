"""Learning data on the default model, end to end, measured in one run.

reasoning-gym basic_arithmetic items are asked through the real server (`council serve`,
default SmolLM2 heads, memory on); a scripted user compares each answer with the gold answer
and sends thumbs up/down through POST /api/feedback; then `council harvest` (Agent-0 = the
council, with the exec_safe tool) rewrites the failures and the quality gate keeps some.
Prints: failures, rewrites that passed the gate, and how many of those are correct against
gold (the gate's precision).

    python benchmarks/learning_data.py [--items 100] [--seed 7] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import reasoning_gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import ServerProcess

from council.ballot.normalize import extract_answer
from council.learning.gauntlet import FAMILIES


def family(n: int, seed: int):  # type: ignore[no-untyped-def]
    # The gauntlet's difficulty, so traffic and hold-out are the same task.
    return reasoning_gym.create_dataset(
        "basic_arithmetic", size=n, seed=seed, **FAMILIES["basic_arithmetic"]
    )


def _asked(data: Path) -> int:
    from council.storage import open_db

    store = open_db(data / "council.db")
    sql = "SELECT COUNT(*) FROM exchanges WHERE improved = 0 AND success = 1"
    return int(store.query(sql)[0][0])


def _ask(ds, config: Path, data: Path, max_tokens: int) -> int:  # type: ignore[no-untyped-def]
    """Live traffic through the real server; the scripted user rates every answer."""
    server = ServerProcess(config, data)
    correct = 0
    try:
        server.wait_ready(timeout=600)
        with httpx.Client(base_url=server.url, timeout=600) as http:
            for entry in ds:
                r = http.post("/v1/chat/completions", json={
                    "model": "council", "user": "bench", "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": entry["question"]}],
                })  # fmt: skip
                r.raise_for_status()
                body = r.json()
                answer = extract_answer(body["choices"][0]["message"]["content"]).display
                ok = ds.score_answer(answer, entry) >= 1.0
                correct += ok
                http.post("/api/feedback", json={
                    "exchange_id": body["exchange_id"], "rating": 1 if ok else -1,
                    "comment": f"scripted user: gold {entry['answer']}",
                }).raise_for_status()  # fmt: skip
    finally:
        server.stop()
    return correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--agent0-max-tokens", type=int, default=128)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="traffic was already asked into --data-dir: harvest and report only",
    )
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="council-learning-"))
    config = data.parent / f"{data.name}.toml"
    config.write_text("")  # the packaged catalogue: five SmolLM2 personas
    ds = family(args.items, args.seed)
    gold = {e["question"]: (e["answer"], e) for e in ds}
    started = time.perf_counter()
    correct = _asked(data) if args.resume else _ask(ds, config, data, args.max_tokens)
    asked_s = time.perf_counter() - started

    env = {**os.environ, "COUNCIL_DATA_DIR": str(data), "COUNCIL_CONFIG": str(config),
           "COUNCIL_AGENT0_MAX_TOKENS": str(args.agent0_max_tokens)}  # fmt: skip
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "council", "harvest", "--since", "7d"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    harvest_s = time.perf_counter() - t

    from council.config import load_settings
    from council.storage import open_db

    store = open_db(load_settings(data_dir=data).server.data_dir / "council.db")
    rows = store.query(
        "SELECT h.status, h.quality, h.signals_json, e.prompt, r.answer AS rewrite "
        "FROM harvests h JOIN exchanges e ON e.id = h.exchange_id "
        "JOIN exchanges r ON r.id = h.rewrite_id"
    )
    accepted = [r for r in rows if r["status"] == "accepted"]
    right = 0
    composed = 0
    for r in accepted:
        _, entry = gold[r["prompt"]]
        final = r["rewrite"].split("ANSWER:")[-1].strip()
        right += ds.score_answer(extract_answer(final).display, entry) >= 1.0
        composed += bool((json.loads(r["signals_json"]).get("tool") or {}).get("composed"))
    failures = args.items - correct
    print(f"basic_arithmetic, {args.items} items, seed {args.seed}, max_tokens {args.max_tokens}")
    print(
        f"  council accuracy          {correct}/{args.items} = {correct / args.items:.0%}"
        f"   ({asked_s / args.items:.1f} s per item)"
    )
    print(f"  failures (user feedback)  {failures}")
    print(f"  harvested                 {len(rows)}   ({harvest_s / max(1, len(rows)):.1f} s each)")
    print(
        f"  passed the gate           {len(accepted)}  ({composed} answered by the exec_safe tool)"
    )
    print(
        f"  correct against gold      {right}/{len(accepted)}  gate precision "
        f"{right / max(1, len(accepted)):.0%}"
    )
    print(f"  data dir                  {data}")


if __name__ == "__main__":
    main()
