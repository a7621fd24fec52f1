"""Frozen dataset versions: immutable JSONL + manifest, each example traceable to exchanges.

Freezing writes into a hidden temporary folder, records the version in SQLite and renames
the folder into place inside that transaction: an interrupted freeze leaves no version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from council.errors import DatasetError
from council.learning import ledger
from council.learning.ledger import examples
from council.memory.store import Store

BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def _line(ex: dict[str, Any]) -> dict[str, Any]:
    prompt = ex["messages"]
    instruction = "\n".join(m["content"] for m in prompt if m["role"] == "user")
    return {
        "messages": [*prompt, {"role": "assistant", "content": ex["response"]}],
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": ex["response"]}],
        "instruction": instruction,
        "output": ex["response"],
        "reasoning": ex["reasoning"],
        "quality_score": ex["quality"],
        "task_type": ex["task_type"],
        "source": ex["source"],
        "example_id": ex["id"],
        "exchange_ids": ex["exchange_ids"],
        "content_hash": ex["content_hash"],
    }


def histogram(values: list[float]) -> dict[str, int]:
    out = {}
    for lo, hi in pairwise(BINS):
        out[f"{lo:.1f}-{min(hi, 1.0):.1f}"] = sum(1 for v in values if lo <= v < hi)
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def freeze(
    store: Store, root: Path, *, min_quality: float = 0.7, sources: list[str] | None = None
) -> dict[str, Any]:
    """Write a new immutable version of every example ≥ min_quality (optionally only from
    some sources); returns its manifest."""
    rows = [r for r in examples(store, min_quality) if sources is None or r["source"] in sources]
    leaked = ledger.leaked_example_ids(store)
    rows = [r for r in rows if r["id"] not in leaked]
    if not rows:
        raise DatasetError(
            f"No examples with quality >= {min_quality} to freeze. Run `council harvest` "
            "(or collect examples) first, or lower --min-quality."
        )
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".freeze-*"):  # leftovers of an interrupted freeze
        shutil.rmtree(stale, ignore_errors=True)
    lines = [json.dumps(_line(r), ensure_ascii=False) for r in rows]
    body = ("\n".join(lines) + "\n").encode()
    digest = hashlib.sha256(body).hexdigest()
    version = f"ds-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{digest[:8]}"
    manifest = {
        "version": version,
        "created_at": time.time(),
        "min_quality": min_quality,
        "examples": len(rows),
        "train_sha256": digest,
        "quality_histogram": histogram([r["quality"] for r in rows]),
        "sources": dict(Counter(r["source"] for r in rows)),
        "task_types": dict(Counter(r["task_type"] or "general" for r in rows)),
        "items": [
            {
                "example_id": r["id"],
                "content_hash": r["content_hash"],
                "exchange_ids": r["exchange_ids"],
                "quality": r["quality"],
            }
            for r in rows
        ],
    }
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    tmp = Path(tempfile.mkdtemp(prefix=".freeze-", dir=root))
    try:
        for name, data in (("train.jsonl", body), ("manifest.json", manifest_bytes)):
            with (tmp / name).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        final = root / version
        with store.tx() as db:
            ledger.insert_dataset(
                db, manifest, str(final), hashlib.sha256(manifest_bytes).hexdigest()
            )
            tmp.rename(final)  # inside the transaction: a version exists only when both do
            _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def list_datasets(store: Store) -> list[dict[str, Any]]:
    return ledger.dataset_rows(store)


def latest_version(store: Store) -> str:
    version = ledger.latest_dataset(store)
    if version is None:
        raise DatasetError(
            "No frozen dataset yet: run `council harvest` and `council dataset freeze` first."
        )
    return version


def load_dataset(store: Store, version: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, rows) of a frozen version, checking the file against the manifest hash."""
    path = ledger.dataset_path(store, version)
    if path is None:
        known = ", ".join(d["version"] for d in list_datasets(store)) or "none yet"
        raise DatasetError(f"No dataset {version!r}. Known: {known} (`council dataset freeze`).")
    folder = Path(path)
    manifest = json.loads((folder / "manifest.json").read_text())
    body = (folder / "train.jsonl").read_bytes()
    if hashlib.sha256(body).hexdigest() != manifest["train_sha256"]:
        raise DatasetError(f"{folder}/train.jsonl does not match its manifest: it was modified.")
    return manifest, [json.loads(line) for line in body.decode().splitlines() if line]
