"""Task types: a keyword classifier, and picking the heads that specialise in one."""

from __future__ import annotations

import re

from council.config import HeadSpec

TASK_TYPES = ("code", "math", "creative", "reasoning", "general")

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "code",
        re.compile(
            r"```|\b(def|class|function|python|javascript|typescript|rust|golang|java|sql|regex|"
            r"code|compile|bug|stack ?trace|implement|refactor|api|script)\b",
            re.I,
        ),
    ),
    (
        "math",
        re.compile(
            r"\d\s*[-+*/x×÷^]\s*\d|\b(calculate|compute|sum|product|solve|equation|percent|"
            r"how many|how much|multiply|divide|plus|minus|times|integral|derivative)\b",
            re.I,
        ),
    ),
    ("creative", re.compile(r"\b(poem|story|haiku|song|lyrics|limerick|fiction|slogan)\b", re.I)),
    (
        "reasoning",
        re.compile(r"\b(why|explain|compare|analy[sz]e|logic|riddle|puzzle|deduce|prove)\b", re.I),
    ),
]


def classify_task(prompt: str) -> str:
    """The first task type whose pattern matches the prompt, else 'general'."""
    for name, pattern in _RULES:
        if pattern.search(prompt):
            return name
    return "general"


def pick_heads(specs: list[HeadSpec], task_type: str, n: int | None = None) -> list[HeadSpec]:
    """Heads specialised in task_type (best quality first), topped up by quality to n."""
    by_quality = sorted(specs, key=lambda s: -s.quality)
    experts = [s for s in by_quality if task_type in s.specializations]
    rest = [s for s in by_quality if s not in experts]
    want = n if n is not None else max(1, len(experts))
    return (experts + rest)[:want]
