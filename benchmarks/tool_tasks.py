"""Tool-call accuracy on a small fixed set of tool tasks, per head and for the council.

Each task is a question, the same five function tools, and the one call that answers it
(a function name and the arguments that matter). The council is asked with `tools` and
`tool_choice` (default `required`); from the ballot (meta.votes) each head's own proposal is
scored, and the council's decided call (verdict.tool_calls). A call is right when its name is
the expected one and each expected argument is there with the expected value (strings
compared case-insensitively and trimmed, numbers by value); extra optional arguments are
allowed. A head whose proposal was excluded (arguments its schema refused, or text where a
call was required) scores wrong, and so does the council when no head made a valid call.

    python benchmarks/tool_tasks.py [--configured] [--tool-choice required|auto]
                                    [--items 12] [--max-tokens 96] [--strategy vote]
                                    [--heads N]

By default it runs the packaged catalogue's model heads (the default model's personas; tool
heads left out: they do not propose calls); --configured runs the heads of your settings
(COUNCIL_CONFIG), e.g. `openai` heads next to local ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from council.config import Settings, load_settings, packaged_catalogue
from council.council import Council
from council.errors import NoAnswerError
from council.types import GenParams


def fn(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": required},
        },
    }


S, N = {"type": "string"}, {"type": "number"}
TOOLS = [
    fn("get_weather", "Current weather in a city.",
       {"city": S, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
    fn("get_time", "Current local time in a city.", {"city": S}, ["city"]),
    fn("convert_currency", "Convert an amount between currencies (ISO codes).",
       {"amount": N, "from_currency": S, "to_currency": S},
       ["amount", "from_currency", "to_currency"]),
    fn("search_flights", "Find flights between two cities on a date (YYYY-MM-DD).",
       {"origin": S, "destination": S, "date": S}, ["origin", "destination", "date"]),
    fn("send_email", "Send an email.", {"to": S, "subject": S, "body": S}, ["to", "subject"]),
]  # fmt: skip


@dataclass(frozen=True)
class ToolTask:
    question: str
    name: str
    args: dict[str, Any]


TASKS = [
    ToolTask("What's the weather like in Paris right now?", "get_weather", {"city": "Paris"}),
    ToolTask("Is it cold in Oslo today? Give it in fahrenheit.", "get_weather",
             {"city": "Oslo", "unit": "fahrenheit"}),
    ToolTask("What time is it in Tokyo?", "get_time", {"city": "Tokyo"}),
    ToolTask("Tell me the current time in Lima.", "get_time", {"city": "Lima"}),
    ToolTask("Convert 100 USD to EUR.", "convert_currency",
             {"amount": 100, "from_currency": "USD", "to_currency": "EUR"}),
    ToolTask("How many yen is 25 pounds sterling (GBP to JPY)?", "convert_currency",
             {"amount": 25, "from_currency": "GBP", "to_currency": "JPY"}),
    ToolTask("Find me flights from Berlin to Rome on 2026-05-01.", "search_flights",
             {"origin": "Berlin", "destination": "Rome", "date": "2026-05-01"}),
    ToolTask("Any flights Madrid to Lisbon on 2026-12-24?", "search_flights",
             {"origin": "Madrid", "destination": "Lisbon", "date": "2026-12-24"}),
    ToolTask("Email bob@example.com with the subject 'Lunch' and say see you at noon.",
             "send_email", {"to": "bob@example.com", "subject": "Lunch"}),
    ToolTask("Send ana@example.org an email titled 'Report'.", "send_email",
             {"to": "ana@example.org", "subject": "Report"}),
    ToolTask("Weather in Cairo, in celsius please.", "get_weather",
             {"city": "Cairo", "unit": "celsius"}),
    ToolTask("What's the local time in Nairobi?", "get_time", {"city": "Nairobi"}),
]  # fmt: skip


def same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b)
    return bool(a == b)


def right(task: ToolTask, calls: list[dict[str, Any]] | None) -> bool:
    """One call to the expected function with the expected arguments (extra optional ones
    allowed)."""
    if not calls or len(calls) != 1:
        return False
    call = calls[0]["function"]
    try:
        args = json.loads(call["arguments"])
    except ValueError:
        return False
    return call["name"] == task.name and all(
        k in args and same(args[k], v) for k, v in task.args.items()
    )


def settings_for(configured: bool, n_heads: int | None) -> Settings:
    if configured:
        return load_settings(memory=False)
    heads = [h for h in packaged_catalogue() if h.kind != "tool"][:n_heads]
    return Settings(heads=heads, memory=False, embedder="none", fact_head="none")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    council = Council(settings_for(args.configured, args.heads))
    await council.start()
    scores: dict[str, list[bool]] = {}
    why: list[str] = []  # the first few reasons no head made a valid call
    started = time.perf_counter()
    try:
        for task in TASKS[: args.items]:
            try:
                v = await council.ask(
                    [{"role": "user", "content": task.question}],
                    strategy=args.strategy,
                    params=GenParams(temperature=0.0, max_tokens=args.max_tokens),
                    tools=TOOLS,
                    tool_choice=args.tool_choice,
                    record=False,
                )
            except NoAnswerError as exc:  # no head made a valid call: each head scores wrong
                for h in ["council", *(h.id for h in council.enabled)]:
                    scores.setdefault(h, []).append(False)
                why.append(str(exc)[:400])
                continue
            for vote in v.votes:
                ok = vote.error is None and right(task, vote.tool_calls)
                scores.setdefault(vote.head, []).append(ok)
            decided = [c.to_openai() for c in v.tool_calls] if v.tool_calls else None
            scores.setdefault("council", []).append(right(task, decided))
    finally:
        await council.close()
    return {
        "items": min(args.items, len(TASKS)),
        "tool_choice": args.tool_choice,
        "seconds": round(time.perf_counter() - started, 1),
        "accuracy": {who: round(sum(s) / len(s), 3) for who, s in scores.items()},
        "no_valid_call": why[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configured", action="store_true", help="the heads of COUNCIL_CONFIG")
    parser.add_argument("--tool-choice", default="required", choices=["required", "auto"])
    parser.add_argument("--items", type=int, default=len(TASKS))
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--strategy", default="vote")
    parser.add_argument("--heads", type=int, default=None, help="the catalogue's first N heads")
    report = asyncio.run(run(parser.parse_args()))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
