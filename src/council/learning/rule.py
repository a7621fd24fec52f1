"""The gate's promotion rule: pure functions over paired outcomes, no model, no store.

Promote only when both hold, each by a one-sided exact test at ALPHA (0.05):

* gain: on the gain set (held-out traffic; a `--target` family in benchmarks) the challenger
  wins significantly more discordant pairs than it loses (exact McNemar, i.e. a sign test on
  the discordant pairs: P(Binomial(better + worse, 1/2) >= better) < ALPHA);
* non-inferiority: on replay and on the general controls, each set on its own, the challenger
  loses (champion right, challenger wrong) fewer than MARGIN of the items. H0: the loss rate is
  at least MARGIN; p = P(Binomial(n, MARGIN) <= losses) < ALPHA. Wins elsewhere do not buy
  back losses: this is the "keep what the champion got right" test, conservative on purpose.
  Not shown non-inferior is not shown inferior: a set fails only when its losses reach the
  margin (the observed loss rate >= MARGIN); below the margin but not yet significant
  (1 loss in 80 items: p = 0.086) it is undecided, and the verdict waits for more items.

Replay and the controls are two sets, each with its own test and n: a loss on one is never
paid for by the other. The controls are one set (MT-Bench and a reasoning-gym family): MT-Bench
has only 30 questions with a reference answer, fewer than its own test would need (59 at a
5 pp margin), so the report shows each control family's numbers beside the one test.

A set too small for its test to ever reach ALPHA cannot decide: the verdict is "wait" (for
more traffic), neither promote nor reject. The smallest sizes follow from the tests: the gain
test needs at least 5 items (2**-5 < 0.05 when all 5 flip right); the non-inferiority test
needs n with (1 - MARGIN)**n < ALPHA (59 items at a 5 pp margin). A set with no items at all
is not part of the run (e.g. no replay yet) and is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

ALPHA = 0.05
MARGIN = 0.05  # 5 percentage points of accuracy
RULE = (
    "promote on a significant gain on {gain} (one-sided exact McNemar on discordant pairs, "
    "p < {alpha}) and non-inferiority of replay and controls at a {margin:g} pp margin "
    "(one-sided exact binomial on the challenger's losses, p < {alpha}); too few items: wait"
)


@dataclass
class Paired:
    """One set of paired items: how many, and how the two sides disagreed."""

    n: int
    better: int  # challenger right, champion wrong
    worse: int  # champion right, challenger wrong

    @classmethod
    def of(cls, champion: list[bool], challenger: list[bool]) -> Paired:
        pairs = list(zip(champion, challenger, strict=True))
        return cls(len(pairs), sum(b and not a for a, b in pairs),
                   sum(a and not b for a, b in pairs))  # fmt: skip

    @property
    def delta_pp(self) -> float:
        return round(100 * (self.better - self.worse) / self.n, 2) if self.n else 0.0


@dataclass
class Check:
    """One test of the rule on one set: its numbers and what it decided."""

    name: str
    test: str  # gain | non-inferiority
    n: int
    better: int
    worse: int
    delta_pp: float
    p: float
    min_n: int
    outcome: str  # pass | fail | too few | undecided | absent
    margin_pp: float | None = None

    def reason(self) -> str:
        if self.outcome == "absent":
            return f"{self.name}: no items in this run (not part of the decision)"
        counts = f"{self.delta_pp:+.1f} pp on {self.n} items (+{self.better}/-{self.worse})"
        if self.test == "gain":
            said = f"{self.name}: {counts}, McNemar p={self.p:.3g}"
            tail = {"pass": "significant gain", "fail": "not a significant gain"}
        else:
            said = (f"{self.name}: {counts}, losses {self.worse}/{self.n} vs margin "
                    f"{self.margin_pp:g} pp, p={self.p:.3g}")  # fmt: skip
            tail = {"pass": "non-inferior", "fail": "not shown non-inferior"}
        if self.outcome == "too few":
            return f"{said} — too few items to decide (the test needs at least {self.min_n})"
        if self.outcome == "undecided":
            return f"{said} — losses under the margin but not significantly: more items decide"
        return f"{said} — {tail[self.outcome]}"


@dataclass
class Decision:
    verdict: str  # promote | reject | wait
    rule: str
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.reason() for c in self.checks]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "rule": self.rule, "alpha": ALPHA,
                "checks": [asdict(c) for c in self.checks]}  # fmt: skip


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), exact."""
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)))


def mcnemar_p(better: int, worse: int) -> float:
    """One-sided exact McNemar: P(at least `better` wins of the discordant pairs by chance)."""
    n = better + worse
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(better, n + 1)) / 2**n


def noninferiority_p(worse: int, n: int, margin: float) -> float:
    """P(this few losses or fewer) were the true loss rate `margin`: small means non-inferior."""
    return binom_cdf(worse, n, margin) if n else 1.0


def min_items_gain(alpha: float = ALPHA) -> int:
    """The smallest set on which the gain test can reach alpha (every pair flips right)."""
    return math.floor(math.log2(1 / alpha)) + 1


def min_items_noninferiority(margin: float = MARGIN, alpha: float = ALPHA) -> int:
    """The smallest set on which no loss at all would show non-inferiority."""
    return math.floor(math.log(alpha) / math.log(1 - margin)) + 1


def gain_check(name: str, s: Paired, alpha: float = ALPHA) -> Check:
    p, need = mcnemar_p(s.better, s.worse), min_items_gain(alpha)
    if s.n == 0:
        outcome = "absent"
    elif s.n < need:
        outcome = "too few"
    else:
        outcome = "pass" if p < alpha and s.better > s.worse else "fail"
    return Check(name, "gain", s.n, s.better, s.worse, s.delta_pp, p, need, outcome)


def noninferiority_check(name: str, s: Paired, margin: float = MARGIN,
                         alpha: float = ALPHA) -> Check:  # fmt: skip
    p, need = noninferiority_p(s.worse, s.n, margin), min_items_noninferiority(margin, alpha)
    if s.n == 0:
        outcome = "absent"
    elif s.n < need:
        outcome = "too few"
    else:
        outcome = "pass" if p < alpha else "fail" if s.worse >= margin * s.n else "undecided"
    return Check(name, "non-inferiority", s.n, s.better, s.worse, s.delta_pp, p, need, outcome,
                 margin_pp=round(100 * margin, 2))  # fmt: skip


def decide(gain: tuple[str, Paired], keep: dict[str, Paired], margin: float = MARGIN,
           alpha: float = ALPHA) -> Decision:  # fmt: skip
    """The verdict: reject when a decided test fails, wait when a set is too small or
    undecided (or the gain set is empty), promote when every present test passes."""
    checks = [gain_check(*gain, alpha=alpha)]
    checks += [noninferiority_check(name, s, margin, alpha) for name, s in keep.items()]
    outcomes = [c.outcome for c in checks]
    if "fail" in outcomes:
        verdict = "reject"
    elif {"too few", "undecided"} & set(outcomes) or checks[0].outcome == "absent":
        verdict = "wait"
    else:
        verdict = "promote"
    rule = RULE.format(gain=gain[0], alpha=alpha, margin=100 * margin)
    return Decision(verdict, rule, checks)
