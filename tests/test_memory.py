"""Memory and RAG against a real SQLite file, real FAISS indexes and the packaged embedder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from council.council import Council
from council.embeddings import Embedder
from council.memory.episodic import Memory
from council.memory.rag import Knowledge
from council.server import create_app
from council.storage import open_store
from tests.helpers import ScriptedHead, scripted, settings_with


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def council_with(embedder: Embedder, data: Path, *heads: ScriptedHead, **kw) -> Council:  # type: ignore[no-untyped-def]
    settings = settings_with(
        [h.spec for h in heads], memory=True, embedder="minilm", data_dir=data, **kw
    )
    return Council(settings, heads=list(heads), embedder=embedder)


class Echo(ScriptedHead):
    """Answers with a fixed text forever and keeps every prompt it saw."""

    def __init__(self, hid: str, reply: str):
        super().__init__(scripted(id=hid).spec)
        self.reply = reply

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        self.replies.append(self.reply)
        return await super().complete(messages, n=n, params=params)


def system_text(head: ScriptedHead) -> str:
    msgs = head.seen[-1]
    return msgs[0].content if msgs[0].role == "system" else ""


def test_seed_api_add_and_query_with_filters(embedder: Embedder, tmp_path: Path) -> None:
    settings = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    memory = Memory(settings, embedder, open_store(settings))
    memory.add("The user's dog is called Rex.", {"role": "note", "user": "ana", "success": True})
    memory.add("The user's cat is called Tom.", {"role": "note", "user": "bob"})
    memory.add("Paris is the capital of France.", {"role": "bot", "user": "ana", "ts": 1.0})
    [hit] = memory.query("What is my dog's name?", k=1, filters={"user": "ana"})
    assert "Rex" in hit["text"] and hit["score"] > 0.3
    bob = memory.query("What is my pet's name?", k=3, filters={"user": "bob"})
    assert [r["text"] for r in bob] == ["The user's cat is called Tom."]
    assert memory.query("capital", k=3, filters={"role": "bot"})[0]["role"] == "bot"
    assert memory.query("dog", k=3, filters={"since": "1h", "user": "ana"})[0]["text"].startswith(
        "The user's dog"
    )
    with pytest.raises(ValueError, match="24h"):
        memory.query("dog", filters={"since": "yesterday"})


async def test_recall_puts_this_users_past_facts_in_the_prompt(
    embedder: Embedder, tmp_path: Path
) -> None:
    a, b = Echo("a", "Noted: your dog is Rex."), Echo("b", "Noted: your dog is Rex.")
    council = council_with(embedder, tmp_path, a, b)
    first = await council.ask("My dog is called Rex.", user="ana", conversation_id="c1")
    assert first.exchange_id and first.success is True and first.label_source == "confidence"

    v = await council.ask("What is my dog called?", user="ana", conversation_id="c2")
    assert "Your past answers to this user" in system_text(a) and "Rex" in system_text(a)
    assert v.recalled and v.recalled[0]["source"] == first.exchange_id

    await council.ask("What is my dog called?", user="bob", conversation_id="c3")
    assert "Rex" not in system_text(a)  # never another user's memory

    await council.ask("What is my dog called?", user="ana", recall=False)
    assert "Your past answers" not in system_text(a)

    same = await council.ask("What is my dog called?", user="ana", conversation_id="c1")
    sources = {r["source"] for r in same.recalled}
    assert sources and first.exchange_id not in sources  # its own turns come as messages
    await council.close()


async def test_failed_exchanges_are_not_recalled_as_facts(
    embedder: Embedder, tmp_path: Path
) -> None:
    a, b = Echo("a", "The answer is 5."), Echo("b", "The answer is 5.")
    council = council_with(embedder, tmp_path, a, b)
    wrong = await council.ask("What is 2 + 2?", user="ana")
    assert wrong.success is False and wrong.label_source == "verifier"  # 5 is checked wrong
    await council.ask("What is 2 + 2 again?", user="ana")
    assert "Your past answers" not in system_text(a)
    await council.close()


def test_feedback_api_relabels_and_the_exchange_is_inspectable(
    embedder: Embedder, tmp_path: Path
) -> None:
    heads = [Echo("a", "Lisbon"), Echo("b", "Lisbon")]
    council = council_with(embedder, tmp_path, *heads)
    app = create_app(council.settings, council)
    with TestClient(app) as client:
        body = client.post("/vote", json={"prompt": "Capital of Portugal?", "user": "ana"}).json()
        eid = body["meta"]["exchange_id"]
        assert body["meta"]["success"] is True
        r = client.post("/api/feedback", json={"exchange_id": eid, "rating": -1, "comment": "no"})
        assert r.json() == {"exchange_id": eid, "success": False, "label_source": "feedback"}
        ex = client.get(f"/api/exchanges/{eid}").json()
        assert ex["success"] is False and ex["feedback"][0]["comment"] == "no"
        assert [v["head"] for v in ex["votes"]] == ["a", "b"]
        v1 = client.post(
            "/v1/chat/completions",
            json={
                "model": "council",
                "user": "ana",
                "messages": [{"role": "user", "content": "Capital of Portugal?"}],
            },
        ).json()
        assert v1["exchange_id"].startswith("ex_") and v1["council"]["exchange_id"]
        r = client.post("/api/feedback", json={"exchange_id": "ex_nope", "rating": 1})
        assert r.status_code == 404 and "exchange_id" in r.json()["error"]["message"]
        r = client.post("/api/feedback", json={"exchange_id": eid, "rating": 3})
        assert r.status_code == 400
        stats = client.get("/api/memory/stats").json()
        assert stats["exchanges"] == 2 and stats["feedback"] == 1
        found = client.get("/api/memory/search", params={"q": "Portugal", "user": "ana"}).json()
        assert "Portugal" in found["memories"][0]["text"]


def test_a_corrupt_index_is_rebuilt_with_identical_results(
    embedder: Embedder, tmp_path: Path
) -> None:
    settings = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    memory = Memory(settings, embedder, open_store(settings))
    for text in ("red apples", "green pears", "blue berries", "yellow bananas", "the sea"):
        memory.add(text, {"user": "ana"})
    before = memory.query("fruit that is yellow", k=3)
    memory.close()
    memory.store.close()

    (tmp_path / "memories.faiss").write_bytes(b"\x00garbage" * 100)
    again = Memory(settings, embedder, open_store(settings))
    assert again.table.opened_as == "rebuilt (corrupt)"
    assert again.query("fruit that is yellow", k=3) == before
    again.store.close()

    (tmp_path / "memories.faiss").unlink()
    third = Memory(settings, embedder, open_store(settings))
    assert third.table.opened_as == "built"
    assert third.query("fruit that is yellow", k=3) == before


def test_a_stale_index_catches_up_from_the_store(embedder: Embedder, tmp_path: Path) -> None:
    settings = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    memory = Memory(settings, embedder, open_store(settings))
    memory.add("first memory about cats", {})
    memory.close()  # the index is saved with one vector
    memory.add("second memory about dogs", {})  # stored, index not saved (as after a kill -9)
    memory.store.close()
    again = Memory(settings, embedder, open_store(settings))
    assert again.table.opened_as == "caught up"
    assert again.query("dogs", k=1)[0]["text"] == "second memory about dogs"


def test_rag_ingest_cite_replace_and_skip(embedder: Embedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.md").write_text(
        "# Pump manual\n\nThe Zephyr pump must be descaled every 40 days using citric acid.\n"
    )
    (docs / "garden.html").write_text(
        "<html><body><p>Tomatoes need six hours of sun.</p><script>alert(1)</script></body></html>"
    )
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    settings = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path / "d")
    knowledge = Knowledge(settings, embedder, open_store(settings))
    report = knowledge.ingest([docs, tmp_path / "missing.pdf"])
    assert len(report.added) == 2 and report.chunks == 2
    assert {Path(p).name for p, _ in report.errors} == {"blob.txt", "missing.pdf"}

    [top, *_] = knowledge.search("How often should the Zephyr pump be descaled?")
    assert top.source.endswith("pump.md") and "40 days" in top.text
    assert knowledge.lookup("How often should the Zephyr pump be descaled?")
    assert knowledge.lookup("hi") == []  # small talk does not search
    assert knowledge.lookup("hi", override=True)  # unless asked to

    assert knowledge.ingest([docs]).unchanged == [
        str((docs / n).resolve()) for n in ("garden.html", "pump.md")
    ]
    (docs / "pump.md").write_text("The Zephyr pump must be descaled every 90 days.\n")
    again = knowledge.ingest([docs])
    assert again.replaced == [str((docs / "pump.md").resolve())]
    top = knowledge.search("How often should the Zephyr pump be descaled?")[0]
    assert "90 days" in top.text and knowledge.table.index.info.count == 2


async def test_knowledge_reaches_the_heads_and_is_cited_in_meta(
    embedder: Embedder, tmp_path: Path
) -> None:
    (tmp_path / "faq.txt").write_text("Council's default port is 8000 on the loopback address.")
    a, b = Echo("a", "8000"), Echo("b", "8000")
    council = council_with(embedder, tmp_path / "d", a, b)
    assert council.knowledge is not None
    council.knowledge.ingest([tmp_path / "faq.txt"])
    v = await council.ask("Which port does Council use by default?")
    assert "Knowledge (cite" in system_text(a) and "faq.txt" in system_text(a)
    cited = [r for r in v.recalled if r["kind"] == "knowledge"]
    assert cited and cited[0]["source"].endswith("faq.txt") and cited[0]["position"] == 0
    await council.ask("Which port does Council use by default?", rag=False)
    assert "Knowledge (cite" not in system_text(a)
    await council.close()


def test_concurrent_writers_all_reach_the_index(embedder: Embedder, tmp_path: Path) -> None:
    """Requests finishing together record from several threads at once; the index takes ids
    only in increasing order, so a writer whose row id lost the race used to fail (a 500)."""
    from concurrent.futures import ThreadPoolExecutor

    settings = settings_with([], memory=True, embedder="minilm", data_dir=tmp_path)
    memory = Memory(settings, embedder, open_store(settings))
    insert = memory.store.add_memory

    def slow_commit(*args: Any, **kw: Any) -> int:  # every other writer is slow after its insert
        row_id = insert(*args, **kw)
        time.sleep(0.02 if row_id % 2 == 0 else 0.0)
        return row_id

    memory.store.add_memory = slow_commit  # type: ignore[method-assign]
    texts = [f"Note {i}: the locker code is {1000 + i}." for i in range(48)]
    with ThreadPoolExecutor(12) as pool:
        ids = list(pool.map(lambda t: memory.add(t, {"user": "ana"}), texts))
    assert len(set(ids)) == len(texts)
    info = memory.table.index._info()
    assert (info.count, info.max_id) == (len(texts), max(ids))
    [hit] = memory.query("Note 17 locker code", k=1, filters={"user": "ana"})
    assert "1017" in hit["text"]
