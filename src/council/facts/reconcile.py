"""One candidate fact against the user's current facts: ADD, UPDATE (supersede one) or NOOP.

The nearest facts by vector are shown to the fact head, which decides; when it cannot (no head,
an error, an unusable reply) `decide_by_rule` does: a near-duplicate is NOOP, the same subject
("my cat is called ...", "I live in ...") is UPDATE (newer wins), anything else is ADD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from council.facts.extract import AskHead
from council.facts.ledger import Fact
from council.prompts import load_prompt
from council.types import Message

NEIGHBOURS = 5
SAME = 0.92  # cosine at or above which a candidate says what a fact already says
RELATED = 0.3  # below this, no existing fact is about the same thing
_DECISION = re.compile(r"^\s*(ADD|UPDATE|NOOP)\b\s*\[?(\d+)?", re.I)

# Subjects a fact is about: a new fact on a subject supersedes the older one.
_SUBJECTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:i|we)\s+(?:now\s+)?(?:live|moved|relocated|am based|'m based)\b"
                r"|\b(?:i'm|i am|we're|we are)\s+(?:now\s+)?(?:living|based|moving)\b"
                r"|\bmy (?:home|address|city)\b", re.I), "home"),
    (re.compile(r"\b(?:i|we)\s+(?:now\s+)?work(?:s|ed)?\s+(?:at|for|as|in)\b"
                r"|\bmy (?:job|employer)\b", re.I), "work"),
    (re.compile(r"\bmy name is\b|\b(?:i'm|i am) called\b|\bcall me\b", re.I), "name"),
]  # fmt: skip
_MY_THING = re.compile(
    r"\bmy ((?:favou?rite|fav|best|new|current)\s+)?([a-z][a-z' -]{0,30}?)('s name)?\s+"
    r"(?:is|are|was|has)\b\s*(called|named)?",
    re.I,
)


@dataclass(frozen=True)
class Decision:
    action: str  # ADD | UPDATE | NOOP
    target: Fact | None = None  # the fact updated, or the one already saying it
    by: str = "rule"  # head | rule


def subject(text: str) -> str | None:
    """What a fact is about, when a simple reading can tell; None otherwise."""
    for pattern, name in _SUBJECTS:
        if pattern.search(text):
            return name
    m = _MY_THING.search(text)
    if m is None:
        return None
    noun = re.sub(r"^(?:new|current)\s+", "", (m.group(1) or "") + m.group(2)).strip().lower()
    return f"{noun}:name" if (m.group(3) or m.group(4)) else noun


def neighbours(
    vector: np.ndarray, facts: list[Fact], vectors: np.ndarray
) -> list[tuple[Fact, float]]:
    """The user's facts nearest the candidate, best first (brute force: a user has few)."""
    if not facts:
        return []
    scores = vectors @ vector
    order = np.argsort(-scores)[:NEIGHBOURS]
    return [(facts[i], float(scores[i])) for i in order]


def decide_by_rule(text: str, near: list[tuple[Fact, float]]) -> Decision:
    if near and near[0][1] >= SAME:
        return Decision("NOOP", near[0][0])
    mine = subject(text)
    if mine is not None:
        for fact, score in near:
            if score >= RELATED and subject(fact.text) == mine:
                return Decision("UPDATE", fact)
    return Decision("ADD")


def parse_decision(reply: str, near: list[tuple[Fact, float]]) -> Decision | None:
    m = _DECISION.match(reply.strip().splitlines()[0] if reply.strip() else "")
    if m is None:
        return None
    action = m.group(1).upper()
    if action == "ADD":
        return Decision("ADD", by="head")
    index = int(m.group(2) or 0) - 1
    if not 0 <= index < len(near):
        return None
    return Decision(action, near[index][0], by="head")


async def decide(text: str, near: list[tuple[Fact, float]], ask: AskHead | None) -> Decision:
    """The head's decision when it gives a usable one, else the rule's."""
    if not near:
        return Decision("ADD")
    if near[0][1] >= SAME:  # an exact repeat needs no model
        return Decision("NOOP", near[0][0])
    if ask is not None:
        prompt = load_prompt("facts")
        existing = "\n".join(f"{i}. {f.text}" for i, (f, _) in enumerate(near, 1))
        reply = await ask(
            [
                Message("system", prompt["reconcile_system"]),
                Message("user", prompt["reconcile_user"].format(existing=existing, fact=text)),
            ]
        )
        decision = parse_decision(reply, near) if reply is not None else None
        if decision is not None:
            return decision
    return decide_by_rule(text, near)
