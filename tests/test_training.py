"""LoRA training and the gauntlet on the tiny model: a real train → save → load → compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.config import Settings
from council.embeddings import Embedder
from council.errors import GauntletError, TrainingError
from council.learning.collector import Learner
from council.learning.datasets import freeze
from council.learning.gauntlet import (
    Item,
    Outcome,
    check_leaks,
    compare,
    mcnemar_p,
    run_gauntlet,
    wilson,
)
from council.learning.train import TrainConfig, list_adapters, optimizer_steps, train_adapter
from tests.helpers import local_specs

FAST = TrainConfig(rank=4, alpha=8, epochs=2, batch_size=4, grad_accum=1, learning_rate=5e-3)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def settings_for(tmp: Path, model: Path, **kw) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(heads=local_specs(model, 2), data_dir=tmp, memory=True, **kw)


def dataset(s: Settings, embedder: Embedder, n: int) -> tuple[Learner, str]:
    learner = Learner(s, embedder=embedder)
    for i in range(n):
        answer = f"REASONING: add.\nANSWER: {2 * i + 7}"
        learner.collect_example(f"What is {i} plus {i + 7}?", answer, 0.95, "math")
    return learner, freeze(learner.store, s.server.data_dir / "datasets")["version"]


def test_training_refuses_too_few_examples(tmp_path: Path, tiny_model_dir: Path,
                                           embedder: Embedder) -> None:  # fmt: skip
    s = settings_for(tmp_path, tiny_model_dir, min_failures_to_train=5)
    learner, version = dataset(s, embedder, 3)
    with pytest.raises(TrainingError, match=r"at least 5 \(MIN_FAILURES_TO_TRAIN\)"):
        train_adapter(s, learner.store, version)
    assert list_adapters(s) == []


def test_train_writes_a_traceable_peft_adapter(tmp_path: Path, tiny_model_dir: Path,
                                               embedder: Embedder) -> None:  # fmt: skip
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    s = settings_for(tmp_path, tiny_model_dir, rehearsal=0.0)  # rehearsal: test_rehearsal.py
    learner, version = dataset(s, embedder, 8)
    seen = []
    meta = train_adapter(s, learner.store, version, config=FAST, on_progress=seen.append)
    folder = Path(meta["path"])
    assert (folder / "adapter_model.safetensors").exists()
    assert (folder / "adapter_config.json").exists()
    on_disk = json.loads((folder / "meta.json").read_text())
    assert on_disk["dataset_version"] == version and on_disk["examples"] == 8
    assert on_disk["base_model"] == str(tiny_model_dir)
    assert on_disk["hyperparameters"]["rank"] == 4 and len(on_disk["dataset_manifest_sha256"]) == 64
    curve = [p["loss"] for p in on_disk["loss_curve"]]
    assert len(curve) == on_disk["steps"] == 4 and curve[-1] < curve[0]  # it learned something
    assert seen and seen[-1].step == 4 and seen[-1].eta_s == 0
    assert optimizer_steps(8, FAST) == 4  # counted as the trainer counts them
    assert [m["version"] for m in list_adapters(s, "core")] == [meta["version"]]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    PeftModel.from_pretrained(base, folder)  # loadable by PEFT (and so by vLLM/LoRAX)


def test_optimizer_steps_count_as_the_trainer_does() -> None:
    assert optimizer_steps(150, TrainConfig()) == 15  # the default 4×8 batch, 3 epochs
    assert optimizer_steps(75, TrainConfig(grad_accum=2)) == 30  # a real cycle's count
    assert optimizer_steps(150, TrainConfig(max_steps=3)) == 3


def test_an_interrupted_training_leaves_no_adapter(tmp_path: Path, tiny_model_dir: Path,
                                                   embedder: Embedder) -> None:  # fmt: skip
    s = settings_for(tmp_path, tiny_model_dir)
    learner, version = dataset(s, embedder, 8)

    def ctrl_c(progress):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_adapter(s, learner.store, version, config=FAST, on_progress=ctrl_c)
    assert list_adapters(s) == []
    assert not list((tmp_path / "adapters" / "core").iterdir())


def test_statistics() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(1 / 1024)
    assert mcnemar_p(5, 5) > 0.5
    lo, hi = wilson(30, 100)
    assert lo < 0.3 < hi and hi - lo == pytest.approx(0.18, abs=0.01)


def test_compare_promotes_only_a_significant_gain_without_regressions() -> None:
    # 60 controls: the controls' net test at a 5 pp margin decides from 52 items on
    items = [Item("arith", f"q{i}", "1", "target") for i in range(20)]
    items += [Item("mtbench", f"c{i}", "x", "control") for i in range(60)]
    base = Outcome([False] * 20 + [True] * 60, [10.0] * 80, [""] * 80)
    good = Outcome([True] * 12 + [False] * 8 + [True] * 60, [12.0] * 80, [""] * 80)
    report = compare(items, base, good, "arith", ("base", "v1"))
    assert report["verdict"] == "promote" and report["families"]["arith"]["delta_pp"] == 60
    assert report["quality_improvement_ratio"] is None  # base accuracy 0
    forgetful = Outcome([True] * 12 + [False] * 8 + [False] * 60, [12.0] * 80, [""] * 80)
    report = compare(items, base, forgetful, "arith", ("base", "v2"))
    assert report["verdict"] == "reject"
    assert any(r.startswith("controls: -100.0 pp") and "not shown non-inferior" in r
               for r in report["reasons"])  # fmt: skip
    tiny_gain = Outcome([True] + [False] * 19 + [True] * 60, [1.0] * 80, [""] * 80)
    assert compare(items, base, tiny_gain, "arith", ("b", "v3"))["verdict"] == "reject"


async def test_gauntlet_runs_champion_and_challenger_on_one_base(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder
) -> None:
    s = settings_for(tmp_path, tiny_model_dir)
    learner, version = dataset(s, embedder, 8)
    meta = train_adapter(s, learner.store, version, config=FAST)
    report = await run_gauntlet(s, learner.store, embedder, adapter=meta["version"], blind=6,
                                control=3)  # fmt: skip
    fams = report["families"]
    assert set(fams) == {"basic_arithmetic", "mtbench", "letter_counting"}
    assert fams["basic_arithmetic"]["n"] == 6 and fams["mtbench"]["kind"] == "control"
    assert report["verdict"] in ("promote", "reject") and Path(report["path"]).exists()
    assert report["latency_ms"]["challenger"]["p50"] > 0
    held = learner.store.query("SELECT COUNT(*) FROM holdout")[0][0]
    assert held == 6  # the target items are registered: training can never see them


def test_the_gauntlet_skips_items_seen_in_training_and_refuses_overlap(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder
) -> None:
    import asyncio

    from council.learning.gauntlet import HOLDOUT_SEED, reasoning_items

    s = settings_for(tmp_path, tiny_model_dir)
    learner = Learner(s, embedder=embedder)
    leaked = reasoning_items("basic_arithmetic", 6, HOLDOUT_SEED, "target")
    for it in leaked:
        learner.collect_example(it.question, f"ANSWER: {it.gold}", 0.99, "math")
    for i in range(3):
        learner.collect_example(f"Name {i} colours", "red, green", 0.9, "general")
    version = freeze(learner.store, tmp_path / "datasets")["version"]
    meta = train_adapter(s, learner.store, version, config=TrainConfig(max_steps=1, rank=2,
                                                                       alpha=4))  # fmt: skip
    # Items the adapter trained on are skipped, so the hold-out stays blind and full ...
    report = asyncio.run(run_gauntlet(s, learner.store, embedder, adapter=meta["version"],
                                      blind=6, control=0))  # fmt: skip
    assert report["items"]["skipped_as_trained"] == 6
    assert report["families"]["basic_arithmetic"]["n"] == 6
    # ... and the last guard still refuses any overlap that would reach scoring.
    with pytest.raises(GauntletError, match="would not be blind"):
        check_leaks(learner.store, leaked, version)


def test_a_family_scores_its_gold_whatever_the_normaliser_does_to_case() -> None:
    import reasoning_gym

    from council.learning.gauntlet import family_right

    for family in ("syllogism", "ransom_note", "isomorphic_strings", "letter_counting"):
        ds = reasoning_gym.create_dataset(family, size=1, seed=5)
        entry, gold = ds[0], str(ds[0]["answer"])
        assert family_right(ds, entry, f"Let me think.\nANSWER: {gold}.")
        assert family_right(ds, entry, f"ANSWER: {gold.lower()}")
        assert not family_right(ds, entry, "ANSWER: Maybe")
