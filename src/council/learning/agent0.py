"""Agent-0: rewrites a failed exchange into a better answer (REASONING: ... ANSWER: ...).

Agent-0 is the council itself (the ballot votes on rewrites) or one designated head sampled
several times. Checkable questions go through the exec_safe tool first, so an arithmetic
rewrite carries a verified answer even when the model cannot compute it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from council.ballot.normalize import canonical_number, extract_answer
from council.council import Council
from council.errors import ConfigError
from council.learning.exec_safe import exec_safe
from council.prompts import load_prompt
from council.types import GenParams, Message
from council.verify import UnsafeExpression, find_expression, safe_arithmetic, verify_answer

_FIELD = re.compile(r"^\s*\**(REASONING|ANSWER)\**\s*:\s*\**\s*", re.I | re.M)


@dataclass
class Rewrite:
    """Agent-0's improved answer and the evidence behind it."""

    question: str
    reasoning: str
    answer: str
    agent: str
    samples: list[str] = field(default_factory=list)  # the answers of independent rewrites
    agreement: float | None = None
    tool: dict[str, Any] | None = None  # {"tool", "expression", "value", "composed"}
    cost_usd: float = 0.0
    error: str | None = None

    @property
    def text(self) -> str:
        if not self.reasoning:  # an answer alone (one written from a correction)
            return f"ANSWER: {self.answer}"
        return f"REASONING: {self.reasoning}\nANSWER: {self.answer}"


def parse_rewrite(text: str) -> tuple[str, str]:
    """(reasoning, answer) from 'REASONING: ... ANSWER: ...'; the whole text when unmarked."""
    parts = _FIELD.split(text)
    found: dict[str, str] = {}
    for label, body in zip(parts[1::2], parts[2::2], strict=False):
        found[label.upper()] = body.strip()
    if "ANSWER" not in found:
        return found.get("REASONING", ""), text.strip()
    return found.get("REASONING", ""), found["ANSWER"]


def plain(value: str) -> str:
    """The way a person writes a result: 61 (not 61.0), 2.5, or 1/3 when no decimal ends."""
    key = canonical_number(value)
    if key is None:
        return extract_answer(value).display
    frac = Fraction(key)
    if frac.denominator == 1:
        return str(frac.numerator)
    d = frac.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return str(float(frac)) if d == 1 else f"{frac.numerator}/{frac.denominator}"


class Agent0:
    """Rewrites failures; `agent` is "council" or a head id (see Settings.agent0)."""

    def __init__(self, council: Council, agent: str | None = None, samples: int | None = None):
        self.council = council
        self.agent = agent or council.settings.learning.agent0
        self.samples = samples or council.settings.learning.agent0_samples
        if self.agent != "council":
            head = council.head(self.agent)
            priced = head.spec.cost_in_per_1k > 0 or head.spec.cost_out_per_1k > 0
            if priced and council.settings.routing.local_only:
                raise ConfigError(
                    f"Agent-0 head {self.agent!r} is a paid head and local_only is on; set "
                    "COUNCIL_LOCAL_ONLY=false (or the governor) to allow cloud rewrites."
                )

    async def rewrite(
        self, question: str, bad_answer: str, correction: str | None = None
    ) -> Rewrite:
        """A better answer; with a user's correction, reasoning that ends in it."""
        tool = await self.use_tools(question)
        tpl = load_prompt("agent0")
        note = tpl["tool_note"].format(**tool) if tool else ""
        told = tpl["correction_note"].format(correction=correction) if correction else ""
        prompt = [
            Message("system", tpl["system"]),
            Message("user", tpl["user"].format(question=question, bad_answer=bad_answer,
                                               tool_note=note, correction_note=told)),
        ]  # fmt: skip
        if self.agent == "council":
            texts, agreement, cost, error = await self._ask_council(prompt)
        else:
            texts, agreement, cost, error = await self._ask_head(prompt)
        if error is not None:
            return Rewrite(question, "", "", self.agent, error=error, tool=tool, cost_usd=cost)
        reasoning, answer = parse_rewrite(texts[0])
        samples = [parse_rewrite(t)[1] for t in texts]
        rewrite = Rewrite(question, reasoning, answer, self.agent, samples, agreement, tool, cost)
        if tool and verify_answer(question, answer) is not True:
            # The model could not carry the calculation: answer from the tool, say so.
            rewrite.reasoning = (
                f"Evaluate {tool['expression']} exactly (checked with a calculator): "
                f"{tool['expression']} = {tool['value']}."
            )
            rewrite.answer = str(tool["value"])
            tool["composed"] = True
        return rewrite

    async def use_tools(self, question: str) -> dict[str, Any] | None:
        """exec_safe on the arithmetic in the question, when there is some."""
        expression = find_expression(question)
        if expression is None:
            return None
        try:  # exact arithmetic first: 1/3 stays 1/3, 61 is not 61.0
            exact = safe_arithmetic(expression)
            value = plain(f"{exact.numerator}/{exact.denominator}")
        except UnsafeExpression:
            python = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
            result = await asyncio.to_thread(exec_safe, python)
            if not result.ok or result.value is None:
                return None
            value = plain(result.value)
        return {"tool": "exec_safe", "expression": expression, "value": value, "composed": False}

    async def _ask_council(
        self, prompt: list[Message]
    ) -> tuple[list[str], float | None, float, str | None]:
        try:
            params = GenParams(max_tokens=self.council.settings.learning.agent0_max_tokens)
            v = await self.council.ask(prompt, record=False, recall=False, rag=False,
                                       params=params)  # fmt: skip
        except Exception as exc:  # every head failed: leave the exchange for the next run
            return [], None, 0.0, f"{type(exc).__name__}: {exc}"
        others = [x.answer for x in v.votes if x.error is None and x.answer != v.answer]
        return [v.answer, *others], v.confidence, v.cost_usd, None

    async def _ask_head(
        self, prompt: list[Message]
    ) -> tuple[list[str], float | None, float, str | None]:
        head = self.council.head(self.agent)
        params = GenParams(
            max_tokens=self.council.settings.learning.agent0_max_tokens,
            temperature=max(head.spec.temperature, 0.5),
        )
        # Through the council: timeouts, the governor's budget and metrics apply here too.
        got = await self.council.call(head, prompt, params, n=self.samples)
        ok = [c for c in got if c.ok and c.text.strip()]
        cost = sum(c.cost_usd for c in got)
        if not ok:
            return [], None, cost, f"Agent-0 head {head.id} failed: {got[0].error if got else '?'}"
        answers = [extract_answer(parse_rewrite(c.text)[1]) for c in ok]
        first = answers[0].key or answers[0].display
        agree = sum(1 for a in answers if (a.key or a.display) == first) / len(answers)
        return [c.text for c in ok], agree, cost, None
