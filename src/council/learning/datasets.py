"""Frozen dataset versions: immutable JSONL + manifest, each example traceable to exchanges.

Each version has two splits: train.jsonl and heldout.jsonl (a stable share of the questions,
learning/heldout.py); the manifest names both.

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
from council.learning import heldout, ledger
from council.learning.ledger import content_hash, examples
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


def _items(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("content_hash", "exchange_ids", "quality")
    return [{"example_id": r["id"], **{k: r[k] for k in keys}} for r in rows]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(_line(r), ensure_ascii=False) + "\n" for r in rows).encode()


def freeze(
    store: Store, root: Path, *, min_quality: float = 0.7, sources: list[str] | None = None,
    heldout_share: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """Write a new immutable version of every example ≥ min_quality (optionally only from
    some sources), split into train and held-out (learning/heldout.py); returns its manifest.

    The cycle and `council dataset freeze` pass settings.learning.heldout_share (20 % by
    default); 0 holds nothing new out, but questions held out earlier stay out."""
    rows = [r for r in examples(store, min_quality) if sources is None or r["source"] in sources]
    leaked = ledger.leaked_example_ids(store)
    rows = [r for r in rows if r["id"] not in leaked]
    if not rows:
        raise DatasetError(
            f"No examples with quality >= {min_quality} to freeze. Run `council harvest` "
            "(or collect examples) first, or lower --min-quality."
        )
    parts = heldout.split(rows, heldout_share, ledger.heldout_hashes(store))
    if not parts.train:
        raise DatasetError(
            f"All {len(rows)} examples are held out (questions kept for judging adapters, "
            "never trained on): wait for more traffic, or lower COUNCIL_HELDOUT_SHARE."
        )
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".freeze-*"):  # leftovers of an interrupted freeze
        shutil.rmtree(stale, ignore_errors=True)
    body, held = _jsonl(parts.train), _jsonl(parts.heldout)
    digest = hashlib.sha256(body).hexdigest()
    version = f"ds-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{digest[:8]}"
    train = parts.train
    manifest = {
        "version": version,
        "created_at": time.time(),
        "min_quality": min_quality,
        "examples": len(train),  # what training reads
        "train_sha256": digest,
        "quality_histogram": histogram([r["quality"] for r in train]),
        "sources": dict(Counter(r["source"] for r in train)),
        "task_types": dict(Counter(r["task_type"] or "general" for r in train)),
        "splits": {
            "train": {"file": "train.jsonl", "examples": len(train), "sha256": digest},
            "heldout": {
                "file": "heldout.jsonl",
                "examples": len(parts.heldout),
                "sha256": hashlib.sha256(held).hexdigest(),
                "share": heldout_share,
                "held_out_earlier": parts.earlier,
                "sources": dict(Counter(r["source"] for r in parts.heldout)),
            },
        },
        "items": _items(train),
        "heldout_items": _items(parts.heldout),
    }
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    tmp = Path(tempfile.mkdtemp(prefix=".freeze-", dir=root))
    try:
        files = (("train.jsonl", body), ("heldout.jsonl", held), ("manifest.json", manifest_bytes))
        for name, data in files:
            with (tmp / name).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        final = root / version
        with store.tx() as db:
            ledger.insert_dataset(
                db, manifest, str(final), hashlib.sha256(manifest_bytes).hexdigest()
            )
            ledger.insert_heldout(db, version, [
                (heldout.question_hash(r), heldout.question_of(r), r) for r in parts.heldout
            ])  # fmt: skip
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


def _folder(store: Store, version: str) -> Path:
    path = ledger.dataset_path(store, version)
    if path is None:
        known = ", ".join(d["version"] for d in list_datasets(store)) or "none yet"
        raise DatasetError(f"No dataset {version!r}. Known: {known} (`council dataset freeze`).")
    return Path(path)


def _read(folder: Path, name: str, sha256: str) -> list[dict[str, Any]]:
    body = (folder / name).read_bytes()
    if hashlib.sha256(body).hexdigest() != sha256:
        raise DatasetError(f"{folder}/{name} does not match its manifest: it was modified.")
    return [json.loads(line) for line in body.decode().splitlines() if line]


def load_dataset(store: Store, version: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, training rows) of a frozen version, checking the file against the manifest
    hash. Questions held out since (by this or a later version) are left out: never trained."""
    folder = _folder(store, version)
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = _read(folder, "train.jsonl", manifest["train_sha256"])
    kept_out = ledger.heldout_hashes(store)
    return manifest, [r for r in rows if content_hash(r["instruction"]) not in kept_out]


def load_heldout(store: Store, version: str) -> list[dict[str, Any]]:
    """The held-out split of a version (none for versions frozen before splits existed)."""
    folder = _folder(store, version)
    manifest = json.loads((folder / "manifest.json").read_text())
    split = manifest.get("splits", {}).get("heldout")
    return [] if split is None else _read(folder, split["file"], split["sha256"])
