"""One whole self-improvement cycle on the default model, end to end, on any reasoning-gym family.

  1. live traffic: a scripted user asks N questions of the family through a real
     `council serve` (openai SDK) and rates each answer against gold through POST
     /api/feedback: 👍 when right, 👎 with the gold answer as a correction when wrong;
  2. the nightly cycle, as cron runs it: `council improve` with no family (harvest → freeze
     with a held-out split → LoRA train → gate on held-out traffic, replay and controls →
     deploy), no canary (no server runs during the cycle; the fresh blind set below judges);
  3. the gate's report: its verdict, the gain test and, each on its own, the non-inferiority
     tests of replay and of the controls;
  4. a fresh blind set of the family (a seed range the cycle never saw, and no question
     asked as traffic) through a server with memory off (nothing recalled into the prompt):
     the base model (a scratch data dir, no adapter) and, when the cycle promoted one, the
     new champion (the cycle's data dir).

Ends with one line:
  RESULT family=... traffic_n=... corrected=... decision=... gain_pp=... p=... replay=...
         controls=... base_acc=... champion_acc=... delta_pp=... detail={json}

    python benchmarks/learning_cycle.py --family syllogism [--family-config '{"k": 1}']
        [--traffic 160] [--blind 80] [--control 40] [--epochs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import reasoning_gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import ServerProcess

from council.learning.gauntlet import FAMILIES, control_family, family_right
from council.learning.ledger import content_hash
from council.learning.rule import Paired, mcnemar_p

BLIND_SEED_OFFSET = 50_000_000  # the fresh blind set: seeds the cycle and traffic never use


def stage(name: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  [{now - started:7.1f}s] {name}", flush=True)
    return now


def dataset(family: str, config: dict[str, Any], n: int, seed: int) -> Any:
    return reasoning_gym.create_dataset(family, size=n, seed=seed, **config)


def right(ds: Any, entry: dict[str, Any], text: str) -> bool:
    """Scored as the gauntlet scores a family: the text after ANSWER:, normalised."""
    return family_right(ds, entry, text)


def ask(server: ServerProcess, head: str, ds: Any, entries: list[dict[str, Any]],
        max_tokens: int, *, rate: bool,
        concurrency: int = 1) -> tuple[list[bool], int]:  # fmt: skip
    """Ask each entry through the server, `concurrency` at a time (the engine batches them);
    with `rate`, the scripted user's feedback: 👍, or 👎 with the gold answer as a correction.
    Returns (right or not per entry, corrected)."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=1800,
                           max_retries=0)  # fmt: skip

    def one(entry: dict[str, Any], http: httpx.Client) -> tuple[bool, bool]:
        r = client.chat.completions.create(
            model=head, max_tokens=max_tokens, user="scripted-user",
            messages=[{"role": "user", "content": entry["question"]}],
        )  # fmt: skip
        ok = right(ds, entry, r.choices[0].message.content or "")
        if not rate:
            return ok, False
        body: dict[str, Any] = {"exchange_id": (r.model_extra or {})["exchange_id"],
                                "rating": 1 if ok else -1}  # fmt: skip
        if not ok:
            body["correction"] = str(entry["answer"])
        http.post("/api/feedback", json=body).raise_for_status()
        return ok, not ok

    with (
        httpx.Client(base_url=server.url, timeout=60) as http,
        ThreadPoolExecutor(max(1, concurrency)) as pool,
    ):
        done = list(pool.map(lambda e: one(e, http), entries))
    return [ok for ok, _ in done], sum(fixed for _, fixed in done)


def serve(config: Path, data: Path, models: Path, **env: str) -> ServerProcess:
    """A server on `data`, its converted model shared from `models` (converted once)."""
    data.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    if not (data / "models").exists():
        (data / "models").symlink_to(models.resolve(), target_is_directory=True)
    server = ServerProcess(config, data, env=env)
    server.wait_ready(timeout=600)
    return server


def rated(state: Path) -> tuple[int, int]:
    """(👍, 👎 with a correction) the scripted user gave in an earlier, interrupted run."""
    from council.storage import open_db

    rows = open_db(state / "council.db").query(
        "SELECT SUM(rating = 1), SUM(correction IS NOT NULL) FROM feedback"
    )
    return int(rows[0][0] or 0), int(rows[0][1] or 0)


def blind_entries(ds: Any, n: int, seen: set[str]) -> list[dict[str, Any]]:
    """n items of the blind seed range whose question was never asked as traffic."""
    return [e for e in ds if content_hash(e["question"]) not in seen][:n]


def gate(state: Path) -> dict[str, Any]:
    """The newest gauntlet report the cycle recorded (None fields when it never ran)."""
    from council.learning.ledger import latest_gauntlet_report
    from council.storage import open_db

    row = latest_gauntlet_report(open_db(state / "council.db"))
    return json.loads(row["report_json"]) if row else {}


