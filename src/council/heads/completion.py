"""Completion-style prompts for base models: a few-shot transcript instead of a chat template.

A base model (Gemma-3-270M as shipped) was never tuned to follow a chat template; it continues
text. A head with `prompt_template = "<name>"` renders the conversation through
prompts/<name>.yaml: a preamble, the conversation's system text as context, the shots, earlier
turns as answered questions, then the question, left open after "A:". The template's stop
strings end the answer before the model writes the next question.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from council.errors import ConfigError
from council.prompts import load_prompt
from council.types import Message


@cache
def template(name: str) -> dict[str, Any]:
    """The named template, checked once: what rendering needs is there."""
    try:
        data: dict[str, Any] = load_prompt(name)
    except FileNotFoundError:
        raise ConfigError(
            f"Unknown prompt_template {name!r}: there is no prompts/{name}.yaml in the "
            "council package. Use 'fewshot_qa', or leave prompt_template unset for the "
            "model's chat template."
        ) from None
    missing = [k for k in ("shot", "question", "stop") if k not in data]
    if missing:
        raise ConfigError(f"prompts/{name}.yaml lacks {', '.join(missing)}; add them.")
    return data


def stops(name: str) -> list[str]:
    """The strings that end an answer under this template."""
    return list(template(name)["stop"])


def render(name: str, messages: list[Message]) -> str:
    """The conversation as a transcript for the model to continue after the last "A:"."""
    t = template(name)
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    parts = [t.get("preamble", "")]
    if system and "context" in t:
        parts.append(t["context"].format(context=system))
    parts += [t["shot"].format(**s) for s in t.get("shots", [])]
    asked: str | None = None
    for m in turns[:-1]:  # earlier turns: answered questions, in the shots' shape
        if m.role == "user":
            asked = m.content.strip()
        elif asked is not None:
            parts.append(t["shot"].format(question=asked, answer=m.content.strip()))
            asked = None
    last = turns[-1].content.strip() if turns else ""
    parts.append(t["question"].format(question=last).rstrip("\n"))
    head = [p if p.endswith("\n") else p + "\n" for p in parts[:-1] if p]
    return "".join(head) + parts[-1]
