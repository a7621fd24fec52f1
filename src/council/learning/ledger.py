"""Learning's storage: its tables (harvests, examples, hold-out, datasets, gauntlet reports),
their migrations and every query of the learning pipeline, over the memory Store, in SQL both
SQLite and Postgres run. The content hash lives here: it keys the examples and hold-out tables.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import unicodedata
from typing import Any

import numpy as np

from council.memory.schema import run_script
from council.memory.store import ExchangeRecord, Store
from council.types import Message


# migrations (council/storage.py orders them) ---------------------------------------------
def m002_learning(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE harvests (                        -- one row per harvested failure
            exchange_id TEXT PRIMARY KEY REFERENCES exchanges(id),
            status TEXT NOT NULL,                      -- accepted | rejected
            rewrite_id TEXT REFERENCES exchanges(id),  -- Agent-0's answer, stored as an exchange
            quality REAL NOT NULL,
            signals_json TEXT NOT NULL,
            agent TEXT NOT NULL,
            harvested_at REAL NOT NULL
        );

        CREATE TABLE examples (                        -- training examples, each traceable
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,                      -- harvest | correction | collector | ...
            exchange_ids_json TEXT NOT NULL,           -- where it came from
            messages_json TEXT NOT NULL,               -- the prompt side (system/user turns)
            response TEXT NOT NULL,                    -- the assistant answer to learn
            reasoning TEXT,
            quality REAL NOT NULL,
            task_type TEXT,
            models_agreed INTEGER,
            user_feedback INTEGER,
            signals_json TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL UNIQUE,         -- exact duplicates are refused
            vector BLOB,                               -- prompt embedding, for near-duplicates
            created_at REAL NOT NULL
        );
        CREATE INDEX examples_quality ON examples(quality);

        CREATE TABLE holdout (                         -- gauntlet items training must never see
            content_hash TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            family TEXT,
            vector BLOB,
            created_at REAL NOT NULL
        );

        CREATE TABLE datasets (                        -- frozen, immutable versions
            version TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            examples INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    )


def m003_gauntlet_reports(db: sqlite3.Connection) -> None:
    """Learning's part of m003_adapters (see council/storage.py)."""
    run_script(
        db,
        """
        CREATE TABLE gauntlet_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            role TEXT NOT NULL,
            champion TEXT,
            challenger TEXT NOT NULL,
            verdict TEXT NOT NULL,
            ratio REAL,
            path TEXT,
            report_json TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    )


def m010_heldout_traffic(db: sqlite3.Connection) -> None:
    """Users' questions no version may train on (learning/heldout.py), kept for the gauntlet."""
    run_script(
        db,
        """
        CREATE TABLE heldout_traffic (
            question_hash TEXT PRIMARY KEY,            -- content_hash of the question
            dataset_version TEXT NOT NULL,             -- the version that first held it out
            example_id INTEGER,
            question TEXT NOT NULL,
            messages_json TEXT NOT NULL,               -- the prompt side, to ask it again
            response TEXT NOT NULL,                    -- the example's answer
            correction TEXT,                           -- the user's, when a 👎 carried one
            source TEXT NOT NULL,
            task_type TEXT,
            created_at REAL NOT NULL
        );
        """,
    )


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text)).strip()


def content_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(normalise(p) for p in parts).encode()).hexdigest()


# examples and harvests -------------------------------------------------------------------


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
            source, json.dumps(exchange_ids), json.dumps([m.stored() for m in messages]),
            response, reasoning, quality, task_type,
            None if models_agreed is None else int(models_agreed), user_feedback,
            json.dumps(signals or {}), content_hash(prompt, response),
            None if vector is None else np.asarray(vector, np.float32).tobytes(), time.time(),
        ),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def record_harvest(
    store: Store, *, original_id: str, rewrite: ExchangeRecord, memory: tuple[str, np.ndarray],
    accepted: bool, quality: float, signals: dict[str, Any], agent: str,
    example: dict[str, Any] | None, supersedes: int | None = None,
) -> tuple[int | None, int | None]:  # fmt: skip
    """Rewrite exchange, harvest row and example in ONE transaction (no half-written example);
    returns (memory id of the rewrite, example id or None when rejected). A late correction's
    re-harvest replaces the harvest row, drops the first harvest's example (`supersedes`: one
    example per exchange) and gives the question's held-out copy, if any, the correction."""
    with store.tx() as db:
        memory_id = store.write_record(db, rewrite, memory)
        if supersedes is not None:
            db.execute("DELETE FROM examples WHERE id = ?", (supersedes,))
        db.execute(
            "INSERT OR REPLACE INTO harvests (exchange_id, status, rewrite_id, quality, "
            "signals_json, agent, harvested_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (original_id, "accepted" if accepted else "rejected", rewrite.id, quality,
             json.dumps(signals), agent, time.time()),
        )  # fmt: skip
        if signals.get("user_correction") is not None and example is not None:
            asked = "\n".join(m.content for m in example["messages"] if m.role == "user")
            db.execute("UPDATE heldout_traffic SET correction = ? WHERE question_hash = ?",
                       (signals["user_correction"], content_hash(asked)))  # fmt: skip
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
                "INSERT INTO holdout (content_hash, text, family, vector, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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


