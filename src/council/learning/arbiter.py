"""The Arbiter loop: a primary Oracle reviews an answer; when it is unsure or disagrees, a
heavier Arbiter decides. The result is a final_platinum_answer with explicit provenance,
appended to datasets/training_metadata.jsonl. Governed by ENABLE_ORACLE_REFINEMENT and
FORCE_ARBITER; a paid oracle/arbiter is only used when local_only is off."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.ballot.normalize import extract_answer
from council.council import Council
from council.heads import Head
from council.prompts import load_prompt
from council.types import GenParams, Message

UNSURE_BELOW = 0.7
_VERDICT = re.compile(r"VERDICT\s*:\s*(AGREE|DISAGREE)", re.I)
_CONFIDENCE = re.compile(r"CONFIDENCE\s*:\s*([01](?:\.\d+)?)", re.I)
_FINAL = re.compile(r"FINAL\s*:\s*(.+)", re.I)
_CHOICE = re.compile(r"CHOICE\s*:\s*([AB])\b", re.I)


@dataclass
class Platinum:
    question: str
    answer: str  # the final_platinum_answer
    decided_by: str = "proposer"  # proposer | oracle | arbiter | tool
    provenance: dict[str, Any] = field(default_factory=dict)


def parse_oracle(text: str) -> tuple[bool | None, float | None, str | None]:
    """(agrees, confidence, final answer) from the Oracle's reply; None where unreadable."""
    v, c, f = _VERDICT.search(text), _CONFIDENCE.search(text), _FINAL.search(text)
    agrees = None if v is None else v.group(1).upper() == "AGREE"
    return agrees, (float(c.group(1)) if c else None), (f.group(1).strip() if f else None)


def _same(a: str, b: str) -> bool:
    x, y = extract_answer(a), extract_answer(b)
    return (x.key or x.display) == (y.key or y.display)


class ArbiterLoop:
    def __init__(self, council: Council, metadata_path: Path | None = None):
        self.council = council
        s = council.settings
        self.path = metadata_path or s.server.data_dir / "datasets" / "training_metadata.jsonl"
        allowed = [
            h for h in council.enabled
            if not s.routing.local_only or not h.spec.priced
        ]  # fmt: skip
        ranked = sorted(allowed, key=lambda h: -h.spec.quality)
        oracle, arbiter = s.learning.oracle_head, s.learning.arbiter_head
        self.oracle: Head | None = council.head(oracle) if oracle else (
            ranked[0] if ranked else None)  # fmt: skip
        rest = [h for h in ranked if h is not self.oracle]
        self.arbiter: Head | None = council.head(arbiter) if arbiter else (
            rest[0] if rest else self.oracle)  # fmt: skip

    async def refine(
        self, question: str, answer: str, *, heads: list[str] | None = None,
        tool: dict[str, Any] | None = None,
    ) -> Platinum:  # fmt: skip
        s = self.council.settings
        prov: dict[str, Any] = {"heads": heads or [], "tool_checks": [tool] if tool else []}
        if tool is not None and tool.get("value") is not None:
            # A tool-checked answer is not up for debate.
            result = Platinum(question, str(tool["value"]) if not _same(answer, str(
                tool["value"])) else answer, "tool", prov)  # fmt: skip
            return self._log(result)
        if not s.learning.enable_oracle_refinement or self.oracle is None:
            prov["oracle"] = None
            return Platinum(question, answer, "proposer", prov)
        tpl = load_prompt("oracle")
        note = f"A calculator says {tool['expression']} = {tool['value']}." if tool else ""
        reply = await self._ask(self.oracle, tpl["oracle_system"], tpl["oracle_user"].format(
            question=question, answer=answer, tool_note=note))  # fmt: skip
        agrees, confidence, final = parse_oracle(reply)
        prov["oracle"] = {"head": self.oracle.id, "agrees": agrees, "confidence": confidence,
                          "final": final}  # fmt: skip
        oracle_answer = final or answer
        unsure = agrees is not True or (confidence is not None and confidence < UNSURE_BELOW)
        if not (unsure or s.learning.force_arbiter) or self.arbiter is None:
            return self._log(Platinum(question, oracle_answer, "oracle", prov))
        reply = await self._ask(
            self.arbiter,
            tpl["arbiter_system"],
            tpl["arbiter_user"].format(
                question=question, answer=answer, oracle_answer=oracle_answer, tool_note=note
            ),
        )
        choice = _CHOICE.search(reply)
        fin = _FINAL.search(reply)
        picked = answer if choice and choice.group(1).upper() == "A" else oracle_answer
        prov["arbiter"] = {"head": self.arbiter.id, "choice": choice.group(1) if choice else None,
                           "final": fin.group(1).strip() if fin else None}  # fmt: skip
        return self._log(Platinum(question, picked, "arbiter", prov))

    async def _ask(self, head: Head, system: str, user: str) -> str:
        [c] = await self.council.call(
            head, [Message("system", system), Message("user", user)],
            GenParams(temperature=0.0, max_tokens=128),
        )  # fmt: skip
        return c.text if c.ok else ""

    def _log(self, p: Platinum) -> Platinum:
        """Append the platinum answer and its provenance to training_metadata.jsonl."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"ts": time.time(), "question": p.question, "final_platinum_answer": p.answer,
                "decided_by": p.decided_by, "provenance": p.provenance}  # fmt: skip
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        return p
