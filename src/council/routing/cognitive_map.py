"""The cognitive map: how confident the council may be, per domain (task type), from
three kinds of evidence, written to data_dir/cognitive_map.json and read by the selector.

Evidence, each as (successes, trials) per domain:
- live: exchanges of the last `LIVE_DAYS` days with a success label (verifier, agreement or
  user feedback), grouped by their stored task_type;
- gauntlet: the newest data_dir/gauntlet/*.json report (learning/gauntlet.py writes them).
  Read: `families.<family>.n`, `families.<family>.champion.accuracy`,
  `families.<family>.challenger.accuracy` and `verdict` ("promote" means the challenger
  is what now answers). Families map to domains by GAUNTLET_DOMAINS; others are skipped;
- training: data_dir/datasets/training_metadata.jsonl (learning/arbiter.py): a line whose
  `provenance.oracle.agrees` is true/false is a success/failure for the domain its
  `question` classifies as; every line counts as a training example of that domain.

confidence = (sum_s w_s * successes_s + PRIOR * STRENGTH) / (sum_s w_s * trials_s + STRENGTH):
a Beta prior worth STRENGTH trials at PRIOR keeps two lucky answers from reading as 100 %,
and the gauntlet (blind, gold answers) weighs double.

Per domain, `heads` scores each head on the live exchanges (ledger.head_votes, judge_vote): the
selector asks the domain's best head first when it stops early.

`outcomes` counts, per domain, each head's answers that an outcome judged (judge_outcome: the
verifier, a user's thumbs up/down, or a correction: the right answer a user gave with a thumbs
down, or a harvest's accepted rewrite; agreement alone is no outcome,
or the weights would reward conformity). From them, each head's weight (learned_weight):

    weight = 10 * (right + K * quality/10) / (n + K)

the Beta-binomial posterior mean of the head's accuracy with the catalogue's quality as the
prior worth K = WEIGHT_PRIOR_TRIALS outcomes, on the quality's 0-10 scale: with no outcomes
the weight is the quality; after many it is ten times the head's accuracy. `weighted` counts
it and a plain vote breaks ties by it (strategies/base.py Ballot.trust).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.ballot.normalize import extract_answer
from council.config import HeadSpec
from council.routing import ledger
from council.routing.tasks import TASK_TYPES, classify_task
from council.verify import verify_answer

log = logging.getLogger(__name__)
FILE = "cognitive_map.json"
LIVE_DAYS = 30
PRIOR, STRENGTH = 0.5, 2.0
WEIGHTS = {"live": 1.0, "gauntlet": 2.0, "training": 1.0}
# Per head and domain, every stored answer is judged: by the verifier when one applies to the
# question (checkable arithmetic: exact), else by the exchange's label: a head was right when
# its answer won a ballot that succeeded, wrong when it won one that failed or lost one that
# succeeded; losing a failed ballot says nothing about it.
MIN_HEAD_SAMPLES = 20  # fewer judged answers than this: the head's score is not used
WEIGHT_PRIOR_TRIALS = 10.0  # how many outcomes the catalogue's quality is worth
GAUNTLET_DOMAINS = {
    "basic_arithmetic": "math",
    "chain_sum": "math",
    "products": "math",
    "gsm_symbolic": "math",
    "letter_counting": "reasoning",
    "mtbench": "general",
}


@dataclass
class Evidence:
    successes: float = 0.0
    trials: float = 0.0

    def add(self, successes: float, trials: float) -> None:
        self.successes += successes
        self.trials += trials

    def to_dict(self) -> dict[str, Any]:
        rate = self.successes / self.trials if self.trials else None
        return {"rate": None if rate is None else round(rate, 4), "n": round(self.trials, 2)}


def build(data_dir: Path, store: Any | None, now: float | None = None) -> dict[str, Any]:
    """The map as a dict (see the module docstring for what it reads)."""
    now = now or time.time()
    evidence: dict[str, dict[str, Evidence]] = {}

    def ev(domain: str, source: str) -> Evidence:
        return evidence.setdefault(domain, {}).setdefault(source, Evidence())

    heads: dict[str, dict[str, Evidence]] = {}
    outcomes: dict[str, dict[str, Evidence]] = {}
    if store is not None:
        for task, prompt, success, source, head, answer, won, corrected in ledger.head_outcomes(
            store, now - LIVE_DAYS * 86400
        ):
            right = judge_outcome(prompt, answer, success, source, bool(won), corrected)
            if right is not None:
                e = outcomes.setdefault(task or "general", {}).setdefault(head, Evidence())
                e.add(float(right), 1.0)
        for task, prompt, success, head, answer, won in ledger.head_votes(
            store, now - LIVE_DAYS * 86400
        ):
            right = judge_vote(prompt, answer, success, bool(won))
            if right is not None:
                e = heads.setdefault(task or "general", {}).setdefault(head, Evidence())
                e.add(float(right), 1.0)
        for task, n, ok in ledger.labelled_by_task(store, now - LIVE_DAYS * 86400):
            ev(task or "general", "live").add(float(ok or 0), float(n))
    report = _latest_gauntlet(data_dir / "gauntlet")
    if report is not None:
        data = report[1]
        promoted = data.get("verdict") == "promote"
        for family, r in (data.get("families") or {}).items():
            domain = GAUNTLET_DOMAINS.get(family)
            side = r.get("challenger" if promoted else "champion") or {}
            if domain is None or side.get("accuracy") is None or not r.get("n"):
                continue
            ev(domain, "gauntlet").add(float(side["accuracy"]) * r["n"], float(r["n"]))
    examples: dict[str, int] = {}
    for line in _lines(data_dir / "datasets" / "training_metadata.jsonl"):
        domain = classify_task(str(line.get("question", "")))
        examples[domain] = examples.get(domain, 0) + 1
        agrees = ((line.get("provenance") or {}).get("oracle") or {}).get("agrees")
        if isinstance(agrees, bool):
            ev(domain, "training").add(float(agrees), 1.0)
    domains = {}
    for domain in sorted(set(TASK_TYPES) | set(evidence) | set(examples)):
        sources = evidence.get(domain, {})
        k = sum(WEIGHTS[s] * e.successes for s, e in sources.items())
        n = sum(WEIGHTS[s] * e.trials for s, e in sources.items())
        domains[domain] = {
            "confidence": _smoothed(k, n),
            "samples": round(sum(e.trials for e in sources.values()), 2),
            "training_examples": examples.get(domain, 0),
            "sources": {s: e.to_dict() for s, e in sources.items()},
            "heads": {
                h: {"accuracy": _smoothed(e.successes, e.trials), "n": round(e.trials, 2)}
                for h, e in sorted(heads.get(domain, {}).items())
            },
        }
    return {
        "generated_at": now,
        "gauntlet_report": str(report[0]) if report else None,
        "method": f"Beta({PRIOR:g}x{STRENGTH:g}) over live, gauntlet (x2) and training evidence",
        "domains": domains,
        "outcomes": {  # per domain and head: what its weight is learned from
            domain: {h: {"right": e.successes, "n": e.trials} for h, e in sorted(heads_.items())}
            for domain, heads_ in sorted(outcomes.items())
        },
    }


def judge_vote(prompt: str, answer: str, success: int | None, won: bool) -> bool | None:
    """Whether one head's stored answer was right (None: no evidence either way)."""
    checked = verify_answer(prompt, answer)
    if checked is not None:
        return checked
    if success is None:
        return None
    if won:
        return bool(success)
    return False if success else None


