"""SQL for the learning tables (examples, harvests, hold-out), over the memory Store."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from council.learning.quality import content_hash, normalise
from council.memory.store import ExchangeRecord, Store
from council.types import Message


def insert_example(
    db: Any, *, source: str, exchange_ids: list[str], messages: list[Message], response: str,
    quality: float, reasoning: str | None = None, task_type: str | None = None,
    models_agreed: bool | None = None, user_feedback: int | None = None,
    signals: dict[str, Any] | None = None, vector: np.ndarray | None = None,
) -> int:  # fmt: skip
    prompt = "\n".join(m.content for m in messages if m.role == "user")
    cur = db.execute(
        "INSERT INTO examples (source, exchange_ids_json, messages_json, response, reasoning, "
        "quality, task_type, models_agreed, user_feedback, signals_json, content_hash, vector, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            source, json.dumps(exchange_ids), json.dumps([asdict(m) for m in messages]),
            response, reasoning, quality, task_type,
            None if models_agreed is None else int(models_agreed), user_feedback,
            json.dumps(signals or {}), content_hash(prompt, response),
            None if vector is None else np.asarray(vector, np.float32).tobytes(), time.time(),
        ),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def record_harvest(
    store: Store,
    *,
    original_id: str,
    rewrite: ExchangeRecord,
    memory: tuple[str, np.ndarray],
    accepted: bool,
    quality: float,
    signals: dict[str, Any],
    agent: str,
    example: dict[str, Any] | None,
) -> tuple[int | None, int | None]:
    """Rewrite exchange, harvest row and example in ONE transaction (no half-written example).

    Returns (memory id of the rewrite, example id or None when rejected)."""
    with store.tx() as db:
        memory_id = store.write_record(db, rewrite, memory)
        db.execute(
            "INSERT INTO harvests (exchange_id, status, rewrite_id, quality, signals_json, agent, "
            "harvested_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (original_id, "accepted" if accepted else "rejected", rewrite.id, quality,
             json.dumps(signals), agent, time.time()),
        )  # fmt: skip
        example_id = insert_example(db, **example) if example is not None and accepted else None
    return memory_id, example_id


def add_example(store: Store, **fields: Any) -> int:
    with store.tx() as db:
        return insert_example(db, **fields)


def register_holdout(
    store: Store, items: list[str], family: str | None = None, vectors: np.ndarray | None = None
) -> int:
    """Mark items as hold-out (the gauntlet's): training data may never contain them."""
    with store.tx() as db:
        for i, text in enumerate(items):
            db.execute(
                "INSERT OR IGNORE INTO holdout (content_hash, text, family, vector, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (content_hash(text), normalise(text), family,
                 None if vectors is None else vectors[i].astype(np.float32).tobytes(), time.time()),
            )  # fmt: skip
    return len(items)


def examples(store: Store, min_quality: float = 0.0) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT id, source, exchange_ids_json, messages_json, response, reasoning, quality, "
        "task_type, models_agreed, user_feedback, signals_json, content_hash, created_at "
        "FROM examples WHERE quality >= ? ORDER BY id",
        (min_quality,),
    )
    out = []
    for r in rows:
        d = dict(r)
        for key in ("exchange_ids", "messages", "signals"):
            d[key] = json.loads(d.pop(f"{key}_json"))
        out.append(d)
    return out
