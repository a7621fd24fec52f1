"""Hot-swap latency: from a promote call until new requests are served by the new adapter.

A real server (the default council, five SmolLM2 personas) keeps answering requests from
background clients while this script promotes two LoRA adapters back and forth through
POST /api/adapters/promote/core (no canary). Generation is excluded: the figures are the
promote call itself, which returns only once this server routes new calls to the new
version; after each one a request checks that every head answered with it.

    python benchmarks/adapter_swap.py [--swaps 40] [--clients 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import ThreadServer

from council.adapters.registry import Registry
from council.config import Settings
from council.heads.weights import resolve_model_dir
from council.server import create_app
from council.storage import open_db

TOKEN = "bench"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_adapter(base: Path, root: Path, version: str, seed: int, created: float) -> None:
    """A PEFT LoRA folder (random weights: swap cost does not depend on what it learned)."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=16, lora_alpha=32, init_lora_weights=False, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"])  # fmt: skip
    folder = root / "core" / version
    get_peft_model(model, lora).save_pretrained(folder)
    meta = {"version": version, "role": "core", "base_model_name": str(base),
            "dataset_version": None, "created_at": created}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--swaps", type=int, default=40)
    ap.add_argument("--clients", type=int, default=2, help="background request loops")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="council-swap-"))
    shared = Path("/tmp/council-data/models")  # reuse a converted default model if present
    if shared.exists():
        (data / "models").symlink_to(shared)
    s = Settings(data_dir=data, admin_token=TOKEN, recall_k=0, canary_probes=0)
    base = resolve_model_dir(s.heads.specs[0].model, s.models_dir)
    versions = ["core-swap-a", "core-swap-b"]
    for i, v in enumerate(versions):
        make_adapter(base, data / "adapters", v, seed=i, created=1000.0 + i)
    Registry(open_db(data / "council.db"), data).discover()

    stop, served, failed = threading.Event(), [0], [0]

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                r = http.post("/v1/chat/completions", json={
                    "model": "council", "max_tokens": 8,
                    "messages": [{"role": "user", "content": "Name a fruit."}]})  # fmt: skip
                served[0] += r.status_code == 200
                failed[0] += r.status_code != 200

    with ThreadServer(create_app(s)) as server, httpx.Client(base_url=server.url,
                                                           timeout=120) as http:  # fmt: skip

        def promote(version: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            r = http.post("/api/adapters/promote/core", headers=AUTH,
                          json={"version": version, "canary": False})  # fmt: skip
            wall = 1000 * (time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            check = http.post("/vote", json={"prompt": "Say hi."}).json()["meta"]["votes"]
            assert {v["adapter"] for v in check} == {version}, check
            return r.json()["applied_ms"], wall

        cold = [promote(v) for v in versions]  # first use of each: attaches it to the base
        workers = [threading.Thread(target=client, args=(server.url,)) for _ in range(args.clients)]
        for w in workers:
            w.start()
        warm = [promote(versions[i % 2]) for i in range(args.swaps)]
        stop.set()
        for w in workers:
            w.join()
    applied, wall = [a for a, _ in warm], [w for _, w in warm]
    print(
        f"hot-swap · default council (5 SmolLM2 heads) · {args.swaps} promotions under "
        f"{args.clients} request loops · {served[0]} requests served, {failed[0]} failed"
    )
    print(
        f"  cold (attach + switch)   server {cold[0][0]:.0f} / {cold[1][0]:.0f} ms, "
        f"round trip {cold[0][1]:.0f} / {cold[1][1]:.0f} ms"
    )
    print(
        f"  warm server-side         p50 {statistics.median(applied):.1f} ms   "
        f"p95 {pct(applied, 0.95):.1f} ms   (target <= 50 ms)"
    )
    print(
        f"  warm round trip          p50 {statistics.median(wall):.1f} ms   "
        f"p95 {pct(wall, 0.95):.1f} ms"
    )


if __name__ == "__main__":
    main()
