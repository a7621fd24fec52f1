"""One whole self-improvement cycle on the default model, on CPU, measured in one run.

  live traffic through the real server (a scripted user gives feedback from gold)
  → harvest (Agent-0 with exec_safe) → quality gate → freeze → LoRA train
  → blind gauntlet: base vs the new adapter on fresh hold-out items + the control set

Prints one table: accuracy per family (95 % intervals), the delta, and the verdict.
Target (issue): ≥ +10 pp on the family, no more than −3 pp on the control set, < 60 min.

    python benchmarks/learning_cycle.py [--traffic 150] [--blind 200] [--control 30] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import ServerProcess

from benchmarks.learning_data import family
from council.ballot.normalize import extract_answer


def stage(name: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  [{now - started:7.1f}s] {name}", flush=True)
    return now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traffic", type=int, default=150, help="live questions asked")
    ap.add_argument("--blind", type=int, default=200, help="hold-out items of the family")
    ap.add_argument("--control", type=int, default=30, help="items per control set")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--head", default="smol-precise", help="the head live traffic goes to")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=2e-4, help="see the closing note of issue 6")
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.traffic, args.blind, args.control, args.epochs = 12, 12, 3, 1.0
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="council-cycle-"))
    data.mkdir(parents=True, exist_ok=True)
    config = data / "council.toml"
    config.write_text("min_failures_to_train = 5\nagent0_max_tokens = 64\n")
    env = {**os.environ, "COUNCIL_DATA_DIR": str(data / "state"), "COUNCIL_CONFIG": str(config),
           "COUNCIL_AGENT0": args.head}  # fmt: skip
    t0 = time.perf_counter()
    print(f"learning cycle · basic_arithmetic · seed {args.seed} · data {data}", flush=True)

    ds = family(args.traffic, args.seed)
    server = ServerProcess(config, data / "state")
    correct = 0
    try:
        server.wait_ready(timeout=600)
        stage("server ready", t0)
        with httpx.Client(base_url=server.url, timeout=600) as http:
            for entry in ds:
                r = http.post("/v1/chat/completions", json={
                    "model": args.head, "user": "traffic", "max_tokens": 48,
                    "messages": [{"role": "user", "content": entry["question"]}],
                }).json()  # fmt: skip
                ok = ds.score_answer(extract_answer(r["choices"][0]["message"]["content"]).display,
                                     entry) >= 1.0  # fmt: skip
                correct += ok
                http.post("/api/feedback", json={"exchange_id": r["exchange_id"],
                                                 "rating": 1 if ok else -1})  # fmt: skip
    finally:
        server.stop()
    stage(f"live traffic: {correct}/{args.traffic} right through {args.head}", t0)

    def cli(*argv: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "council", *argv],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(f"council {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    print("\n".join("    " + ln for ln in cli("harvest", "--since", "7d").splitlines()[-1:]))
    stage("harvest", t0)
    froze = cli("dataset", "freeze", "--min-quality", "0.7").splitlines()[0]
    version = froze.split()[1].rstrip(":")
    stage(froze, t0)
    trained = cli("train", "--dataset", version, "--epochs", str(args.epochs),
                  "--learning-rate", str(args.lr)).splitlines()[-1]  # fmt: skip
    adapter = trained.split()[1]
    stage(trained, t0)
    report = cli("gauntlet", "--adapter", adapter, "--blind", str(args.blind),
                 "--control", str(args.control), "--target", "basic_arithmetic")  # fmt: skip
    stage("gauntlet", t0)
    print(report)
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
