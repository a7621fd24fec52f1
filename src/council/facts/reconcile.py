"""One candidate fact against the user's current facts: ADD, UPDATE (supersede one) or NOOP.

The nearest facts by vector are shown to the fact head, which decides; when it cannot (no head,
an error, an unusable reply) `decide_by_rule` does: a near-duplicate is NOOP; the same subject
("my cat is called ...", "I live in ...") or the same single-valued topic by meaning
(topics.py: "I'm a teacher by trade" -> "I started a new job as a chef") is UPDATE (newer wins);
anything else is ADD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from council.facts.extract import AskHead
from council.facts.ledger import Fact
from council.facts.topics import TOPIC_NAMES, Topic
from council.prompts import load_prompt
from council.types import Message

NEIGHBOURS = 5
SAME = 0.92  # cosine at or above which a candidate says what a fact already says
RELATED = 0.3  # below this, no existing fact is about the same thing
_DECISION = re.compile(r"^\s*(ADD|UPDATE|NOOP)\b\s*\[?(\d+)?", re.I)

# Subjects a fact is about: a new fact on a subject supersedes the older one.
_SUBJECTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:i|we)\s+(?:now\s+|just\s+|recently\s+)?"
                r"(?:live|moved|relocated|am based|'m based)\b"
                r"|\b(?:i'm|i am|we're|we are)\s+(?:now\s+)?(?:living|based|moving)\b"
                r"|\bmy (?:home|address|city)\b", re.I), "home"),
    (re.compile(r"\b(?:i|we)\s+(?:now\s+)?work(?:s|ed)?\s+(?:at|for|as|in)\b"
                r"|\bmy (?:job|employer)\b"
                r"|\b(?:i|we)\s+(?:just\s+)?(?:started|got|have) a new job\b",
                re.I), "work"),
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


def slot(text: str, topic: Topic | None) -> str | None:
    """The one value a fact holds, named: its single-valued topic (with the people it is
    about, so "my wife works as ..." is not the user's job), else its subject by rule."""
    if topic is not None and topic.single:
        return " ".join([topic.name, *sorted(topic.people)])
    return subject(text)


def neighbours(
    vector: np.ndarray, facts: list[Fact], vectors: np.ndarray
) -> list[tuple[Fact, float]]:
    """The user's facts nearest the candidate, best first (brute force: a user has few)."""
    if not facts:
        return []
    scores = vectors @ vector
    order = np.argsort(-scores)[:NEIGHBOURS]
    return [(facts[i], float(scores[i])) for i in order]


def decide_by_rule(
    text: str,
    near: list[tuple[Fact, float]],
    topic: Topic | None = None,
    near_topics: list[Topic | None] | None = None,
) -> Decision:
    """NOOP for a near-duplicate; UPDATE for the same subject (rules) or the same single-valued
    topic (meaning; `topic` is the candidate's, `near_topics` the neighbours'); else ADD."""
    if near and near[0][1] >= SAME:
        return Decision("NOOP", near[0][0])
    mine = slot(text, topic)
    if mine is not None:
        known = mine in TOPIC_NAMES  # a single-valued topic: however far apart the wording
        for (fact, score), theirs in zip(near, near_topics or [None] * len(near), strict=True):
            if (known or score >= RELATED) and slot(fact.text, theirs) == mine:
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


async def decide(
    text: str,
    near: list[tuple[Fact, float]],
    ask: AskHead | None,
    topic: Topic | None = None,
    near_topics: list[Topic | None] | None = None,
) -> Decision:
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
    return decide_by_rule(text, near, topic, near_topics)
