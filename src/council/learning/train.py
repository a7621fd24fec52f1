"""LoRA training on a frozen dataset: PEFT + TRL's SFTTrainer, loss on the answer only.

The prompt side is rendered by the same chat template the local heads serve with, each example
under the persona of one of the role's heads (seeded), so training and serving see the same
text. On CUDA: 4-bit QLoRA (bitsandbytes) with paged_adamw_8bit, bf16 when supported, and
Unsloth's FastLanguageModel when it is importable; on CPU the plain fp32 path. The adapter is
written into a hidden folder and renamed into place only when training finished: a crash or
Ctrl-C leaves no half adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from council.adapters.registry import Registry, finished_adapters
from council.config import Settings
from council.errors import TrainingError
from council.heads.completion import render
from council.heads.weights import resolve_model_dir
from council.learning.datasets import load_dataset
from council.loading import LOADING
from council.memory.store import Store
from council.types import Message

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults from the seeds: r16/α32, 4×8 batch, 3 epochs, cosine)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = TARGETS
    batch_size: int = 4
    # More steps are not simply better here: a letter_counting cycle at 4×2 (75 examples,
    # 30 steps at 2e-4) gained +11.8 pp on held-out traffic (p=0.19) but lost MT-Bench
    # -53.3 pp and 21/71 replay items; an earlier one at 4×8 (6 steps) gained +0 pp. The gate
    # rejected both. Training on corrections alone forgets; optimizer_steps gives the count.
    grad_accum: int = 8
    epochs: float = 3.0
    # Measured on the default model (89 harvested examples, 3 epochs, 200 blind items):
    # 1e-3 gained +13.0 pp on the target but forgot (letter counting -16.7, MT-Bench -26.7);
    # 2e-4 gained +11.5 pp with the control set flat (32/60 before and after).
    learning_rate: float = 2e-4
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    max_length: int = 512
    seed: int = 0
    max_steps: int = -1  # > 0 caps the run (smoke tests)


def optimizer_steps(examples: int, cfg: TrainConfig) -> int:
    """The optimiser steps a run on `examples` takes (what the trainer will count)."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    per_epoch = max(1, math.ceil(math.ceil(examples / cfg.batch_size) / cfg.grad_accum))
    return max(1, math.ceil(per_epoch * cfg.epochs))


@dataclass
class Progress:
    """What the terminal shows while training (steps, loss, ETA)."""

    step: int = 0
    total: int = 0
    loss: float | None = None
    eta_s: float | None = None
    curve: list[dict[str, float]] = field(default_factory=list)


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def adapters_root(settings: Settings) -> Path:
    return settings.server.data_dir / "adapters"


def role_heads(settings: Settings, role: str) -> list[Any]:
    heads = [h for h in settings.heads.specs if h.kind == "local" and h.role == role]
    if not heads:
        raise TrainingError(
            f'No local head has role {role!r}; set `role = "{role}"` on a local head in '
            "council.toml, or pick a role that exists with --role."
        )
    return heads


def to_rows(
    examples: list[dict[str, Any]], personas: list[str | None], seed: int,
    template: str | None = None,
) -> list[dict]:  # fmt: skip
    """Conversational prompt/completion rows, each under one of the role's personas (its own
    "persona" when it names one); with a completion-style `template` (a base model's heads),
    text rows in the shape it serves."""
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        prompt = [m for m in ex["prompt"] if m["role"] != "system"]
        persona = ex["persona"] if "persona" in ex else rng.choice(personas)
        if persona:
            prompt = [{"role": "system", "content": persona}, *prompt]
        if template is None:
            rows.append({"prompt": prompt, "completion": ex["completion"]})
            continue
        text = render(template, [Message(m["role"], m["content"]) for m in prompt])
        answer = " ".join(m["content"].strip() for m in ex["completion"])
        rows.append({"prompt": text, "completion": f" {answer}\n"})
    return rows


