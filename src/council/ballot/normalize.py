"""Turn a head's free-text answer into a canonical key, so that equal answers vote together.

Numbers become reduced fractions ("0.5", "1/2" and "½" all give "1/2"); a trailing "%" is
dropped, not divided by 100, because heads asked for a percentage answer "50" as often as "50%".
Option letters become "choice:B", short answers "phrase:<normalized>", and long prose with no
clear answer is kind "text" with no key, so it never wins a vote by accident.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Extracted", "canonical_number", "extract_answer"]

# Up to this many words a span is a short answer; beyond it, it is prose.
PHRASE_MAX_WORDS = 8
# A lone number in a longer text than this is more likely an aside than the answer.
LONE_NUMBER_MAX_WORDS = 50
# Bounds that keep "1e999999" or a 10k-digit run from costing time or memory.
_MAX_DIGITS = 100
_MAX_EXPONENT = 100
_DISPLAY_CHARS = 80
_MAX_SCAN_CHARS = 20_000


@dataclass(frozen=True)
class Extracted:
    """A head's answer reduced to what the vote compares."""

    kind: str  # "number" | "choice" | "phrase" | "text"
    key: str | None  # canonical comparable key; None for kind "text"
    display: str  # the short answer as a human would write it


_BODY = (
    r"(?:(?P<mw>\d+) +(?P<mn>\d+)/(?P<md>\d+)"  # mixed number "1 1/2"
    r"|(?P<fn>\d+)/(?P<fd>\d+)"
    r"|(?P<dec>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE](?P<exp>[+-]?\d+))?)"
)
_CURRENCY = "$€£¥₹"
_FULL_NUMBER_RE = re.compile(
    r"\s*(?:(?:about|approximately|approx\.?|around|roughly|exactly|~|≈)\s*)?"
    rf"(?P<lead>[+-]?\s*[{_CURRENCY}]?\s*)(?P<sign>[+-]?)(?P<body>{_BODY})"
    r"(?P<pct>\s*%)?(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL,
)
# A number standing alone in prose: not glued to a word ("GPT-4", "3rd", "1990s", "H2O").
_TOKEN_RE = re.compile(
    rf"(?<![\w.,/:^$+-])[+-]?[{_CURRENCY}]?{_BODY}%?(?![\w/:^]|[.,]\d)", re.IGNORECASE
)
_UNIT_WORD_RE = re.compile(
    rf"(?:[°{_CURRENCY}]|[^\W\d_])(?:[^\W\d]|[/·.'°-])*(?:\^?[23²³])?[.,;:!?]*"
)
_TRANSLATE = str.maketrans(
    {"\u2212": "-", "\u2013": "-", "\u2044": "/", "\u2215": "/", "\uff05": "%"}
    | dict.fromkeys("\u00a0\u2009\u202f", " ")
)

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_RE = re.compile(
    r"\b(?:(?:final\s+)?answer\b[*_ \t]*(?:is\b|would\s+be\b|[:：])"
    r"|final\s+answer\b[*_ \t]*(?=\n|$))[ \t*_:]*([^\n]*)",
    re.IGNORECASE,
)
_HASHES_RE = re.compile(r"^[ \t]*####(?!#)[ \t]*([^\n]+)", re.MULTILINE)
_NEXT_LINE_RE = re.compile(r"\S[^\n]*")
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s)")
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_CHOICE_RE = re.compile(
    r"(?:option|choice)\s*[(\[]?([A-E])\b.*"  # "Option B", "choice (c): Paris"
    r"|[(\[]?([A-E])[)\]]?[.:]?"  # "B", "(B)", "B)", "B."
    r"|[(\[]([A-E])[)\]]\s.*|([A-E])\)\s.*",  # "(B) Paris", "B) Paris"
    re.IGNORECASE | re.DOTALL,
)
_YES_NO_RE = re.compile(r"(yes|no|true|false)(?:\s*[,.!;:]|$)")
_ARTICLE_RE = re.compile(r"^(?:the|an?)\s+")
# "x <= 5", "x != 5": the number bounds the answer rather than being it.
_INEQUALITIES = ("<", ">", "≤", "≥", "≠", "<=", ">=", "!=")
_NOT_EQUATION = ("<", ">", "!", "=")  # what may precede "=" in "<=", ">=", "!=", "=="
_EDGE = " \t\n\"'“”‘’«»„`*_.,;:!?"