def count_examples(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) FROM examples")[0][0])


def failures(
    store: Store, since: float | None, *, low_confidence: float | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Failed (and optionally low-confidence unlabelled) exchanges not harvested yet, each
    with the newest correction a 👎 gave it (None when none did); and harvested ones whose
    newest correction is not the one their harvest used (a late correction: `supersedes`
    names the example that harvest made, or is None). `since` bounds the exchange's time,
    or for a late correction the correction's."""
    newest = "(SELECT f.{} FROM feedback f WHERE f.exchange_id = e.id AND f.correction IS NOT " \
        "NULL ORDER BY f.id DESC LIMIT 1)"  # fmt: skip
    sql = (
        "SELECT * FROM (SELECT e.id, e.user_id, e.prompt, e.messages_json, e.answer, "
        f"e.task_type, e.created_at, {newest.format('correction')} AS correction, "
        f"{newest.format('created_at')} AS corrected_at, h.exchange_id IS NOT NULL AS late, "
        "json_extract(h.signals_json, '$.user_correction') AS used, (SELECT x.id FROM examples "
        "x WHERE json_extract(x.exchange_ids_json, '$[1]') = h.rewrite_id) AS supersedes "
        "FROM exchanges e LEFT JOIN harvests h ON h.exchange_id = e.id "
        "WHERE e.improved = 0 AND e.role IN ('council', 'single') AND (e.success = 0"
    )
    args: list[Any] = []
    if low_confidence is not None:
        sql += " OR (e.success IS NULL AND e.confidence < ?)"
        args.append(low_confidence)
    sql += ")) AS due WHERE (NOT late AND created_at >= ?) OR (late AND correction IS NOT " \
        "NULL AND (used IS NULL OR correction <> used) AND corrected_at >= ?) ORDER BY " \
        "created_at LIMIT ?"  # fmt: skip
    args += [since or 0.0, since or 0.0, limit if limit is not None else 2**62]
    return [dict(r) for r in store.query(sql, args)]


def successes(store: Store, limit: int = 5000) -> list[dict[str, Any]]:
    """The newest exchanges labelled right (verifier, 👍 or agreement): replay's pool."""
    sql = (
        "SELECT prompt, answer, label_source FROM exchanges WHERE success = 1 AND "
        "improved = 0 AND role IN ('council', 'single') ORDER BY created_at DESC LIMIT ?"
    )
    return [dict(r) for r in store.query(sql, (limit,))]


def holdout_has(store: Store, digest: str) -> bool:
    return bool(store.query("SELECT 1 FROM holdout WHERE content_hash = ?", (digest,)))


def holdout_vectors(store: Store) -> list[Any]:
    """(vector, text) of every hold-out item that has a vector."""
    return store.query("SELECT vector, text FROM holdout WHERE vector IS NOT NULL")


def example_has(store: Store, digest: str, except_id: int | None = None) -> bool:
    sql = "SELECT 1 FROM examples WHERE content_hash = ? AND id <> COALESCE(?, -1)"  # no id -1
    return bool(store.query(sql, (digest, except_id)))


def example_vectors(store: Store, except_id: int | None = None) -> list[Any]:
    """(vector, prompt side + response) of every example that has a vector (but one)."""
    return store.query(
        "SELECT vector, messages_json || ' ' || response FROM examples WHERE vector IS NOT NULL "
        "AND id <> COALESCE(?, -1)",  # `IS NOT ?` is SQLite's alone; ids start at 1
        (except_id,),
    )


# datasets ----------------------------------------------------------------------------------
def leaked_example_ids(store: Store) -> set[int]:
    """Examples whose content is a hold-out item's: never frozen into a dataset."""
    return {
        r[0]
        for r in store.query(
            "SELECT e.id FROM examples e JOIN holdout h ON h.content_hash = e.content_hash"
        )
    }


def insert_dataset(
    db: sqlite3.Connection, manifest: dict[str, Any], path: str, manifest_sha256: str
) -> None:
    """Record a frozen version, inside a transaction the caller holds (see datasets.freeze)."""
    db.execute(
        "INSERT INTO datasets (version, path, examples, manifest_sha256, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (manifest["version"], path, manifest["examples"], manifest_sha256,
         manifest["created_at"]),
    )  # fmt: skip


