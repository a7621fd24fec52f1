"""Would int8 or bf16 weights make the local engine faster without changing its answers?

Issue 16's last lever: the engine is compute-bound at council c=8 (98 % busy, two thirds of
it fp32 GEMM), so only less arithmetic per token could reach 2x the old engine. This loads
the default model four ways and measures, in one process, alternating:
1. speed: greedy generation of --rows program prompts x 24 tokens (the engine's packed fp32
   layers against torch's dynamic int8: every Linear per-tensor, or the decoder per-channel
   with the lm_head left fp32; against the whole model in bf16; and against the engine's
   bf16 packed layers with fp32 activations, `weight_dtype = "bfloat16"`);
2. answers: the program head's expressions for --items fixed-seed letter-counting questions,
   how many are identical to fp32's, and how many exec_safe turns into the right count;
3. adapters: two LoRA adapters in one mixed batch (PEFT `adapter_names`) with their base
   layers swapped for int8 ones: whether the next token and the adapters' difference hold.

    python benchmarks/int8_probe.py [--items 80] [--rows 40] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import convert_default_model

from council.heads.packing import pack_linears
from council.heads.program import answer_of, asks_for, computes, expression_of, program_messages
from council.learning.exec_safe import exec_safe

LINE_TOKENS = 40  # one expression ends at its newline, well before this


def quantised(model: Any, per_channel: bool) -> Any:
    """A copy with int8 dynamic Linear layers: all of them, or the decoder's per channel."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    out = copy.deepcopy(model)
    if per_channel:
        spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
        out.model = quantize_dynamic(out.model, spec, dtype=torch.qint8)  # lm_head stays fp32
        return out.eval()
    return quantize_dynamic(out, {torch.nn.Linear}, dtype=torch.qint8).eval()


@torch.inference_mode()
def generate(model: Any, tok: Any, prompts: list[str], n: int) -> list[str]:
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    start = enc.input_ids.shape[1]
    return [tok.decode(o[start:], skip_special_tokens=True) for o in out]


def right(items: list[dict[str, Any]], outs: list[str]) -> int:
    """How many expressions exec_safe turns into the gold count (as the program head does)."""
    n = 0
    for item, text in zip(items, outs, strict=True):
        expr = expression_of(text)
        if not computes(expr):
            continue
        r = exec_safe(expr, 15)
        if r.ok and answer_of(r.value, asks_for(item["question"])) == str(item["answer"]):
            n += 1
    return n


def adapters_hold(model_dir: Path, tok: Any, prompts: list[str]) -> str:
    """Two random LoRA adapters and the base in one batch, fp32 base layers, then int8 ones."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import Linear as LoraLinear
    from torch.ao.quantization import quantize_dynamic
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False)  # fmt: skip
    pm = get_peft_model(base, cfg, adapter_name="a")
    pm.add_adapter("b", cfg)
    pm.eval()
    enc = tok(prompts[:4], return_tensors="pt", padding=True)
    names = ["a", "b", "__base__", "a"]
    with torch.inference_mode():
        ref = pm(**enc, adapter_names=names).logits[:, -1]
        swapped = 0
        for mod in list(pm.modules()):
            if isinstance(mod, LoraLinear):
                one = torch.nn.Sequential(mod.base_layer)
                mod.base_layer = quantize_dynamic(one, {torch.nn.Linear}, dtype=torch.qint8)[0]
                swapped += 1
        got = pm(**enc, adapter_names=names).logits[:, -1]
    same = (got.argmax(-1) == ref.argmax(-1)).tolist()
    apart, apart_fp32 = (float((x[0] - x[1]).abs().max()) for x in (got, ref))
    return (
        f"{swapped} LoRA base layers int8; next token as with fp32 bases: {same}; "
        f"max |logit change| {float((got - ref).abs().max()):.2f}; adapter a vs b differ by "
        f"{apart:.2f} (fp32 {apart_fp32:.2f})"
    )


def main() -> None:
    import reasoning_gym
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=80, help="letter-counting questions")
    ap.add_argument("--rows", type=int, default=40, help="rows in the timed batch")
    ap.add_argument("--reps", type=int, default=2, help="timed runs per variant and round")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where the default model is converted once (default: a temp dir)",
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    model_dir = convert_default_model(args.models_dir or Path(tempfile.mkdtemp()))
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    fp = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    variants = {
        "int8, every Linear": quantised(fp, per_channel=False),
        "int8 per channel, fp32 lm_head": quantised(fp, per_channel=True),
        # oneDNN runs bf16 on AMX / AVX512-BF16 where the CPU has them (lscpu: amx_bf16)
        "bf16 weights and activations": copy.deepcopy(fp).to(torch.bfloat16).eval(),
        "bf16 packed, fp32 activations": copy.deepcopy(fp),  # weight_dtype = "bfloat16"
    }
    pack_linears(variants["bf16 packed, fp32 activations"], torch.bfloat16)
    pack_linears(fp)  # as the engine serves it
    models = {"fp32 packed (the engine)": fp, **variants}
    items = list(reasoning_gym.create_dataset("letter_counting", size=args.items, seed=args.seed,
                                              min_words=3, max_words=6))  # fmt: skip
    prompts: list[str] = []
    for item in items:
        msgs = [{"role": m.role, "content": m.content} for m in program_messages(item["question"])]
        prompts.append(
            str(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        )
    batch = (prompts * (args.rows // len(prompts) + 1))[: args.rows]
    for m in models.values():
        generate(m, tok, batch[:4], 2)  # warm
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(2):  # two rounds, alternating, so drift hits every variant alike
        for name, m in models.items():
            for _ in range(args.reps):
                t = time.perf_counter()
                generate(m, tok, batch, 24)
                times[name].append(time.perf_counter() - t)
    base_s = statistics.median(times["fp32 packed (the engine)"])
    print(f"speed: {args.rows} rows x 24 greedy tokens (program prompts), median of "
          f"{2 * args.reps}:")  # fmt: skip
    for name, ts in times.items():
        s = statistics.median(ts)
        print(f"  {name:34s} {s:6.2f} s   {base_s / s:4.2f}x fp32")
    outs: dict[str, list[str]] = {name: [] for name in models}
    for k in range(0, len(prompts), 20):
        for name, m in models.items():
            outs[name] += generate(m, tok, prompts[k : k + 20], LINE_TOKENS)
    ref = outs["fp32 packed (the engine)"]
    print(f"answers: {len(items)} letter-counting questions (seed {args.seed}), program prompt:")
    for name, o in outs.items():
        same = sum(expression_of(a) == expression_of(b) for a, b in zip(ref, o, strict=True))
        print(f"  {name:34s} right {right(items, o):3d}/{len(items)}   expression as fp32's "
              f"{same:3d}/{len(items)}")  # fmt: skip
    print("adapters:", adapters_hold(model_dir, tok, prompts))


if __name__ == "__main__":
    main()
