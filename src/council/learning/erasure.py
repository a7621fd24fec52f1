"""Erasure of a user's exchanges from what learning built from them: the `examples` rows and
the lines of every frozen dataset version (its train.jsonl and manifest rewritten in place).

Runs inside the caller's transaction (facts' "forget everything"); the files are replaced one
by one (os.replace), and the version keeps its name, with `erased` counting the lines removed,
so the manifest says it no longer holds what it first held. Adapters already trained on a
version are weights, not rows: they are not retrained here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import Counter
from pathlib import Path

from council.learning.datasets import histogram


def erase_exchanges(db: sqlite3.Connection, exchange_ids: set[str]) -> dict[str, int]:
    """Delete the examples built from any of `exchange_ids` and their frozen lines."""
    if not exchange_ids:
        return {"examples": 0, "dataset_lines": 0}
    rows = db.execute("SELECT id, exchange_ids_json FROM examples").fetchall()
    gone = [(i,) for i, ids in rows if set(json.loads(ids)) & exchange_ids]
    db.executemany("DELETE FROM examples WHERE id = ?", gone)
    lines = 0
    for version, path in db.execute("SELECT version, path FROM datasets").fetchall():
        lines += _rewrite(db, version, Path(path), exchange_ids)
    return {"examples": len(gone), "dataset_lines": lines}


def _rewrite(db: sqlite3.Connection, version: str, folder: Path, ids: set[str]) -> int:
    train, manifest_path = folder / "train.jsonl", folder / "manifest.json"
    if not train.exists() or not manifest_path.exists():
        return 0
    kept = [json.loads(line) for line in train.read_text().splitlines() if line]
    before = len(kept)
    kept = [x for x in kept if not set(x.get("exchange_ids") or []) & ids]
    if len(kept) == before:
        return 0
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in kept).encode()
    manifest = json.loads(manifest_path.read_text())
    items = [i for i in manifest.get("items", []) if not set(i["exchange_ids"]) & ids]
    manifest.update(
        examples=len(kept),
        train_sha256=hashlib.sha256(body).hexdigest(),
        items=items,
        quality_histogram=histogram([i["quality"] for i in items]),
        sources=dict(Counter(x["source"] for x in kept)),
        task_types=dict(Counter(x["task_type"] or "general" for x in kept)),
        erased=int(manifest.get("erased", 0)) + before - len(kept),
    )
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    _replace(train, body)
    _replace(manifest_path, manifest_bytes)
    db.execute(
        "UPDATE datasets SET examples = ?, manifest_sha256 = ? WHERE version = ?",
        (len(kept), hashlib.sha256(manifest_bytes).hexdigest(), version),
    )
    return before - len(kept)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".erasing")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