def judge_outcome(
    prompt: str,
    answer: str,
    success: int | None,
    source: str | None,
    won: bool,
    corrected: str | None,
) -> bool | None:
    """Whether an outcome says one head's stored answer was right (None: no outcome)."""
    checked = verify_answer(prompt, answer)
    if checked is not None:  # checkable: the verifier is exact
        return checked
    if corrected is not None:  # a user or a harvest corrected the exchange: compare with it
        gold = extract_answer(corrected)
        return None if gold.key is None else extract_answer(answer).key == gold.key
    if source != "feedback" or success is None:
        return None
    if won:  # a thumbs up or down was about the winning answer
        return bool(success)
    return False if success else None  # a different answer than the one the user liked


def learned_weight(quality: float, right: float, n: float, k: float = WEIGHT_PRIOR_TRIALS) -> float:
    """A head's weight: its accuracy's posterior mean under a Beta prior at quality/10 worth
    k outcomes, on the 0-10 scale of quality (see the module docstring)."""
    return round(10.0 * (right + k * quality / 10.0) / (n + k), 4)


def head_weights(outcomes: dict[str, Any], specs: Iterable[HeadSpec]) -> dict[str, float]:
    """Each head's learned weight from one domain's `outcomes` (a head with none: its quality)."""
    weights = {}
    for s in specs:
        o = outcomes.get(s.id) or {}
        weights[s.id] = learned_weight(s.quality, float(o.get("right", 0)), float(o.get("n", 0)))
    return weights


def _smoothed(successes: float, trials: float) -> float:
    return round((successes + PRIOR * STRENGTH) / (trials + STRENGTH), 4)


def write(data_dir: Path, store: Any | None) -> dict[str, Any]:
    """Build the map and write it atomically; call after each learning cycle (and `council
    map`)."""
    data = build(data_dir, store)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / (FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, data_dir / FILE)
    return data


class CognitiveMap:
    """The selector's view of the map file, re-read when it changes."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / FILE
        self._mtime: float | None = None
        self._domains: dict[str, Any] = {}
        self._outcomes: dict[str, Any] = {}

    def confidence(self, domain: str) -> float | None:
        """The domain's confidence, or None when the map has no evidence for it."""
        self._reload()
        d = self._domains.get(domain)
        if not d or not d.get("samples"):
            return None
        return float(d["confidence"])

    def head_scores(self, domain: str) -> dict[str, float]:
        """Each head's live accuracy in the domain, for heads judged often enough."""
        self._reload()
        heads = (self._domains.get(domain) or {}).get("heads") or {}
        return {
            h: float(s["accuracy"])
            for h, s in heads.items()
            if s.get("n", 0) >= MIN_HEAD_SAMPLES and s.get("accuracy") is not None
        }

    def head_weights(self, domain: str, specs: Iterable[HeadSpec]) -> dict[str, float]:
        """Each head's weight in the domain, learned from its outcomes (learned_weight)."""
        self._reload()
        return head_weights(self._outcomes.get(domain) or {}, specs)

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._domains, self._outcomes, self._mtime = {}, {}, None
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            data = json.loads(self.path.read_text())
            self._domains = data.get("domains") or {}
            self._outcomes = data.get("outcomes") or {}
        except ValueError as exc:  # a broken map routes like no map, loudly
            log.error("ignoring %s: %s (run `council map` to rebuild it)", self.path, exc)
            self._domains, self._outcomes = {}, {}


def _latest_gauntlet(root: Path) -> tuple[Path, dict[str, Any]] | None:
    for path in sorted(root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            return path, json.loads(path.read_text())
        except ValueError as exc:
            log.warning("skipping unreadable gauntlet report %s: %s", path, exc)
    return None


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for raw in text.splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            log.warning("skipping a malformed line in %s: %r", path, raw[:80])
    return out