def canonical_number(s: str) -> str | None:
    """Return s as a reduced fraction string ("1/2", "-3", "1000"), or None if not a number."""
    parsed = _parse_number(s)
    return None if parsed is None else str(parsed[0])


def extract_answer(text: str) -> Extracted:
    """Find the final answer in a model's reply and reduce it to a comparable key."""
    text = text or ""
    # Answers sit at the end, so scanning only the tail bounds the cost of a runaway reply.
    found = _classify(_clean_span(_final_span(text[-_MAX_SCAN_CHARS:])))
    if found.kind == "text" and len(text) > _MAX_SCAN_CHARS:
        return Extracted("text", None, text.strip()[:_DISPLAY_CHARS].rstrip())
    return found


def _prep(s: str) -> str:
    """Rewrite unicode digits, minus signs and vulgar fractions into plain ASCII."""
    s = s.translate(_TRANSLATE)
    if s.isascii():
        return s
    out: list[str] = []
    for ch in s:
        if ch.isascii():
            out.append(ch)
        elif ch.isdecimal():
            out.append(str(unicodedata.decimal(ch)))
        elif unicodedata.name(ch, "").startswith("VULGAR FRACTION"):
            v = Fraction(unicodedata.numeric(ch)).limit_denominator(1000)
            # "1½" must read as the mixed number 1 1/2, not as 11/2.
            gap = " " if out and out[-1][-1:].isdigit() else ""
            out.append(f"{gap}{v.numerator}/{v.denominator}")
        else:
            out.append(ch)
    return "".join(out)


def _parse_number(s: str) -> tuple[Fraction, str] | None:
    """Parse a span that is one number, maybe with currency, "%" or a few unit words."""
    m = _FULL_NUMBER_RE.fullmatch(_prep(s))
    if m is None or not _is_unit_tail(m["rest"]):
        return None
    # Check sizes on the string before int() ever sees it: "1e999999" must stay cheap.
    if sum(c.isdigit() for c in m["body"]) > _MAX_DIGITS:
        return None
    if m["md"] or m["fd"]:  # "3/4" or "1 1/2"
        denominator = int(m["md"] or m["fd"])
        if denominator == 0:
            return None
        value = int(m["mw"] or 0) + Fraction(int(m["mn"] or m["fn"]), denominator)
    else:
        exp = int(m["exp"] or 0)
        if abs(exp) > _MAX_EXPONENT:
            return None
        value = Fraction(m["dec"].replace(",", "")) * Fraction(10) ** exp
    if "-" in m["lead"] + m["sign"]:
        value = -value
    display = m["lead"].replace(" ", "") + m["sign"] + m["body"] + ("%" if m["pct"] else "")
    return value, display


def _is_unit_tail(rest: str) -> bool:
    """Whether what follows a number is only units or an aside ("apples", "km/h", "(approx)")."""
    rest = rest.strip(" \t\n.!?,;:")
    if rest.startswith("(") and rest.endswith(")"):
        return True
    words = rest.split()
    return len(words) <= 3 and all(_UNIT_WORD_RE.fullmatch(w) for w in words)


