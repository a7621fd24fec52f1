"""What a fact is about, by meaning: the topic whose questions its vector is nearest.

Two facts on the same single-valued topic ("I live in Berlin", "These days home is Lisbon")
are one fact changing value, however they are phrased; facts on a many-valued topic (pets,
instruments, allergies) accumulate. Topics are data (prompts/fact_topics.yaml), embedded once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
import yaml

from council.embeddings import Embedder

MIN_SCORE = 0.3  # a fact nearer no topic question than this has no known topic
MARGIN = 0.03  # nor does one nearly as near a second topic (ambiguous)
# A fact about someone else ("my wife works as a teacher") is not the user's own value.
_PEOPLE = re.compile(
    r"\b(wife|husband|partner|boyfriend|girlfriend|sister|brother|mother|father|mum|mom|dad"
    r"|parents?|son|daughter|child|children|kids?|friend|boss|colleague|neighbou?r|roommate"
    r"|flatmate|aunt|uncle|cousin|grand(?:mother|father|ma|pa))s?\b",
    re.I,
)


@dataclass(frozen=True)
class Topic:
    name: str
    single: bool  # one value at a time: a newer fact on it supersedes the older one
    people: frozenset[str]  # the people the fact is about, besides the user


def _load() -> dict[str, dict[str, object]]:
    text = resources.files("council.prompts").joinpath("fact_topics.yaml").read_text()
    data: dict[str, dict[str, object]] = yaml.safe_load(text)
    return data


TOPIC_NAMES = frozenset(_load())


class Topics:
    """The topic of facts by their vectors (the embedder's, normalised)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.spec = _load()

    @cached_property
    def _questions(self) -> tuple[np.ndarray, np.ndarray]:
        names, asks = [], []
        for i, (_, topic) in enumerate(self.spec.items()):
            for q in topic["ask"]:  # type: ignore[attr-defined]
                names.append(i)
                asks.append(str(q))
        return np.asarray(names), self.embedder.encode(asks)

    def of(self, text: str, vector: np.ndarray) -> Topic | None:
        """The fact's topic, or None when it is near none, or near two."""
        return self.of_many([text], vector[None, :])[0]

    def of_many(self, texts: list[str], vectors: np.ndarray) -> list[Topic | None]:
        if not texts:
            return []
        owner, questions = self._questions
        scores = vectors @ questions.T  # (facts, questions)
        best = np.full((len(texts), len(self.spec)), -1.0)
        for t in range(len(self.spec)):
            best[:, t] = scores[:, owner == t].max(axis=1)
        order = np.argsort(-best, axis=1)
        names = list(self.spec)
        found: list[Topic | None] = []
        for text, row, (first, second) in zip(texts, best, order[:, :2], strict=True):
            if row[first] < MIN_SCORE or row[first] - row[second] < MARGIN:
                found.append(None)
                continue
            spec = self.spec[names[first]]
            asked = " ".join(str(q) for q in spec["ask"])  # type: ignore[attr-defined]
            people = _people(text) - _people(asked)
            found.append(Topic(names[first], bool(spec["single"]), frozenset(people)))
        return found


def _people(text: str) -> set[str]:
    return {p.lower() for p in _PEOPLE.findall(text)}
