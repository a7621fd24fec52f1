"""The store on SQLite and on Postgres (`store_where`: one suite, both backends): migrations,
exchanges, feedback, filters, conversations, documents."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from council.config import Settings
from council.errors import ExchangeNotFoundError, SchemaTooNewError
from council.memory.store import ExchangeRecord, Store
from council.storage import MIGRATIONS, open_db, open_store
from council.types import Message, Verdict, Vote


def verdict(answer: str = "4", confidence: float = 1.0) -> Verdict:
    votes = [
        Vote("a", answer, answer, 0, 1.0, 12.0, 3, 2, 0.001, None, True),
        Vote("b", "", None, None, 0.0, 5.0, error="HTTP 500"),
    ]
    return Verdict(answer, votes, confidence, "vote", 20.0, 0.001, ["a", "b"], "math", 3, 2)


def record(store: Store, eid: str, **kw) -> ExchangeRecord:  # type: ignore[no-untyped-def]
    rec = ExchangeRecord(
        id=eid,
        user_id=kw.pop("user", "ana"),
        messages=[Message("user", kw.pop("q", "2+2?"))],
        verdict=kw.pop("verdict", verdict()),
        **kw,
    )
    store.record(rec, memory=(f"Q/A {eid}", np.ones(4, dtype=np.float32)))
    return rec


def test_migrations_apply_once_in_wal_mode(tmp_path: Path) -> None:
    store = open_db(tmp_path / "c.db")
    names = [r[0] for r in store.query("SELECT name FROM schema_migrations")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    store.close()
    again = open_db(tmp_path / "c.db")  # reopening applies nothing twice
    assert len(again.query("SELECT name FROM schema_migrations")) == len(MIGRATIONS)


def test_released_migrations_keep_their_names_and_order() -> None:
    """Databases record these names and count them in user_version: every part's migrations
    join one history, numbered in order, and released ones are never renamed or reordered."""
    released = ["m001_initial", "m002_learning", "m003_adapters", "m004_vote_certainty",
                "m005_key_limits", "m006_users", "m007_document_owner", "m008_facts",
                "m009_feedback_correction", "m010_heldout_traffic"]  # fmt: skip
    names = [m.__name__ for m in MIGRATIONS]
    assert names[: len(released)] == released
    assert [n[:4] for n in names] == [f"m{i:03d}" for i in range(1, len(names) + 1)]


def test_a_database_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_db(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match=r"newer release.*Upgrade Council"):
        open_db(path)
    assert path.read_bytes() == before


def test_exchange_round_trip_with_votes(store_where: Path | str) -> None:
    store = open_db(store_where)
    record(
        store,
        "ex_1",
        conversation_id="conv1",
        success=True,
        label_source="confidence",
        recalled=[{"kind": "memory", "id": 3, "text": "x", "score": 0.9}],
    )
    ex = store.exchange("ex_1")
    assert ex is not None
    assert ex["prompt"] == "2+2?" and ex["answer"] == "4" and ex["user_id"] == "ana"
    assert ex["messages"] == [{"role": "user", "content": "2+2?"}]
    assert ex["success"] is True and ex["label_source"] == "confidence"
    assert [v["head"] for v in ex["votes"]] == ["a", "b"]
    assert ex["votes"][0]["won"] is True and ex["votes"][1]["error"] == "HTTP 500"
    assert ex["recalled"][0]["id"] == 3 and ex["models"] == ["a", "b"]
    assert store.exchange("ex_nope") is None


def test_feedback_overrides_the_label_and_reaches_the_memory_row(store_where: Path | str) -> None:
    store = open_db(store_where)
    record(store, "ex_1", success=True, label_source="confidence")
    assert store.add_feedback("ex_1", -1, "wrong") is False
    ex = store.exchange("ex_1")
    assert ex is not None and ex["success"] is False and ex["label_source"] == "feedback"
    assert ex["feedback"][0]["comment"] == "wrong"
    [mid] = store.memory_ids(success=False).tolist()
    assert store.memory_rows([mid])[mid]["success"] is False
    with pytest.raises(ExchangeNotFoundError, match="exchange_id returned"):
        store.add_feedback("ex_missing", 1)
    with pytest.raises(ValueError, match="rating"):
        store.add_feedback("ex_1", 5)


def test_memory_filters(store_where: Path | str) -> None:
    store = open_db(store_where)
    record(store, "e1", user="ana", conversation_id="s1", success=True, created_at=100.0)
    record(store, "e2", user="ana", conversation_id="s2", success=False, created_at=200.0)
    record(store, "e3", user="bob", conversation_id="s3", success=None, created_at=300.0)
    note = store.add_memory("a note", np.ones(4), user="ana", role="note", created_at=400.0)

    def texts(**f):  # type: ignore[no-untyped-def]
        rows = store.memory_rows(store.memory_ids(**f).tolist())
        return sorted(r["text"] for r in rows.values())

    assert texts(user="ana") == ["Q/A e1", "Q/A e2", "a note"]
    assert texts(user="ana", success="not_failed") == ["Q/A e1", "a note"]
    assert texts(success=None) == ["Q/A e3", "a note"]
    assert texts(session="s2") == ["Q/A e2"]
    assert texts(user="ana", exclude_session="s1") == ["Q/A e2", "a note"]
    assert texts(since=250.0) == ["Q/A e3", "a note"]
    assert texts(role="note") == ["a note"] and note > 0


def test_conversations_list_rename_delete(store_where: Path | str) -> None:
    store = open_db(store_where)
    record(store, "e1", conversation_id="c1", q="First question here")
    record(store, "e2", conversation_id="c1", q="Follow-up")
    record(store, "e3", conversation_id="c2", user="bob")
    [conv] = store.conversations("ana")
    assert conv["id"] == "c1" and conv["title"] == "First question here" and conv["turns"] == 2
    assert [e["id"] for e in store.conversation_exchanges("c1")] == ["e1", "e2"]
    assert store.rename_conversation("c1", "Maths") and store.conversation("c1")["title"] == "Maths"
    assert store.delete_conversation("c1")
    assert store.conversations("ana") == [] and store.conversation("c1") is None
    assert store.memory_ids(session="c1").size == 0  # its memories are forgotten
    assert store.exchange("e1") is not None  # the exchange stays for audit and learning
    assert not store.rename_conversation("nope", "x")


def test_vectors_come_back_in_id_order_and_batches(store_where: Path | str) -> None:
    store = open_db(store_where)
    for i in range(5):
        store.add_memory(f"m{i}", np.full(4, i, dtype=np.float32))
    parts = list(store.vectors("memories", after_id=1, batch=2))
    ids = np.concatenate([p[0] for p in parts]).tolist()
    assert ids == [2, 3, 4, 5] and [len(p[0]) for p in parts] == [2, 2]
    assert parts[0][1][0].tolist() == [1.0] * 4
    assert store.table_extent("memories") == (5, 5)


def test_replacing_a_document_swaps_its_chunks(store_where: Path | str) -> None:
    store = open_db(store_where)
    store.replace_document(
        "/d.txt", "h1", 10, [(0, 0, 5, "hello"), (1, 4, 9, "world")], np.ones((2, 4))
    )
    store.replace_document("/d.txt", "h2", 10, [(0, 0, 3, "new")], np.ones((1, 4)))
    assert store.table_extent("chunks")[0] == 1
    [row] = store.chunk_rows([3]).values()
    assert row["text"] == "new" and row["source"] == "/d.txt"
    assert store.document("/d.txt")["sha256"] == "h2"


def test_ids_where_serves_memories_and_chunks_alike(store_where: Path | str) -> None:
    """One query turns a condition into ids: the memory filters' and a vector table's search."""
    store = open_db(store_where)
    record(store, "e1", user="ana")
    record(store, "e2", user="bob")
    store.replace_document("/d.txt", "h1", 10, [(0, 0, 5, "hello"), (1, 4, 9, "world")],
                           np.ones((2, 4)))  # fmt: skip
    bob = store.ids_where("memories", "user_id = ?", ["bob"])
    assert bob.dtype == np.int64 and bob.tolist() == store.memory_ids(user="bob").tolist()
    assert [store.memory_rows(bob.tolist())[i]["text"] for i in bob] == ["Q/A e2"]
    assert sorted(store.ids_where("chunks", "position >= ?", (0,)).tolist()) == [1, 2]
    assert store.ids_where("chunks", "position > ?", [5]).size == 0


def test_transactions_on_postgres_run_at_once_on_a_pool_of_the_set_size(
    postgres_url: str, tmp_path: Path
) -> None:
    """While one thread's transaction is open, another thread reads (without its uncommitted
    rows) instead of waiting: each holds a connection of the pool. Inside the transaction,
    query() runs on its connection and sees what it wrote."""
    store = open_store(Settings(data_dir=tmp_path, database_url=postgres_url,
                                database_pool_size=3))  # fmt: skip
    assert store._db.pool.max_size == 3  # type: ignore[attr-defined]
    written, release = threading.Event(), threading.Event()
    seen_inside: list[int] = []

    def hold() -> None:
        with store.tx() as db:
            store.write_record(db, ExchangeRecord("e1", "ana", [Message("user", "q")], verdict()))
            seen_inside.append(store.count_exchanges())
            written.set()
            release.wait(60)  # a hang guard: the main thread releases it at once

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert written.wait(60)
        assert store.count_exchanges() == 0  # answered while the transaction is open
    finally:
        release.set()
        holder.join(60)
    assert seen_inside == [1] and store.count_exchanges() == 1
    with store.tx(), pytest.raises(RuntimeError, match="inside a transaction"):
        store.tx().__enter__()
    store.close()


def test_a_pool_busy_past_its_timeout_is_overloaded_saying_what_to_raise(
    postgres_url: str,
) -> None:
    """A 503 (OverloadedError), not a 500: the one connection is held by a transaction."""
    from council.db.pool import PgPool
    from council.errors import OverloadedError

    pool = PgPool(postgres_url, 1, timeout_s=0.2)
    try:
        busy = pytest.raises(OverloadedError, match="COUNCIL_DATABASE_POOL")
        with pool.transaction(), busy, pool.connection():
            pass
        with pool.connection() as db:  # given back: the next checkout gets it
            assert db.execute("SELECT 1").fetchone()[0] == 1
    finally:
        pool.close()


def test_a_fact_job_two_workers_took_is_applied_once(store_where: Path | str) -> None:
    """Replicas' fact workers share the queue: the second to apply a job finds it gone."""
    from council.facts.ledger import FactLedger, enqueue

    store = open_db(store_where)
    rec = ExchangeRecord("e1", "ana", [Message("user", "My cat is called Tom.")], verdict())
    store.record(rec, also=lambda db: enqueue(db, rec))
    ledger = FactLedger(store)
    [job] = ledger.pending()
    fact = ("My cat is called Tom", np.ones(4, dtype=np.float32), "fallback", None)
    assert len(ledger.apply(job, [fact])) == 1
    assert ledger.apply(job, [fact]) == []  # the other worker's pass: nothing added
    assert [f.text for f in ledger.facts_of("ana")] == ["My cat is called Tom"]
    assert ledger.pending_count() == 0
    store.close()