def check_summary(check: dict[str, Any] | None) -> str:
    if not check or check["outcome"] == "absent":
        return "absent"
    return (f"{check['outcome']}(n={check['n']},-{check['worse']}/+{check['better']},"
            f"p={check['p']:.3g})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--family", required=True, help="any reasoning-gym family")
    ap.add_argument(
        "--family-config",
        default=None,
        help="JSON of the family's options (default: the gauntlet's, else none)",
    )
    ap.add_argument("--traffic", type=int, default=160, help="live questions the user asks")
    ap.add_argument("--blind", type=int, default=80, help="fresh blind items, base vs champion")
    ap.add_argument("--control", type=int, default=40, help="the gate's items per control set")
    ap.add_argument("--seed", type=int, default=11, help="the traffic's seed")
    ap.add_argument("--head", default="smol-precise", help="the head traffic goes to (greedy)")
    ap.add_argument("--max-tokens", type=int, default=64, help="per answer")
    ap.add_argument("--concurrency", type=int, default=8, help="questions in flight at once")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=2e-4, help="see the closing note of issue 6")
    ap.add_argument("--min-train", type=int, default=5, help="MIN_FAILURES_TO_TRAIN")
    ap.add_argument("--heldout-share", type=float, default=0.2, help="COUNCIL_HELDOUT_SHARE")
    ap.add_argument("--margin", type=float, default=5.0,
                    help="COUNCIL_GATE_MARGIN_PP: replay decides from 59 items at 5 pp "
                         "(29 at 10 pp), the controls from 52 (25)")  # fmt: skip
    ap.add_argument(
        "--rehearsal",
        type=float,
        default=1.0,
        help="COUNCIL_REHEARSAL: rehearsal examples per training example",
    )
    ap.add_argument(
        "--grad-accum",
        type=int,
        default=8,
        help="COUNCIL_GRAD_ACCUM: training rows per step = 4 x this",
    )
    ap.add_argument("--agent0-max-tokens", type=int, default=96)
    ap.add_argument("--agent0-samples", type=int, default=2, help="rewrites per failure")
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="the traffic was already asked into --data-dir: go on from the cycle",
    )
    ap.add_argument(
        "--models",
        type=Path,
        default=None,
        help="converted models to share (default: DATA_DIR/models)",
    )
    args = ap.parse_args()  # fmt: skip
    if args.quick:
        args.traffic, args.blind, args.control, args.epochs = 16, 8, 3, 1.0
    fam_config = (json.loads(args.family_config) if args.family_config
                  else FAMILIES.get(args.family, {}))  # fmt: skip
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="council-cycle-"))
    data.mkdir(parents=True, exist_ok=True)
    state, scratch, models = data / "state", data / "base", args.models or data / "models"
    config = data / "council.toml"
    config.write_text(
        f"min_failures_to_train = {args.min_train}\nagent0 = {json.dumps(args.head)}\n"
        f"agent0_max_tokens = {args.agent0_max_tokens}\nheldout_share = {args.heldout_share}\n"
        f"gate_margin_pp = {args.margin}\nagent0_samples = {args.agent0_samples}\n"
        f"gauntlet_family = {json.dumps(control_family(args.family))}\n"
        f"rehearsal = {args.rehearsal}\ngrad_accum = {args.grad_accum}\n"
        f"gate_max_tokens = {args.max_tokens}\n"  # the gate re-asks with the traffic's budget
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(COUNCIL_DATA_DIR=str(state), COUNCIL_CONFIG=str(config), COLUMNS="200",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # fmt: skip
    t0 = time.perf_counter()
    print(f"learning cycle · {args.family} {json.dumps(fam_config)} · traffic seed {args.seed}"
          f" · data {data}", flush=True)  # fmt: skip

    # 1. live traffic, rated by the scripted user
    traffic = dataset(args.family, fam_config, args.traffic, args.seed)
    if args.resume:  # the cycle is idempotent: it goes on where it was stopped
        hits, corrected = rated(state)
    else:
        server = serve(config, state, models)
        try:
            stage("server ready", t0)
            answered, corrected = ask(server, args.head, traffic, list(traffic),
                                      args.max_tokens, rate=True,
                                      concurrency=args.concurrency)  # fmt: skip
            hits = sum(answered)
        finally:
            server.stop()
    stage(f"live traffic: {hits}/{args.traffic} right through {args.head}; "
          f"{corrected} 👎 with a correction, {hits} 👍", t0)  # fmt: skip

    # 2. the nightly cycle, no family given
    cycle = subprocess.run(
        [sys.executable, "-m", "council", "improve", "--since", "7d", "--no-canary",
         "--control", str(args.control), "--epochs", str(args.epochs),
         "--learning-rate", str(args.lr)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    print("\n".join("    " + ln for ln in cycle.stdout.splitlines()), flush=True)
    if cycle.returncode != 0:
        raise SystemExit(f"council improve failed ({cycle.returncode}):\n{cycle.stderr[-3000:]}")
    stopped = next((ln.strip() for ln in cycle.stdout.splitlines()
                    if "skipped:" in ln or "nothing to do" in ln), None)  # fmt: skip
    stage("council improve", t0)

    # 3. the gate's report
    report = gate(state)
    checks = {c["name"]: c for c in (report.get("rule") or {}).get("checks", [])}
    gain = checks.get("traffic")
    for reason in report.get("reasons", []):
        print(f"    gate: {reason}")
    from council.adapters.registry import Registry
    from council.storage import open_db

    champion = Registry(open_db(state / "council.db"), state).champion("core")
    promoted = champion is not None and report.get("challenger") == champion

    # 4. the fresh blind set, base (scratch data dir) and champion (the cycle's)
    seen = {content_hash(e["question"]) for e in traffic}
    blind_ds = dataset(args.family, fam_config, 3 * args.blind + 20,
                       args.seed + BLIND_SEED_OFFSET)  # fmt: skip
    blind = blind_entries(blind_ds, args.blind, seen)

    def blind_hits(data_dir: Path) -> list[bool]:
        """The head's right answers on the blind set, served from `data_dir`'s adapters."""
        # memory off: the cycle's data dir remembers the traffic and its corrections, and a
        # scratch one what it has answered so far; either would be recalled into the prompt
        server = serve(config, data_dir, models, COUNCIL_MEMORY="false")
        try:
            got, _ = ask(server, args.head, blind_ds, blind, args.max_tokens, rate=False,
                         concurrency=args.concurrency)  # fmt: skip
        finally:
            server.stop()
        return got

    base_right = blind_hits(scratch)
    base_hits = sum(base_right)
    stage(f"fresh blind set, base: {base_hits}/{len(blind)}", t0)
    champ_right = base_right
    if promoted:
        champ_right = blind_hits(state)
        stage(f"fresh blind set, champion {champion}: {sum(champ_right)}/{len(blind)}", t0)
    champ_hits, paired = sum(champ_right), Paired.of(base_right, champ_right)
    n = max(1, len(blind))
    # what always giving the blind set's commonest gold answer scores: a head that learned
    # the family's prior ("1" to most letter counts) shows as no better than this
    commonest = max(Counter(str(e["answer"]).strip().lower() for e in blind).values(), default=0)
    families = report.get("families", {})
    controls = {f: v["delta_pp"] for f, v in families.items() if v.get("kind") == "control"}
    detail = {
        "family": args.family, "family_config": fam_config, "traffic": args.traffic,
        "traffic_right": hits, "corrected": corrected, "blind_n": len(blind),
        "base_acc": round(base_hits / n, 4), "champion_acc": round(champ_hits / n, 4),
        "delta_pp": round(100 * (champ_hits - base_hits) / n, 2), "promoted": promoted,
        "blind_better": paired.better, "blind_worse": paired.worse,
        "blind_p": mcnemar_p(paired.better, paired.worse),
        "blind_commonest_gold_acc": round(commonest / n, 4),
        "challenger": report.get("challenger"), "verdict": report.get("verdict"),
        "reasons": report.get("reasons", []), "control_delta_pp": controls,
        "stopped": None if report else stopped, "gate_items": report.get("items"),
        "minutes": round((time.perf_counter() - t0) / 60, 1),
        "sizes": {"traffic": args.traffic, "blind": args.blind, "control": args.control,
                  "epochs": args.epochs, "lr": args.lr, "max_tokens": args.max_tokens,
                  "heldout_share": args.heldout_share, "margin_pp": args.margin,
                  "agent0_max_tokens": args.agent0_max_tokens, "rehearsal": args.rehearsal,
                  "grad_accum": args.grad_accum,
                  "agent0_samples": args.agent0_samples},
    }  # fmt: skip
    print(
        f"RESULT family={args.family} traffic_n={args.traffic} corrected={corrected} "
        f"decision={report.get('verdict') or 'stopped'} "
        f"gain_pp={gain['delta_pp'] if gain else 'na'} "
        f"p={format(gain['p'], '.3g') if gain else 'na'} "
        f"replay={check_summary(checks.get('replay'))} "
        f"controls={check_summary(checks.get('controls'))} "
        f"base_acc={detail['base_acc']} champion_acc={detail['champion_acc']} "
        f"delta_pp={detail['delta_pp']} blind=+{paired.better}/-{paired.worse}"
        f"(p={detail['blind_p']:.3g}) commonest_gold_acc={detail['blind_commonest_gold_acc']} "
        f"detail={json.dumps(detail)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
