"""The episodic store (SQLite in WAL mode, or Postgres): the truth of everything remembered.

Each write is one transaction committed before the reply, so what a client was told was saved
survives kill -9. Vectors are float32 blobs beside their rows: the indexes can be rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from council.db.connect import open_connection, write_embeddings
from council.errors import ExchangeNotFoundError
from council.memory.corrections import check_correction
from council.memory.filters import memory_where
from council.memory.schema import Migration
from council.types import Message, Verdict

ANONYMOUS = "anonymous"


@dataclass
class ExchangeRecord:
    """One answered request, as it is stored."""

    id: str
    user_id: str
    messages: list[Message]
    verdict: Verdict
    conversation_id: str | None = None
    role: str = "council"
    success: bool | None = None
    label_source: str | None = None
    recalled: list[dict[str, Any]] = field(default_factory=list)
    parent_id: str | None = None
    improved: bool = False
    created_at: float = field(default_factory=time.time)


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _bool(v: Any) -> bool | None:
    return None if v is None else bool(v)


class Store:
    """Thin SQL over one database; every method is one short transaction. `migrations` is the
    whole ordered history (council/storage.py assembles it: use `council.storage.open_store`)."""

    def __init__(self, where: Path | str, migrations: Sequence[Migration], pool_size: int = 8):
        """`where`: a SQLite file or a postgresql:// URL (council/db/, a pool of `pool_size`)."""
        opened = open_connection(where, migrations, pool_size)
        self._db, self.where, self.postgres, self.path = (
            opened.db, opened.where, opened.postgres, opened.path)  # fmt: skip
        self._open = threading.local()  # this thread's transaction, if it holds one

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction on one connection: committed at the end of the block."""
        if getattr(self._open, "db", None) is not None:
            raise RuntimeError("store.tx() inside a transaction: use the connection it gave")
        with self._db.transaction() as db:
            self._open.db = db
            try:
                yield db
            finally:
                self._open.db = None

    def query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one statement; in this thread's open transaction, if any (it sees its writes)."""
        if (held := getattr(self._open, "db", None)) is not None:
            return list(held.execute(sql, args).fetchall())
        with self._db.connection() as db:
            return list(db.execute(sql, args).fetchall())

    def close(self) -> None:
        self._db.close()

    # conversations -------------------------------------------------------------------
    def _touch_conversation(self, db: sqlite3.Connection, cid: str, user: str, title: str) -> None:
        now = time.time()
        db.execute(
            "INSERT INTO conversations (id, user_id, title, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
            (cid, user, title[:80], now, now),
        )

    def conversations(self, user: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM exchanges e WHERE e.conversation_id = c.id) AS turns "
            "FROM conversations c WHERE c.user_id = ? AND c.deleted = 0 ORDER BY c.updated_at DESC",
            (user,),
        )
        return [dict(r) for r in rows]

    def conversation(self, cid: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM conversations WHERE id = ? AND deleted = 0", (cid,))
        return dict(rows[0]) if rows else None

    def rename_conversation(self, cid: str, title: str) -> bool:
        with self.tx() as db:
            cur = db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ? AND deleted = 0",
                (title[:200], time.time(), cid),
            )
            return cur.rowcount > 0

    def delete_conversation(self, cid: str) -> bool:
        """Hide it and forget its memories; the exchanges stay for audit and learning."""
        with self.tx() as db:
            cur = db.execute("UPDATE conversations SET deleted = 1 WHERE id = ?", (cid,))
            db.execute("DELETE FROM memories WHERE session_id = ?", (cid,))
            return cur.rowcount > 0

    def conversation_exchanges(self, cid: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT id FROM exchanges WHERE conversation_id = ? ORDER BY created_at", (cid,)
        )
        return [e for r in rows if (e := self.exchange(r["id"])) is not None]

    # exchanges -----------------------------------------------------------------------
    def record(
        self,
        rec: ExchangeRecord,
        memory: tuple[str, np.ndarray] | None = None,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> int | None:
        """Store the exchange, its votes and (optionally) its memory item in one transaction;
        returns the memory item's id. `also` writes more in that transaction (a fact job)."""
        with self.tx() as db:
            memory_id = self.write_record(db, rec, memory)
            if also is not None:
                also(db)
            return memory_id

    def write_record(
        self,
        db: sqlite3.Connection,
        rec: ExchangeRecord,
        memory: tuple[str, np.ndarray] | None = None,
    ) -> int | None:
        """`record` inside a transaction the caller holds (see learning/ledger.py)."""
        v = rec.verdict
        if rec.conversation_id:
            title = next((m.content for m in rec.messages if m.role == "user"), "")
            self._touch_conversation(db, rec.conversation_id, rec.user_id, title)
        db.execute(
            "INSERT INTO exchanges (id, conversation_id, user_id, role, created_at, prompt, "
            "messages_json, answer, strategy, task_type, models_json, confidence, latency_ms, "
            "cost_usd, tokens_in, tokens_out, notes_json, recalled_json, success, "
            "label_source, parent_id, improved) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id, rec.conversation_id, rec.user_id, rec.role, rec.created_at,
                next((m.content for m in reversed(rec.messages) if m.role == "user"), ""),
                json.dumps([m.stored() for m in rec.messages]), v.answer, v.strategy,
                v.task_type, json.dumps(v.models_used), v.confidence, v.latency_ms,
                v.cost_usd, v.tokens_in, v.tokens_out, json.dumps(v.notes),
                json.dumps(rec.recalled), rec.success, rec.label_source, rec.parent_id,
                int(rec.improved),
            ),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO votes (exchange_id, position, head, answer, extracted, cluster, "
            "weight, latency_ms, tokens_in, tokens_out, cost_usd, error, won, logprob) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (rec.id, i, x.head, x.answer, x.extracted, x.cluster, x.weight, x.latency_ms,
                 x.tokens_in, x.tokens_out, x.cost_usd, x.error, int(x.won), x.logprob)
                for i, x in enumerate(v.votes)
            ],
        )  # fmt: skip
        if memory is None:
            return None
        text, vector = memory
        return self._insert_memory(
            db, text, rec.role if rec.improved else "exchange", rec.user_id,
            rec.conversation_id, rec.id, rec.success, {"strategy": v.strategy},
            vector, rec.created_at,
        )  # fmt: skip

    def exchange(self, exchange_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM exchanges WHERE id = ?", (exchange_id,))
        if not rows:
            return None
        ex = dict(rows[0])
        for key in ("messages", "models", "notes", "recalled"):
            ex[key] = json.loads(ex.pop(f"{key}_json"))
        ex["success"] = _bool(ex["success"])
        ex["improved"] = bool(ex["improved"])
        votes = self.query(
            "SELECT * FROM votes WHERE exchange_id = ? ORDER BY position", (exchange_id,)
        )
        ex["votes"] = [{**dict(r), "won": bool(r["won"])} for r in votes]
        fb = self.query(
            "SELECT rating, comment, correction, created_at FROM feedback WHERE exchange_id = ? "
            "ORDER BY id",
            (exchange_id,),
        )
        ex["feedback"] = [dict(r) for r in fb]
        return ex

    def _label(
        self, db: sqlite3.Connection, exchange_id: str, success: bool | None, source: str
    ) -> None:
        cur = db.execute(
            "UPDATE exchanges SET success = ?, label_source = ? WHERE id = ?",
            (success, source, exchange_id),
        )
        if cur.rowcount == 0:
            raise ExchangeNotFoundError(
                f"No exchange {exchange_id!r}. Use the exchange_id returned with the answer."
            )
        db.execute("UPDATE memories SET success = ? WHERE exchange_id = ?", (success, exchange_id))

    def add_feedback(
        self, exchange_id: str, rating: int, comment: str | None = None,
        correction: str | None = None,
    ) -> bool:  # fmt: skip
        """Record a rating (+1/-1), with what the answer should have been on a -1; feedback
        overrides every other label. Returns the label."""
        if rating not in (1, -1):
            raise ValueError("rating must be 1 (good) or -1 (bad)")
        correction = check_correction(rating, correction)
        with self.tx() as db:
            self._label(db, exchange_id, rating == 1, "feedback")
            db.execute(
                "INSERT INTO feedback (exchange_id, rating, comment, correction, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (exchange_id, rating, comment, correction, time.time()),
            )
        return rating == 1

    def count_exchanges(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM exchanges")[0][0])

    # memories ------------------------------------------------------------------------
    def _insert_memory(
        self, db: sqlite3.Connection, text: str, role: str, user: str, session: str | None,
        exchange_id: str | None, success: bool | None, meta: dict[str, Any],
        vector: np.ndarray, created_at: float,
    ) -> int:  # fmt: skip
        cur = db.execute(
            "INSERT INTO memories (text, role, user_id, session_id, exchange_id, success, "
            "meta_json, created_at, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (text, role, user, session, exchange_id, success, json.dumps(meta), created_at,
             _blob(vector)),
        )  # fmt: skip
        if self.postgres:
            write_embeddings(db, "memories", [int(cur.lastrowid or 0)], np.asarray([vector]))
        return int(cur.lastrowid or 0)

    def add_memory(
        self, text: str, vector: np.ndarray, *, role: str = "note", user: str = ANONYMOUS,
        session: str | None = None, success: bool | None = None,
        meta: dict[str, Any] | None = None, created_at: float | None = None,
    ) -> int:  # fmt: skip
        with self.tx() as db:
            return self._insert_memory(
                db, text, role, user, session, None, success, meta or {}, vector,
                created_at or time.time(),
            )  # fmt: skip

    def _rows_in(self, sql: str, ids: list[int]) -> list[sqlite3.Row]:
        """`sql` with `{ids}` standing for a placeholder list of `ids`."""
        return self.query(sql.format(ids=",".join("?" * len(ids))), ids) if ids else []

    def memory_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        rows = self._rows_in(
            "SELECT id, text, role, user_id, session_id, exchange_id, success, meta_json, "
            "created_at FROM memories WHERE id IN ({ids})",
            ids,
        )
        out = {}
        for r in rows:
            d = dict(r)
            d["meta"] = json.loads(d.pop("meta_json"))
            d["success"] = _bool(d["success"])
            out[int(d["id"])] = d
        return out

    def memory_ids(self, **filters: Any) -> np.ndarray:
        """Ids matching filters: user, session, exclude_session, role, success, since."""
        return self.ids_where("memories", *memory_where(**filters))

    def ids_where(self, table: str, where: str, params: Sequence[Any] = ()) -> np.ndarray:
        """Ids of `memories` or `chunks` rows matching an SQL condition (`?` placeholders)."""
        assert table in ("memories", "chunks")
        rows = self.query(f"SELECT id FROM {table} WHERE {where}", list(params))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vectors(
        self, table: str, after_id: int = -1, batch: int = 20_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of `memories` or `chunks` past an id, in batches (index rebuilds)."""
        assert table in ("memories", "chunks")
        last = after_id
        while True:
            rows = self.query(
                f"SELECT id, vector FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            )
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vecs
            last = int(ids[-1])

    def table_extent(self, table: str) -> tuple[int, int]:
        """(row count, max id) of `memories` or `chunks`, to tell whether an index is stale."""
        assert table in ("memories", "chunks")
        count, max_id = self.query(f"SELECT COUNT(*), COALESCE(MAX(id), -1) FROM {table}")[0]
        return int(count), int(max_id)

    # documents (RAG) -----------------------------------------------------------------
    def document(self, path: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM documents WHERE path = ?", (path,))
        return dict(rows[0]) if rows else None

    def replace_document(
        self, path: str, sha256: str, size: int,
        chunks: list[tuple[int, int, int, str]], vectors: np.ndarray, owner: str | None = None,
    ) -> int:  # fmt: skip
        """Swap a document's chunks atomically: (position, start, end, text) + their vectors.
        `owner`: None shares it with every user, else only that user's requests recall it."""
        with self.tx() as db:
            db.execute("DELETE FROM documents WHERE path = ?", (path,))
            cur = db.execute(
                "INSERT INTO documents (path, sha256, size, chunks, ingested_at, owner) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (path, sha256, size, len(chunks), time.time(), owner),
            )
            doc_id = int(cur.lastrowid or 0)
            db.executemany(
                'INSERT INTO chunks (document_id, position, start, "end", text, vector) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (doc_id, p, s, e, t, _blob(v))
                    for (p, s, e, t), v in zip(chunks, vectors, strict=True)
                ],
            )
            if self.postgres:
                ids = db.execute(
                    "SELECT id FROM chunks WHERE document_id = ? ORDER BY position", (doc_id,)
                ).fetchall()
                write_embeddings(db, "chunks", [r[0] for r in ids], np.asarray(vectors))
        return doc_id

    def chunk_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        rows = self._rows_in(
            'SELECT c.id, c.position, c.start, c."end", c.text, d.path AS source '
            "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({ids})",
            ids,
        )
        return {int(r["id"]): dict(r) for r in rows}

    def stats(self) -> dict[str, Any]:
        q = self.query
        labels = {
            str(_bool(r[0])).lower() if r[0] is not None else "unknown": r[1]
            for r in q("SELECT success, COUNT(*) FROM exchanges GROUP BY success")
        }
        return {
            "database": self.where,
            "exchanges": self.count_exchanges(),
            "labels": labels,
            "feedback": q("SELECT COUNT(*) FROM feedback")[0][0],
            "conversations": q("SELECT COUNT(*) FROM conversations WHERE deleted = 0")[0][0],
            "memories": q("SELECT COUNT(*) FROM memories")[0][0],
            "users": q("SELECT COUNT(DISTINCT user_id) FROM memories")[0][0],
            "documents": q("SELECT COUNT(*) FROM documents")[0][0],
            "chunks": q("SELECT COUNT(*) FROM chunks")[0][0],
        }