def train_adapter(
    settings: Settings,
    store: Store,
    dataset_version: str,
    *,
    role: str = "core",
    config: TrainConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter for `role` on a frozen dataset; returns its meta.json."""
    cfg = config or TrainConfig()
    manifest, examples = load_dataset(store, dataset_version)
    if len(examples) < settings.learning.min_failures_to_train:
        raise TrainingError(
            f"Dataset {dataset_version} has {len(examples)} examples; training needs at least "
            f"{settings.learning.min_failures_to_train} (MIN_FAILURES_TO_TRAIN). Harvest more "
            "failures or lower MIN_FAILURES_TO_TRAIN."
        )
    heads = role_heads(settings, role)
    base = resolve_model_dir(heads[0].model, settings.models_dir)
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    version = f"{role}-{stamp}-{manifest['train_sha256'][:8]}"
    root = adapters_root(settings) / role
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".train-{version}-", dir=root))
    try:
        personas = sorted({h.system_prompt for h in heads}, key=str)
        rows = to_rows(examples, personas, cfg.seed, heads[0].prompt_template)
        rehearsed, counts = _rehearsal(settings, store, base, examples, personas,
                                       heads[0].prompt_template, cfg.seed)  # fmt: skip
        rows += to_rows(rehearsed, personas, cfg.seed, heads[0].prompt_template)
        progress, device = _fit(base, rows, tmp, cfg, settings, on_progress)
        meta = {
            "version": version,
            "role": role,
            "base_model": str(base),
            "base_model_name": heads[0].model,
            "dataset_version": dataset_version,
            "dataset_manifest_sha256": hashlib.sha256(
                json.dumps(manifest, sort_keys=True).encode()
            ).hexdigest(),
            "dataset_train_sha256": manifest["train_sha256"],
            "examples": len(rows),
            "rehearsal": counts,  # of those, rehearsed (learning/rehearsal.py)
            "hyperparameters": asdict(cfg),
            "device": device,
            "loss_curve": progress.curve,
            "final_loss": progress.loss,
            "steps": progress.step,
            "duration_s": round(time.time() - started, 2),
            "git_revision": git_revision(),
            "created_at": started,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        final = root / version
        tmp.rename(final)  # the adapter exists only once it is whole
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta["path"] = str(final)
    registry = Registry(store, settings.server.data_dir)
    registry.register(meta)  # (a crash before this line: Registry.discover() finds it)
    registry.set_challenger(role, version)
    return meta


def _rehearsal(
    settings: Settings, store: Store, base: Path, examples: list[dict[str, Any]],
    personas: list[str | None], template: str | None, seed: int,
) -> tuple[list[dict[str, Any]], dict[str, int]]:  # fmt: skip
    """`learning.rehearsal` rehearsal examples per training example (learning/rehearsal.py)."""
    from council.learning.ledger import content_hash
    from council.learning.rehearsal import rehearsal_examples

    want = round(len(examples) * settings.learning.rehearsal)
    skip = {content_hash(ex["instruction"]) for ex in examples}
    return rehearsal_examples(store, base, want, skip, personas, template, seed)


def _fit(
    base: Path, rows: list[dict], out: Path, cfg: TrainConfig, settings: Settings,
    on_progress: Callable[[Progress], None] | None,
) -> tuple[Progress, str]:  # fmt: skip
    """The heavy imports live here so that the CLI and server start fast."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    torch.set_num_threads(settings.heads.threads)
    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    with LOADING:  # one load at a time in a process (council/loading.py)
        model, device = _load_for_training(base, cuda)
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")  # fmt: skip
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = SFTConfig(
        output_dir=str(out / "_trainer"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the steps
        max_length=cfg.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        # On CPU TRL's defaults (bf16, gradient checkpointing) are 4-40x slower (DESIGN.md).
        use_cpu=not cuda,
        bf16=bf16,
        gradient_checkpointing=cuda,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        completion_only_loss=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    progress = Progress()
    started = time.time()

    class Report(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            if not logs or "loss" not in logs:
                return
            progress.step, progress.total = state.global_step, state.max_steps
            progress.loss = float(logs["loss"])
            per_step = (time.time() - started) / max(1, state.global_step)
            progress.eta_s = per_step * max(0, state.max_steps - state.global_step)
            progress.curve.append({"step": state.global_step, "loss": progress.loss})
            if on_progress is not None:
                on_progress(progress)

    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok, peft_config=lora, callbacks=[Report()])  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # our Report callback prints progress instead
    trainer.train()
    model_out: Any = trainer.model
    model_out.save_pretrained(out)
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    return progress, device


def _load_for_training(base: Path, cuda: bool) -> tuple[Any, str]:
    import torch
    from transformers import AutoModelForCausalLM

    if not cuda:
        return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), "cpu"
    try:  # Unsloth is an optional extra: faster kernels when present
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(str(base), load_in_4bit=True)
        return model, "cuda-unsloth-4bit"
    except ImportError:
        pass
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(base, quantization_config=quant,
                                                 device_map="auto")  # fmt: skip
    return model, "cuda-qlora-4bit"


def list_adapters(settings: Settings, role: str | None = None) -> list[dict[str, Any]]:
    """Every finished adapter (a folder with meta.json), oldest first."""
    found = finished_adapters(adapters_root(settings))
    return [a for a in found if role is None or a.get("role") == role]
