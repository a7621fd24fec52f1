"""The reader tool: the answer span from what was recalled for this question.

The council puts what it recalled (the user's facts, past answers, knowledge chunks) into the
system message (exchange.context_block); the reader reads it back from there, so it sees
exactly what the model heads see. Two steps, both deterministic:
1. sentence selection: the recalled text split into sentences, each scored against the
   question by the embedder (cosine); below MIN_SIMILARITY it abstains;
2. span extraction, by the question's kind: a number for "how many / how much / when / what
   year", a name for "who / which / where", otherwise a number, else a name (a capitalised
   word that only starts the sentence is no name); the candidate
   nearest to the question's own words in the sentence, never one the question already says.

No extractive QA model ships in a PyPI package that installs here without a hub download,
so step 2 is a rule; it abstains whenever the sentence has no span of the right kind.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from council.heads.tools import ToolAnswer
from council.types import Message, last_user_text

if TYPE_CHECKING:
    from council.embeddings import Embedder

MIN_SIMILARITY = 0.45
MAX_SENTENCES = 400
# The headers exchange.context_block writes (tests/test_tool_heads.py keeps them in step).
SECTIONS = {
    "What the user told you (newest last):": "fact",
    "Your past answers to this user (may be wrong):": "memory",
    "Knowledge (cite the [number] you use):": "knowledge",
}
_MARKER = re.compile(r"^(?:- \(\d{4}-\d\d-\d\d\) |- |\[\d+\] \([^)\n]*, part [^)\n]*\) )")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?%?(?![\w])")
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|de|la|van|von|the)?\s*[A-Z][\w'-]*)*")
_WORDS = re.compile(r"[a-z0-9]+")
NUMERIC = re.compile(
    r"\b(?:how\s+(?:many|much|long|old|far|often|big|tall)|what\s+(?:year|number|percentage"
    r"|percent|amount|price|age|time)|when|in\s+which\s+year)\b",
    re.I,
)
NAMED = re.compile(r"\b(?:who|whom|whose|which|where|what\s+(?:is|was)\s+the\s+name)\b", re.I)
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "how",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "many",
        "much",
        "get",
        "gets",
        "got",
        "has",
        "have",
        "had",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "their",
        "they",
        "them",
        "you",
        "your",
        "i",
        "me",
        "my",
        "we",
        "our",
        "us",
    ]
)


class Reader:
    exact = False  # a span of whatever was recalled: grounded, not computed

    def __init__(self, embedder: Embedder | None):
        self.embedder = embedder

    def answer(self, messages: list[Message]) -> ToolAnswer:
        question = last_user_text(messages)
        sentences = recalled_sentences(messages)
        if not sentences:
            return ToolAnswer(None, "nothing was recalled for this question")
        best, score = self.select(question, sentences)
        if score < MIN_SIMILARITY:
            return ToolAnswer(
                None, f"no recalled sentence is close enough (best {score:.2f} < "
                f"{MIN_SIMILARITY}: {best[:80]!r})"
            )  # fmt: skip
        span = extract_span(question, best)
        if span is None:
            return ToolAnswer(None, f"no answer span in {best[:120]!r} (similarity {score:.2f})")
        return ToolAnswer(span, f"{span!r} from {best[:160]!r} (similarity {score:.2f})", score)

    def select(self, question: str, sentences: list[str]) -> tuple[str, float]:
        """The recalled sentence closest to the question, and its cosine (or word overlap,
        with embeddings switched off)."""
        if self.embedder is None:
            q = _content(question)
            scores = [len(q & _content(s)) / max(1, len(q)) for s in sentences]
        else:
            vecs = self.embedder.encode([question, *sentences])
            scores = [float(vecs[0] @ v) for v in vecs[1:]]
        i = max(range(len(sentences)), key=lambda k: scores[k])
        return sentences[i], scores[i]


def recalled_sentences(messages: list[Message]) -> list[str]:
    """The sentences of every recalled passage in the conversation's system messages."""
    out: list[str] = []
    for m in messages:
        if m.role != "system":
            continue
        starts = sorted((i, h) for h in SECTIONS if (i := m.content.find(h)) >= 0)
        for k, (at, header) in enumerate(starts):
            end = starts[k + 1][0] if k + 1 < len(starts) else len(m.content)
            body = m.content[at + len(header) : end]
            for line in body.strip().splitlines():
                text = _MARKER.sub("", line.strip())
                out += [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 2]
    return out[:MAX_SENTENCES]


def extract_span(question: str, sentence: str) -> str | None:
    """The answer span in the sentence for this question (see the module docstring)."""
    numbers = [(m.start(), m.group(0).rstrip(",")) for m in _NUMBER.finditer(sentence)]
    names = [(m.start(), m.group(0)) for m in _NAME.finditer(sentence)]
    q_words = _content(question)
    said = set(_WORDS.findall(question.lower()))
    numbers = [(at, n) for at, n in numbers if n.strip("$€£%").replace(",", "") not in said]
    names = [
        (at, n)
        for at, n in names
        if not set(_WORDS.findall(n.lower())) <= said | STOP
        and (at > 0 or " " in n)  # "Employees get ...": capitalised for being first
    ]
    if NUMERIC.search(question):
        order = [numbers]
    elif NAMED.search(question):
        order = [names]
    else:
        order = [numbers, names]
    anchors = [m.start() for m in _WORDS.finditer(sentence.lower()) if m.group(0) in q_words]
    for found in order:
        if found:
            return min(found, key=lambda c: _distance(c[0], anchors))[1]
    return None


def _distance(at: int, anchors: list[int]) -> int:
    return min((abs(at - a) for a in anchors), default=0)


def _content(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in STOP}
