"""The gate's promotion rule: pure functions over paired outcomes, no model, no store.

Promote only when both hold, each by a one-sided exact test at ALPHA (0.05):

* gain: on the gain set (held-out traffic; a `--target` family in benchmarks) the challenger
  wins significantly more discordant pairs than it loses (exact McNemar, i.e. a sign test on
  the discordant pairs: P(Binomial(better + worse, 1/2) >= better) < ALPHA);
* non-inferiority of replay: the challenger loses (champion right, challenger wrong) fewer
  than MARGIN of the replayed items. H0: the loss rate is at least MARGIN;
  p = P(Binomial(n, MARGIN) <= losses) < ALPHA. Wins elsewhere do not buy back losses: this is
  the "keep what the champion got right" test, conservative on purpose. Not shown
  non-inferior is not shown inferior: replay fails only when its losses reach the margin (the
  observed loss rate >= MARGIN); below the margin but not yet significant (1 loss in 80
  items: p = 0.086) it is undecided, and the verdict waits for more items.
* non-inferiority of the general controls: the challenger's accuracy is not lower than the
  champion's by MARGIN or more. H0: p_challenger - p_champion <= -MARGIN, by Tango's score
  test for paired proportions (Tango 1998, the standard paired non-inferiority test), one-sided
  at ALPHA. The controls check forgetting with proxy scores (MT-Bench by embedding similarity
  to a reference), on which any change of weights flips borderline items both ways; the loss
  test would pass only a challenger that flips almost none (at most 2 of 60 at a 10 pp
  margin), which no trained adapter did. Not shown non-inferior fails: the controls do not
  grow with traffic, so waiting would not decide them (more --control items do).

Replay and the controls are two sets, each with its own test and n: a loss on one is never
paid for by the other. The controls are one set (MT-Bench and a reasoning-gym family): MT-Bench
has only 30 questions with a reference answer, fewer than its own test would need (52 at a
5 pp margin), so the report shows each control family's numbers beside the one test.

A set too small for its test to ever reach ALPHA cannot decide: the verdict is "wait" (for
more traffic), neither promote nor reject. The smallest sizes follow from the tests: the gain
test needs at least 5 items (2**-5 < 0.05 when all 5 flip right); replay's loss test needs n
with (1 - MARGIN)**n < ALPHA (59 items at a 5 pp margin, 29 at 10 pp); the controls' test
needs n > z**2 (1 - MARGIN) / MARGIN, z the one-sided normal quantile (52 at 5 pp, 25 at
10). A set with no items at all is not part of the run (e.g. no replay yet) and is reported
as such.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

ALPHA = 0.05
MARGIN = 0.05  # 5 percentage points of accuracy
RULE = (
    "promote on a significant gain on {gain} (one-sided exact McNemar on discordant pairs, "
    "p < {alpha}) and non-inferiority at a {margin:g} pp margin of replay (one-sided exact "
    "binomial on the challenger's losses) and of the controls (Tango's score test on the paired "
    "accuracy difference), each p < {alpha}; too few items: wait"
)
NET = ("controls",)  # sets judged by their accuracy difference; the others by losses


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
    test: str  # gain | non-inferiority (losses) | net non-inferiority (accuracy difference)
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
        elif self.test == "net non-inferiority":
            said = (f"{self.name}: {counts}, accuracy difference vs margin -{self.margin_pp:g} pp, "
                    f"Tango p={self.p:.3g}")  # fmt: skip
            tail = {"pass": "non-inferior", "fail": "not shown non-inferior"}
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


def tango_p(better: int, worse: int, n: int, margin: float) -> float:
    """Tango's score test, one-sided: p for H0 "the challenger's accuracy is lower by `margin`
    or more" on n paired items (better: only the challenger right; worse: only the champion)."""
    if n == 0:
        return 1.0
    rest, d = n - better - worse, margin
    # the likelihood's maximum for P(worse) under H0 (P(better) = P(worse) - margin)
    b = better * (1 + d) + worse * (1 + 3 * d) + 2 * rest * d
    root = math.sqrt(max(0.0, b * b - 8 * n * worse * d * (1 + d)))
    p_worse = (b + root) / (4 * n)
    var = (2 * p_worse - d - d * d) / n  # (P(better) + P(worse) - margin**2) / n
    z = ((better - worse) / n + d) / math.sqrt(var) if var > 0 else math.inf
    return 0.5 * math.erfc(z / math.sqrt(2))


def min_items_gain(alpha: float = ALPHA) -> int:
    """The smallest set on which the gain test can reach alpha (every pair flips right)."""
    return math.floor(math.log2(1 / alpha)) + 1


def min_items_noninferiority(margin: float = MARGIN, alpha: float = ALPHA) -> int:
    """The smallest set on which no loss at all would show non-inferiority."""
    return math.floor(math.log(alpha) / math.log(1 - margin)) + 1


def min_items_net(margin: float = MARGIN, alpha: float = ALPHA) -> int:
    """The smallest set on which no flip at all would show net non-inferiority."""
    z = statistics.NormalDist().inv_cdf(1 - alpha)
    return math.floor(z * z * (1 - margin) / margin) + 1


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


def net_check(name: str, s: Paired, margin: float = MARGIN, alpha: float = ALPHA) -> Check:
    p, need = tango_p(s.better, s.worse, s.n, margin), min_items_net(margin, alpha)
    outcome = ("absent" if s.n == 0 else "too few" if s.n < need
               else "pass" if p < alpha else "fail")  # fmt: skip
    return Check(name, "net non-inferiority", s.n, s.better, s.worse, s.delta_pp, p, need,
                 outcome, margin_pp=round(100 * margin, 2))  # fmt: skip


def decide(gain: tuple[str, Paired], keep: dict[str, Paired], margin: float = MARGIN,
           alpha: float = ALPHA) -> Decision:  # fmt: skip
    """The verdict: reject when a decided test fails, wait when a set is too small or
    undecided (or the gain set is empty), promote when every present test passes. Sets
    named in NET are judged by their accuracy difference, the others by their losses."""
    checks = [gain_check(*gain, alpha=alpha)]
    checks += [net_check(name, s, margin, alpha) if name in NET
               else noninferiority_check(name, s, margin, alpha)
               for name, s in keep.items()]  # fmt: skip
    outcomes = [c.outcome for c in checks]
    if "fail" in outcomes:
        verdict = "reject"
    elif {"too few", "undecided"} & set(outcomes) or checks[0].outcome == "absent":
        verdict = "wait"
    else:
        verdict = "promote"
    rule = RULE.format(gain=gain[0], alpha=alpha, margin=100 * margin)
    return Decision(verdict, rule, checks)
