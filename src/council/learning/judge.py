"""The gauntlet's blind pairwise judge, for held-out questions nothing else can check.

A configured head (the judge_head setting; default: the council's best local head, or none,
and then these questions are skipped and counted) sees the champion's and the challenger's
answers unlabelled, in both orders. A side wins an item when one order prefers it and the
other does not prefer the other side; disagreeing orders (position bias) and ties are ties,
and counted. A win becomes a discordant pair for the gate's paired test (learning/rule.py).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from council.ballot.rank import parse_best, render_candidates
from council.catalogue import HeadSpec
from council.errors import GauntletError
from council.prompts import load_prompt
from council.types import GenParams, Message

CHAMPION, CHALLENGER, TIE = "champion", "challenger", "tie"
_TIE = re.compile(r"\bTIE\b", re.I)


def judge_spec(settings: Any) -> HeadSpec | None:
    """The judge_head setting's head, else the best local head, else None (skip)."""
    wanted = settings.learning.judge_head
    heads = list(settings.heads.specs)
    if wanted:
        for spec in heads:
            if spec.id == wanted:
                return spec
        known = ", ".join(h.id for h in heads) or "none configured"
        raise GauntletError(f"judge_head {wanted!r} is not a configured head (known: {known}); "
                            "set COUNCIL_JUDGE_HEAD to one of them or unset it.")  # fmt: skip
    local = [h for h in heads if h.kind == "local" and h.enabled]
    return max(local, key=lambda h: h.quality) if local else None


def read_pick(text: str) -> int | None:
    """0 (first shown), 1 (second shown), or None for a tie or an unreadable reply."""
    if _TIE.search(text) and not re.search(r"BEST\s*:\s*[AB]\b", text, re.I):
        return None
    return parse_best(text, 2)


async def ask_once(head: Any, question: str, first: str, second: str) -> int | None:
    tpl = load_prompt("pairwise")
    prompt = tpl["user"].format(question=question, candidates=render_candidates([first, second]))
    [c] = await head.complete([Message("system", tpl["system"]), Message("user", prompt)],
                              params=GenParams(temperature=0.0, max_tokens=16))  # fmt: skip
    return read_pick(c.text) if c.ok else None


async def judge_pair(head: Any, question: str, champion: str, challenger: str) -> str:
    """champion | challenger | tie, from both orders."""
    straight = await ask_once(head, question, champion, challenger)  # A champion, B challenger
    swapped = await ask_once(head, question, challenger, champion)  # A challenger, B champion
    first = TIE if straight is None else CHAMPION if straight == 0 else CHALLENGER
    second = TIE if swapped is None else CHALLENGER if swapped == 0 else CHAMPION
    picked = {first, second} - {TIE}
    return picked.pop() if len(picked) == 1 else TIE


@dataclass
class Judged:
    """The judge's verdicts on a run's unscorable questions, as paired outcomes."""

    judge: str
    verdicts: list[str] = field(default_factory=list)

    def as_pairs(self) -> list[tuple[bool, bool]]:
        """(champion right, challenger right): a win is a discordant pair, a tie concordant."""
        return [(v == CHAMPION, v == CHALLENGER) for v in self.verdicts]

    def counts(self) -> dict[str, Any]:
        c = Counter(self.verdicts)
        return {"judge": self.judge, "n": len(self.verdicts), CHALLENGER: c[CHALLENGER],
                CHAMPION: c[CHAMPION], "ties": c[TIE]}  # fmt: skip


async def judge_items(head: Any, judge_id: str, questions: list[str], champion: list[str],
                      challenger: list[str]) -> Judged:  # fmt: skip
    out = Judged(judge_id)
    for q, a, b in zip(questions, champion, challenger, strict=True):
        out.verdicts.append(await judge_pair(head, q, a, b))
    return out