def dataset_rows(store: Store, *, newest_first: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT * FROM datasets ORDER BY created_at" + (" DESC" if newest_first else "")
    return [dict(r) for r in store.query(sql)]


def latest_dataset(store: Store) -> str | None:
    rows = store.query("SELECT version FROM datasets ORDER BY created_at DESC LIMIT 1")
    return str(rows[0]["version"]) if rows else None


def dataset_path(store: Store, version: str) -> str | None:
    row = store.query("SELECT path FROM datasets WHERE version = ?", (version,))
    return str(row[0][0]) if row else None


def untrained_dataset(store: Store, min_examples: int = 0) -> str | None:
    """The newest dataset, when no adapter was trained on it (reads the adapters table) and
    it has at least `min_examples` to train on (one with fewer waits for more traffic)."""
    rows = store.query(
        "SELECT d.version FROM datasets d LEFT JOIN adapters a ON a.dataset_version = "
        "d.version WHERE a.version IS NULL AND d.created_at = (SELECT MAX(created_at) "
        "FROM datasets) AND d.examples >= ?",
        (min_examples,),
    )
    return str(rows[0][0]) if rows else None


def unfrozen_examples(store: Store, min_quality: float) -> int:
    """Examples ≥ min_quality added since the newest dataset was frozen."""
    last = store.query("SELECT MAX(created_at) FROM datasets")[0][0] or 0.0
    return int(store.query(
        "SELECT COUNT(*) FROM examples WHERE created_at > ? AND quality >= ?",
        (last, min_quality),
    )[0][0])  # fmt: skip


# held-out traffic --------------------------------------------------------------------------
def heldout_hashes(store: Store) -> set[str]:
    """Every question hash some version held out: never trained on again."""
    return {r[0] for r in store.query("SELECT question_hash FROM heldout_traffic")}


def insert_heldout(
    db: sqlite3.Connection, version: str, items: list[tuple[str, str, dict[str, Any]]]
) -> int:
    """Keep (question hash, question, example) rows out of training for good, inside the
    freeze's transaction; a question an earlier version held out keeps its first version."""
    added = 0
    for digest, question, ex in items:
        cur = db.execute(
            "INSERT INTO heldout_traffic (question_hash, dataset_version, example_id, "
            "question, messages_json, response, correction, source, task_type, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (digest, version, ex["id"], question, json.dumps(ex["messages"]), ex["response"],
             ex["signals"].get("user_correction"), ex["source"], ex["task_type"], time.time()),
        )  # fmt: skip
        added += cur.rowcount
    return added


def heldout_rows(store: Store, version: str | None = None) -> list[dict[str, Any]]:
    """The held-out traffic (of one version, or of every version), oldest first."""
    sql = "SELECT * FROM heldout_traffic" + (" WHERE dataset_version = ?" if version else "")
    rows = store.query(sql + " ORDER BY created_at, question_hash", (version,) if version else ())
    return [{**dict(r), "messages": json.loads(r["messages_json"])} for r in rows]


# gauntlet reports --------------------------------------------------------------------------
def record_gauntlet_report(store: Store, role: str, report: dict[str, Any]) -> None:
    """Keep the verdict in the store: metrics and the cognitive map read it from there."""
    with store.tx() as db:
        db.execute(
            "INSERT INTO gauntlet_reports (role, champion, challenger, verdict, ratio, path, "
            "report_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (role, report["champion"], report["challenger"], report["verdict"],
             report["quality_improvement_ratio"], report.get("path"),
             json.dumps(report, default=str), time.time()),
        )  # fmt: skip


def latest_gauntlet_report(store: Store) -> Any | None:
    """(ratio, report_json) of the newest gauntlet report, or None."""
    rows = store.query("SELECT ratio, report_json FROM gauntlet_reports ORDER BY id DESC LIMIT 1")
    return rows[0] if rows else None


def gate_verdicts(store: Store) -> dict[str, dict[str, Any]]:
    """Each challenger's newest gauntlet verdict: the rule, its checks and reasons."""
    rows = store.query("SELECT challenger, report_json FROM gauntlet_reports ORDER BY id")
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        report = json.loads(r["report_json"])
        rule = report.get("rule") or {}
        out[r["challenger"]] = {"verdict": report["verdict"], "champion": report["champion"],
                                "rule": rule.get("rule"), "checks": rule.get("checks", []),
                                "reasons": report.get("reasons", [])}  # fmt: skip
    return out
