"""The saved form of a vector index: the FAISS file and its JSON sidecar, written atomically
and checked against each other on load (a mismatch means the index is rebuilt from SQLite)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from council.errors import CouncilError
from council.memory.faiss_views import ids_of, kind_of

FORMAT = 1


class IndexCorrupt(CouncilError):
    """The saved index cannot be trusted; rebuild it from the store."""


def write_files(
    tmp_index: Path, tmp_sidecar: Path, meta: dict[str, Any], path: Path, sidecar: Path
) -> None:
    """Sidecar beside an already written tmp index; both fsynced, then renamed into place."""
    fsync(tmp_index)
    meta = meta | {"format": FORMAT, "index_bytes": tmp_index.stat().st_size}
    tmp_sidecar.write_text(json.dumps(meta, indent=1))
    fsync(tmp_sidecar)
    # Index first: a crash between the two replaces leaves a sidecar that disagrees with
    # the index, which read_files() reports as corrupt, and the store rebuilds it.
    os.replace(tmp_index, path)
    os.replace(tmp_sidecar, sidecar)


def read_files(path: Path, sidecar: Path, dim: int) -> tuple[Any, dict[str, Any]]:
    """The saved index and its sidecar, or IndexCorrupt saying why they can't be trusted."""
    meta = read_sidecar(path, sidecar, dim)
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise corrupt(path, f"FAISS cannot read it ({str(exc).splitlines()[-1]})") from exc
    if not isinstance(index, faiss.IndexIDMap2) or kind_of(index) is None:
        raise corrupt(path, f"it holds a {type(index).__name__}, not an IDMap2 over IP")
    ids = ids_of(index)
    found = {
        "count": index.ntotal,
        "max_id": int(ids[-1]) if len(ids) else -1,
        "dim": index.d,
        "kind": kind_of(index),
    }
    wrong = {key: (meta[key], got) for key, got in found.items() if meta[key] != got}
    if wrong:
        detail = ", ".join(
            f"{key} {want} vs {got} in the index" for key, (want, got) in wrong.items()
        )
        raise corrupt(path, f"its sidecar disagrees: {detail}")
    if len(ids) > 1 and np.any(ids[1:] <= ids[:-1]):
        raise corrupt(path, "its ids are not strictly increasing")
    return index, meta


def read_sidecar(path: Path, sidecar: Path, dim: int) -> dict[str, Any]:
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise corrupt(path, f"its sidecar {sidecar} is missing or unreadable ({exc})") from exc
    keys = {"count": int, "max_id": int, "dim": int, "kind": str, "fingerprint": str}
    if not isinstance(meta, dict) or any(
        not isinstance(meta.get(key), typ) for key, typ in keys.items()
    ):
        raise corrupt(path, f"its sidecar {sidecar} lacks {', '.join(keys)}")
    if meta.get("dim") != dim:
        raise corrupt(path, f"it holds {meta['dim']}-d vectors; this index wants {dim}")
    size = path.stat().st_size
    if meta.get("index_bytes") != size:
        raise corrupt(
            path, f"it is {size} bytes; the sidecar says {meta.get('index_bytes')} (truncated?)"
        )
    return meta


def corrupt(path: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"Vector index {path} is unusable: {why}. It will be rebuilt from the store "
        "(SQLite keeps every vector); delete the file to rebuild it by hand."
    )


def fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
