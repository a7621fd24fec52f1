"""Structured output on the default model: how many answers are valid under a JSON schema with
and without the grammar (llguidance, structured/grammar.py), and what the grammar costs in
tokens/s, on the continuous engine one row at a time (so the overhead is per token, not hidden
in a batch).

    python benchmarks/structured.py [--max-tokens 96] [--threads 2] [--repeats 1]
                                    [--models-dir DIR]

Each schema's prompt shows the schema, so the model without a grammar has its fair chance.
Prints a RESULT line (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers
from tests.helpers import convert_default_model

from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.structured.canonical import check_answer
from council.types import Message

SCHEMAS: list[tuple[str, dict[str, Any], str]] = [
    (
        "person",
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
         "required": ["name", "age"], "additionalProperties": False},
        "Give me a made-up person.",
    ),
    (
        "weather",
        {"type": "object", "properties": {"city": {"type": "string"},
         "temperature": {"type": "number"}, "sunny": {"type": "boolean"}},
         "required": ["city", "temperature", "sunny"], "additionalProperties": False},
        "What is the weather like in Paris today?",
    ),
    (
        "sentiment",
        {"type": "object", "properties": {
            "label": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1}},
         "required": ["label", "score"], "additionalProperties": False},
        "Classify the sentiment of: 'I loved this film, the actors were great.'",
    ),
    (
        "todo",
        {"type": "object", "properties": {"title": {"type": "string"}, "done": {"type": "boolean"},
         "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
         "required": ["title", "done", "tags"], "additionalProperties": False},
        "Make a to-do item for buying milk.",
    ),
    ("object", {}, "Describe your favourite book."),
]  # fmt: skip


def prompt(schema: dict[str, Any], task: str) -> list[Message]:
    shape = json.dumps(schema) if schema else "any JSON object"
    return [Message("user", f"{task} Reply with only a JSON object matching: {shape}")]


async def run(model: LocalModel, grammar: bool, max_tokens: int, repeats: int) -> dict:
    valid = tokens = 0
    seconds = 0.0
    samples = {}
    for _ in range(repeats):
        for name, schema, task in SCHEMAS:
            row = Row([], messages=prompt(schema, task), max_new_tokens=max_tokens)
            started = time.perf_counter()
            if grammar:
                [row.constraint] = await model.constraints(schema, 1)
            [r] = await model.generate([row])
            seconds += time.perf_counter() - started
            tokens += r.tokens_out
            ok = check_answer(r.text, schema).canonical is not None
            valid += ok
            samples[name] = r.text[:120]
            label = "with" if grammar else "without"
            print(f"{name} {label} grammar: valid={ok} {r.tokens_out} tokens", flush=True)
    n = repeats * len(SCHEMAS)
    share, rate = round(valid / n, 3), round(tokens / seconds, 2)
    return {"valid": valid, "answers": n, "valid_share": share, "tokens": tokens,
            "tokens_per_s": rate, "samples": samples}  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--models-dir", type=Path, help="keep the converted model here (reused)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = convert_default_model(args.models_dir or Path(tmp))
        model = LocalModel(folder, threads=args.threads)
        await model.ensure_loaded()
        await model.constraints({}, 1)  # the tokenizer's one-off llguidance build, not timed
        without = await run(model, False, args.max_tokens, args.repeats)
        with_ = await run(model, True, args.max_tokens, args.repeats)
        model.close()
    for label, res in (("without grammar", without), ("with grammar", with_)):
        print(f"{label}: {res['valid']}/{res['answers']} valid, {res['tokens_per_s']} tokens/s")
        for name, text in res["samples"].items():
            print(f"  {name}: {text!r}")
    overhead = 1 - with_["tokens_per_s"] / without["tokens_per_s"]
    result = {
        "valid_share_without": without["valid_share"],
        "valid_share_with": with_["valid_share"],
        "tokens_per_s_without": without["tokens_per_s"],
        "tokens_per_s_with": with_["tokens_per_s"],
        "overhead": round(overhead, 3),
        "schemas": [name for name, _, _ in SCHEMAS],
        "max_tokens": args.max_tokens,
    }
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