def _last_boxed(text: str) -> str | None:
    """Return the contents of the last \\boxed{...}, braces matched, or None."""
    last = next(reversed(list(_BOXED_RE.finditer(text))), None)
    if last is None:
        return None
    depth = 1
    for j in range(last.end(), len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[last.end() : j]
    return text[last.end() :]


def _final_span(text: str) -> str:
    """Isolate the final-answer span a text marks, else return the whole text."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    pos, span = -1, text.strip()
    for m in _ANSWER_RE.finditer(text):
        rest = m[1].strip()
        if not rest:  # "Answer:" alone on its line: the answer is on the next non-empty one
            below = _NEXT_LINE_RE.search(text, m.end())
            rest = below[0].strip() if below else ""
        end = _SENTENCE_END_RE.search(rest)
        pos, span = m.start(), rest[: end.start()] if end else rest
    for m in _HASHES_RE.finditer(text):
        # Only GSM8K-style "#### 42"; "#### Step 1" is a markdown heading.
        if m.start() > pos and canonical_number(_clean_span(m[1])) is not None:
            pos, span = m.start(), m[1]
    # "= x" closing the last line, when x is a number: "so 6 * 7 = 42".
    stripped = text.rstrip()
    line_start = stripped.rfind("\n") + 1
    eq = stripped.rfind("=", line_start)
    if eq > pos and not stripped[:eq].endswith(_NOT_EQUATION):
        rhs = stripped[eq + 1 :]
        if canonical_number(_clean_span(rhs)) is not None:
            span = rhs
    return span


def _clean_span(s: str) -> str:
    """Strip LaTeX and markdown wrappers that carry no meaning for the answer."""
    s = _FRAC_RE.sub(r"\1/\2", s)
    s = _TEXT_CMD_RE.sub(r"\1", s)
    s = s.replace("{,}", ",").replace("\\%", "%").replace("\\$", "$").replace("\\,", "")
    s = re.sub(r"\\[()\[\]]|\*\*|__|`", "", s).strip().rstrip(".").strip()
    if s.endswith("$"):  # "$5$" is math mode, while "$5" is dollars
        s = s.rstrip("$")
        s = s.lstrip("$") if s.startswith("$") else s
    return s.lstrip("#> \t").strip(" \t\n\"'“”‘’*_")


def _classify(span: str) -> Extracted:
    """Decide whether a span is a number, an option letter, a short phrase or prose."""
    if not span:
        return Extracted("text", None, "")
    parsed = _parse_number(span)
    lhs, eq, rhs = span.rpartition("=")
    if parsed is None and eq and not lhs.endswith(_NOT_EQUATION):
        parsed = _parse_number(rhs)  # "x = 5", but not "x <= 5"
    if parsed is not None:
        return Extracted("number", str(parsed[0]), parsed[1])
    choice = _CHOICE_RE.fullmatch(span)
    if choice is not None:
        letter = next(g for g in choice.groups() if g).upper()
        return Extracted("choice", f"choice:{letter}", letter)
    phrase = _normalize_phrase(span)
    yes_no = _YES_NO_RE.match(phrase)
    if yes_no is not None:  # "Yes, it is" and "Yes." are the same vote
        return Extracted("phrase", f"phrase:{yes_no[1]}", yes_no[1])
    parsed = _prose_number(span)
    if parsed is not None:
        return Extracted("number", str(parsed[0]), parsed[1])
    if phrase and len(phrase.split()) <= PHRASE_MAX_WORDS:
        return Extracted("phrase", f"phrase:{phrase}", phrase)
    return Extracted("text", None, span.strip()[:_DISPLAY_CHARS].rstrip())


def _prose_number(span: str) -> tuple[Fraction, str] | None:
    """Pick the number prose stands on: its only number, or the one it ends with."""
    text = _prep(span)
    words = len(text.split())
    trimmed = text.rstrip(" \t\n.!*_)]")
    values: dict[Fraction, str] = {}
    seen: set[str] = set()
    last = None
    for m in _TOKEN_RE.finditer(trimmed):
        before = trimmed[max(0, m.start() - 8) : m.start()].rstrip()  # a window keeps it O(n)
        if before.endswith(_INEQUALITIES):
            continue
        last = m
        # Parse only until a second distinct value shows up: that settles "only number".
        if len(values) < 2 and m.group() not in seen:
            seen.add(m.group())
            parsed = _parse_number(m.group())
            if parsed is not None:
                values.setdefault(*parsed)
    if words > PHRASE_MAX_WORDS and last is not None and last.end() == len(trimmed):
        ending = _parse_number(last.group())
        if ending is not None:
            return ending
    if len(values) == 1 and words <= LONE_NUMBER_MAX_WORDS:
        return next(iter(values.items()))
    return None


def _normalize_phrase(s: str) -> str:
    """Lowercase, NFKC, unwrap quotes/brackets/markdown, drop articles and edge punctuation."""
    s = unicodedata.normalize("NFKC", s).casefold()
    s = " ".join(re.sub(r"\*\*|__|`", "", s).split())
    previous = None
    while s != previous:
        previous = s
        s = s.strip(_EDGE)
        if len(s) >= 2 and s[0] + s[-1] in ("()", "[]", "{}"):
            s = s[1:-1]
        s = _ARTICLE_RE.sub("", s)
    return s
