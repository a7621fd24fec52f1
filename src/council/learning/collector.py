"""The continuous-learning collector (seed 003): examples past the quality bar and the gate;
statistics, export for fine-tuning, and distillation from the ensemble. The seed's
`get_learner()` is in compat.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from council.config import Settings
from council.embeddings import Embedder, make_embedder
from council.learning.datasets import histogram
from council.learning.ledger import add_example, examples
from council.learning.quality import Gate
from council.memory.store import Store
from council.storage import open_store
from council.types import Message, as_messages

READY_AT = 100  # the seed: "minimum 100 examples" for a hosted fine-tune


class Learner:
    def __init__(self, settings: Settings, store: Store | None = None,
                 embedder: Embedder | None = None):  # fmt: skip
        self.settings = settings
        self.store = store or open_store(settings)
        self.embedder = embedder or make_embedder(settings.memory.embedder, settings.heads.threads)
        self.gate = Gate(self.store, settings.learning.near_duplicate)

    def collect_example(
        self, messages: list[dict[str, Any]] | list[Message] | str, response: str,
        quality_score: float, task_type: str = "general", models_agreed: bool | None = None,
        user_feedback: int | None = None, *, exchange_ids: list[str] | None = None,
        source: str = "collector", reasoning: str | None = None,
    ) -> int | None:  # fmt: skip
        """Keep a training example if it clears the quality bar and the gate; returns its id."""
        msgs = as_messages(messages)
        if quality_score < self.settings.learning.quality_threshold:
            return None
        prompt = "\n".join(m.content for m in msgs if m.role == "user")
        vector = self.embedder.encode([f"{prompt}\n{response}"])[0] if self.embedder else None
        ok, _ = self.gate.admit(prompt, response, vector)
        if not ok:
            return None
        return add_example(
            self.store, source=source, exchange_ids=exchange_ids or [], messages=msgs,
            response=response, quality=quality_score, reasoning=reasoning, task_type=task_type,
            models_agreed=models_agreed, user_feedback=user_feedback, vector=vector,
        )  # fmt: skip

    def get_learning_stats(self) -> dict[str, Any]:
        rows = examples(self.store)
        q = [r["quality"] for r in rows]
        return {
            "total_examples": len(rows),
            "high_quality": sum(1 for v in q if v > 0.8),
            "average_quality": round(sum(q) / len(q), 4) if q else 0.0,
            "examples_with_feedback": sum(1 for r in rows if r["user_feedback"] is not None),
            "quality_distribution": histogram(q),
            "task_distribution": dict(Counter(r["task_type"] or "general" for r in rows)),
            "sources": dict(Counter(r["source"] for r in rows)),
            "ready_for_finetuning": len(rows)
            >= max(READY_AT, self.settings.learning.min_failures_to_train),
            "ready_for_lora": len(rows) >= self.settings.learning.min_failures_to_train,
        }

    def export_for_finetuning(
        self, output_file: str | Path, format: str = "openai", min_quality: float = 0.8
    ) -> int:
        """Write examples ≥ min_quality as JSONL: OpenAI chat format or HF instruction format."""
        if format not in ("openai", "hf"):
            raise ValueError("format must be 'openai' or 'hf'")
        rows = examples(self.store, min_quality)
        path = Path(output_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            for r in rows:
                if format == "openai":
                    line: dict[str, Any] = {
                        "messages": [
                            *r["messages"],
                            {"role": "assistant", "content": r["response"]},
                        ]
                    }
                else:
                    line = {
                        "instruction": "\n".join(
                            m["content"] for m in r["messages"] if m["role"] == "user"
                        ),
                        "output": r["response"],
                        "reasoning": r["reasoning"],
                        "quality_score": r["quality"],
                        "task_type": r["task_type"],
                    }
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return len(rows)


class KnowledgeDistillation:
    """Run a task list through the ensemble and keep the high-quality answers as examples."""

    def __init__(self, learner: Learner):
        self.learner = learner

    async def distill_from_ensemble(
        self, tasks: list[str], ensemble: Any, task_type: str = "general"
    ) -> list[int]:
        from council.verify import verify_answer

        kept = []
        council = getattr(ensemble, "council", ensemble)
        for task in tasks:
            v = await council.ask(task, task_type=task_type, record=False)
            checked = verify_answer(task, v.answer)
            if checked is False:
                continue
            quality = 1.0 if checked else v.confidence
            got = self.learner.collect_example(
                [{"role": "user", "content": task}], v.answer, quality, v.task_type,
                models_agreed=v.confidence >= self.learner.settings.routing.success_threshold,
                source="distill",
            )  # fmt: skip
            if got is not None:
                kept.append(got)
        return kept
