"""Candidate facts from one user turn: the fact head's list, else the turn itself.

The head (often the small local model) may fail or ramble; its list is used only when every
line is short, not a question, and grounded in the turn (shares a content word with it).
Otherwise the fallback keeps the user's own sentences that read as statements about themselves,
verbatim, so nothing the user said is lost.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from council.prompts import load_prompt
from council.types import Message

# A head asked with these messages; None when it failed (the caller logs and counts why).
AskHead = Callable[[list[Message]], Awaitable[str | None]]

MAX_FACTS = 8
MAX_FACT_CHARS = 240
# The user as the one who is, has or does something ("me"/"us" alone are objects of requests).
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|im|my|mine|myself|we|we're|our|ours)\b", re.I)
_QUESTION_START = re.compile(
    r"^\s*(what|who|whom|whose|where|when|why|how|which|do|does|did|is|are|was|were|can|could"
    r"|would|should|will|shall|may|have|has|tell me)\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = (
    "i me my mine we our us you your the a an and or but is are was were be been am to of in on "
    "at for with about that this it its as by from fact facts user users has have had do does "
    "not no so very please remember"
)
_STOP = frozenset(_STOPWORDS.split())


# Requests: an imperative, or a first-person wish aimed at the assistant ("I'd like a ...").
_LEAD = r"^\s*(?:(?:ok(?:ay)?|so|now|and|then|also|please|hey|hi|pls)\b[\s,!.]*)*"
_REQUEST = re.compile(
    _LEAD + r"(?:give|tell|write|explain|make|show|list|help|summari[sz]e|translate|create"
    r"|find|generate|draft|describe|suggest|compare|fix|rewrite|convert|calculate|recommend"
    r"|plan|name|check|send|book|remind|draw|sort|count|define|imagine|continue|repeat|shorten"
    r"|expand|simplify|proofread|edit|answer|solve|teach|brainstorm|let'?s|let me|go ahead)\b"
    r"|\b(?:i|we)\s+(?:want|need|would like|'d like|wish)\s+(?:you|u)\b"
    r"|^\s*(?:i|we)\s*(?:'d| would)\s+like\s+(?:a|an|the|some|more|to (?:see|know|get|have))\b"
    r"|^\s*(?:i|we)\s+(?:want|need)\s+(?:a|an|some|more|to know)\s",
    re.I,
)
# Chit-chat: thanks, acknowledgements, hedges, passing moods.
_CHAT = re.compile(
    _LEAD + r"(?:thanks|thank you|thx|cheers|ok|okay|sure|cool|great|nice|lol|haha|yes|yeah"
    r"|no|nope|good (?:morning|night|evening)|bye|i see|i agree|i think|i guess|i suppose"
    r"|i wonder|i'm not sure|i am not sure|i mean|i don't (?:know|remember)|i can't remember"
    r"|i forgot|i dunno|i hope)\b"
    r"|^\s*(?:i'm|i am|im)\s+(?:feeling\s+)?(?:(?:a bit|so|very|really|quite|kind of)\s+)?"
    r"(?:tired|hungry|bored|busy|sleepy|confused|lost|back|here|done|stressed|sad|happy|excited"
    r"|ready|fine|good|okay|ok)\b[^,;]*$",
    re.I,
)
_REMEMBER = re.compile(r"\b(?:remember|keep in mind|don't forget|make a note)\b", re.I)
_FORGOT = re.compile(r"\b(?:don't|do not|can't|cannot|didn't|couldn't|never)\s+remember\b", re.I)


def is_self_statement(sentence: str) -> bool:
    """A statement about the user (first person), or one they asked to be remembered; not a
    question, a request to the assistant, or chit-chat."""
    s = sentence.strip()
    if len(s) < 4 or s.endswith("?") or _QUESTION_START.match(s):
        return False
    if _REMEMBER.search(s) and not _FORGOT.search(s):
        return True
    if _REQUEST.search(s) or _CHAT.search(s):
        return False
    return bool(_FIRST_PERSON.search(s))


def fallback(text: str) -> list[str]:
    """The turn's own sentences that read as self-statements, verbatim."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    return [s[:MAX_FACT_CHARS] for s in sentences if is_self_statement(s)][:MAX_FACTS]


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def parse(reply: str, turn: str) -> list[str] | None:
    """The head's facts; [] for NONE; None when the reply is not a usable list."""
    lines = [_BULLET.sub("", line).strip() for line in reply.strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return None
    if len(lines) == 1 and lines[0].strip(" .").upper() == "NONE":
        return []
    words = _content(turn)
    if len(lines) > MAX_FACTS:
        return None
    for line in lines:
        if len(line) > MAX_FACT_CHARS or line.endswith("?") or not (_content(line) & words):
            return None
    return lines


async def extract(text: str, ask: AskHead | None) -> tuple[list[str], str]:
    """(facts, how): how is 'head' or 'fallback'. A head's NONE is trusted unless the user
    explicitly asked to be remembered."""
    if ask is not None:
        prompt = load_prompt("facts")
        reply = await ask(
            [
                Message("system", prompt["extract_system"]),
                Message("user", prompt["extract_user"].format(text=text)),
            ]
        )
        facts = parse(reply, text) if reply is not None else None
        if facts is not None and (facts or not re.search(r"\bremember\b", text, re.I)):
            return facts, "head"
    return fallback(text), "fallback"
