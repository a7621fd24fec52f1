"""Facts: kept whatever the answer's label, updated when they change, visible and erasable.
Real store, real vectors (the packaged embedder), scripted heads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from council.cli import app as cli
from council.council import Council
from council.embeddings import Embedder
from council.facts.extract import fallback, is_self_statement, parse
from council.facts.reconcile import subject
from council.server import create_app
from tests.helpers import ScriptedHead, scripted, settings_with
from tests.test_memory import Echo, system_text

ZORBLAX = "Please remember: my cat is called Zorblax and my favourite colour is teal."


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("minilm")


def extractor(*replies: Any) -> ScriptedHead:
    """The fact head: off the ballot (disabled), so the ballot heads' replies stay theirs."""
    return scripted(*replies, id="x", enabled=False)


def council_with(embedder: Embedder, data: Path, *heads: ScriptedHead, **kw: Any) -> Council:
    kw.setdefault("fact_head", "x" if any(h.id == "x" for h in heads) else "none")
    kw.setdefault("facts", True)
    settings = settings_with(
        [h.spec for h in heads], memory=True, embedder="minilm", data_dir=data, **kw
    )
    return Council(settings, heads=list(heads), embedder=embedder)


def wait_drained(council: Council, timeout: float = 30) -> None:
    assert council.facts is not None
    deadline = time.monotonic() + timeout
    while council.facts.ledger.pending_count():
        assert time.monotonic() < deadline, "the fact worker did not drain the queue"
        time.sleep(0.05)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_zorblax_is_recalled_for_the_same_user_though_the_heads_disagreed(
    embedder: Embedder, tmp_path: Path
) -> None:
    a, b = Echo("a", "Luna"), Echo("b", "Mittens")  # they never agree: every label is failed
    x = extractor("My cat is called Zorblax\nMy favourite colour is teal")
    council = council_with(embedder, tmp_path, a, b, x)
    with TestClient(create_app(council.settings, council)) as client:
        users = client.app.state.users  # type: ignore[attr-defined]
        ana, bob = bearer(users.add("ana")[1]), bearer(users.add("bob")[1])
        r = client.post("/vote", json={"prompt": ZORBLAX, "conversation_id": "c1"}, headers=ana)
        first = r.json()["meta"]
        assert first["success"] is False  # failed exchanges are never recalled as answers
        wait_drained(council)

        q = {"prompt": "What is the name of my cat?", "conversation_id": "c2"}
        meta = client.post("/vote", json=q, headers=ana).json()["meta"]
        facts = [m for m in meta["recalled"] if m["kind"] == "fact"]
        assert facts and facts[0]["text"] == "My cat is called Zorblax"
        assert facts[0]["source"] == first["exchange_id"] and facts[0]["said_at"] > 0
        day = time.strftime("%Y-%m-%d", time.gmtime())
        assert f"- ({day}) My cat is called Zorblax" in system_text(a)
        assert "What the user told you" in system_text(a)
        assert "Luna" not in system_text(a)  # the failed answer is not recalled

        q = {"prompt": "What is the name of my cat?", "conversation_id": "c3"}
        client.post("/vote", json=q, headers=bob)
        assert "Zorblax" not in system_text(a)  # never another user's fact
        q = {"prompt": "What is the name of my cat?", "memory": False}
        client.post("/vote", json=q, headers=ana)
        assert "Zorblax" not in system_text(a)  # memory: false still disables recall

        # visible, editable, erasable; another user's id is a 404
        listed = client.get("/api/memories", headers=ana).json()["memories"]
        assert {f["text"] for f in listed} == {
            "My cat is called Zorblax",
            "My favourite colour is teal",
        }
        assert all(f["exchange_id"] == first["exchange_id"] for f in listed)
        cat = next(f for f in listed if "cat" in f["text"])
        assert client.get("/api/memories", headers=bob).json()["memories"] == []
        assert client.delete(f"/api/memories/{cat['id']}", headers=bob).status_code == 404
        r = client.patch(f"/api/memories/{cat['id']}", json={"text": "x"}, headers=bob)
        assert r.status_code == 404 and r.json()["error"]["code"] == "fact_not_found"
        r = client.patch(
            f"/api/memories/{cat['id']}", json={"text": "My cat is called Zorb"}, headers=ana
        )
        assert r.status_code == 200 and r.json()["text"] == "My cat is called Zorb"
        assert client.delete(f"/api/memories/{cat['id']}", headers=ana).json()["deleted"]
        assert council.facts is not None
        found = council.facts.recall("What is the name of my cat?", "ana")
        assert all("Zorb" not in f.text for f in found)
        rows = council.facts.ledger.store.query("SELECT COUNT(*) FROM facts WHERE id = ?",
                                                (cat["id"],))  # fmt: skip
        assert rows[0][0] == 0  # erased, row and vector

        # forget everything: confirmation required, then facts, memories, exchanges are gone
        r = client.request("DELETE", "/api/memories", json={"confirm": "yes"}, headers=ana)
        assert r.status_code == 400
        r = client.request(
            "DELETE", "/api/memories", json={"confirm": "forget everything"}, headers=ana
        )
        assert r.json()["deleted"]["facts"] == 1 and r.json()["deleted"]["exchanges"] == 3
        store = council.facts.ledger.store
        assert store.query("SELECT COUNT(*) FROM exchanges WHERE user_id = 'ana'")[0][0] == 0
        assert store.query("SELECT COUNT(*) FROM memories WHERE user_id = 'ana'")[0][0] == 0
        assert store.query("SELECT COUNT(*) FROM exchanges WHERE user_id = 'bob'")[0][0] == 1
        assert council.memory is not None
        assert council.memory.table.index.info.count == 1  # only bob's vector is left


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
async def test_an_update_supersedes_the_old_value_and_newer_wins(
    embedder: Embedder, tmp_path: Path
) -> None:
    council = council_with(embedder, tmp_path, Echo("a", "ok"))
    assert council.facts is not None
    for said in ("I live in Berlin.", "My dog is called Rex.", "I moved to Lisbon last month."):
        await council.ask(said, user="ana")
        await council.facts.drain()
    await council.ask("I live in Berlin.", user="bob")
    await council.facts.drain()
    now = [f["text"] for f in council.facts.list("ana")]
    assert "I live in Berlin." not in now and "I moved to Lisbon last month." in now
    history = council.facts.list("ana", history=True)
    berlin = next(f for f in history if f["text"] == "I live in Berlin.")
    lisbon = next(f for f in history if f["text"].startswith("I moved to Lisbon"))
    assert berlin["superseded_by"] == lisbon["id"] and berlin["superseded_at"]
    [top, *_] = council.facts.recall("Where do I live?", "ana")
    assert top.text.startswith("I moved to Lisbon")
    [top, *_] = council.facts.recall("Where did I live before?", "ana")  # from history
    assert top.text.startswith("I live in Berlin. (no longer true since ")
    assert [f["text"] for f in council.facts.list("bob")] == ["I live in Berlin."]
    await council.ask("I live in Berlin.", user="bob")  # already known: NOOP
    await council.facts.drain()
    assert len(council.facts.list("bob", history=True)) == 1
    await council.close()


async def test_an_update_is_found_by_meaning_and_many_valued_facts_accumulate(
    embedder: Embedder, tmp_path: Path
) -> None:
    council = council_with(embedder, tmp_path, Echo("a", "ok"))
    assert council.facts is not None
    said = [
        "I love the colour lavender more than any other.",
        "I work as a nurse.",
        "I play the cello.",
        "My sister is called Ines.",
        "My wife works as a teacher.",  # someone else's job: not an update of mine
        "I play the piano.",  # a second instrument, not a new one
        "My brother is called Tomas.",
        "These days my favorite color is coral.",  # no shared words with lavender's fact
    ]
    for text in said:
        await council.ask(text, user="ana")
        await council.facts.drain()
    now = {f["text"] for f in council.facts.list("ana")}
    assert now == set(said) - {"I love the colour lavender more than any other."}
    [top, *_] = council.facts.recall("Which colour do I like best?", "ana")
    assert top.text == "These days my favorite color is coral."
    await council.close()


async def test_the_head_decides_an_update_when_it_can(embedder: Embedder, tmp_path: Path) -> None:
    x = extractor("I work at Acme", "I am employed by Globex now", "UPDATE 1")
    council = council_with(embedder, tmp_path, Echo("a", "ok"), x)
    assert council.facts is not None
    await council.ask("I work at Acme as an engineer.", user="ana")
    await council.facts.drain()
    await council.ask("Since Monday I am employed by Globex now.", user="ana")
    await council.facts.drain()
    assert [f["text"] for f in council.facts.list("ana")] == ["I am employed by Globex now"]
    assert len(x.seen) == 3 and "Existing facts:" in x.seen[2][1].content
    await council.close()


def test_a_job_left_at_a_crash_is_done_at_the_next_start(
    embedder: Embedder, tmp_path: Path
) -> None:
    import asyncio

    first = council_with(embedder, tmp_path, Echo("a", "ok"), Echo("b", "no"))
    # recorded, replied, then "killed" before any worker ran
    asyncio.run(first.ask("My sister Ines lives in Porto.", user="ana"))
    assert first.facts is not None and first.facts.ledger.pending_count() == 1
    assert first.memory is not None
    first.memory.store.close()

    again = council_with(embedder, tmp_path, Echo("a", "ok"), Echo("b", "no"))
    with TestClient(create_app(again.settings, again)):
        wait_drained(again)
        assert again.facts is not None
        assert [f["text"] for f in again.facts.list("ana")] == ["My sister Ines lives in Porto."]


async def test_the_fallback_keeps_the_users_words_when_the_head_fails(
    embedder: Embedder, tmp_path: Path
) -> None:
    x = extractor(RuntimeError("model crashed"), "Sure! Here is a poem about the sea.", "NONE")
    council = council_with(embedder, tmp_path, Echo("a", "ok"), x)
    assert council.facts is not None
    await council.ask(ZORBLAX, user="ana")  # the head fails: the statement is kept verbatim
    await council.ask("I'm allergic to peanuts. What should I cook?", user="ana")  # unusable
    await council.ask("What is the name of my cat?", user="ana")  # a question, NONE
    await council.facts.drain()
    assert sorted(f["text"] for f in council.facts.list("ana")) == [
        "I'm allergic to peanuts.",
        ZORBLAX,
    ]
    assert all(f["source"] == "fallback" for f in council.facts.list("ana"))
    await council.close()


def test_self_statements_questions_and_head_output() -> None:
    assert is_self_statement("I moved to Lisbon.")
    assert is_self_statement("Remember that the deploy key is in vault")
    assert not is_self_statement("What is the name of my cat?")
    assert not is_self_statement("what is my cat called")
    assert not is_self_statement("The sky is blue.")
    assert fallback("Hi! I'm a nurse. How do I bake bread?") == ["I'm a nurse."]
    assert parse("NONE", "What time is it?") == []
    assert parse("- My cat is called Zorblax\n- I like teal", ZORBLAX + " I like teal") == [
        "My cat is called Zorblax",
        "I like teal",
    ]
    assert parse("The capital of France is Paris", ZORBLAX) is None  # not grounded in the turn
    assert subject("I live in Berlin") == subject("I moved to Lisbon") == "home"
    assert subject("My cat is called Tom") == subject("my cat is named Zorblax") == "cat:name"
    assert subject("My favourite colour is teal") == "favourite colour"


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_cli_lists_and_forgets(embedder: Embedder, tmp_path: Path) -> None:
    import asyncio

    data = tmp_path / "data"
    council = council_with(embedder, data, Echo("a", "ok"))
    assert council.facts is not None

    async def learn() -> int:
        await council.ask("I live in Berlin.", user="ana")
        await council.ask("My dog is called Rex.", user="ana")
        await council.facts.drain()  # type: ignore[union-attr]
        first = int(council.facts.list("ana")[0]["id"])  # type: ignore[union-attr]
        await council.close()
        return first

    first = asyncio.run(learn())
    runner = CliRunner()
    r = runner.invoke(cli, ["memory", "list", "--user", "ana"])
    assert r.exit_code == 0 and "Berlin" in r.output and "Rex" in r.output, r.output
    r = runner.invoke(cli, ["memory", "forget", str(first)])
    assert r.exit_code == 0 and f"fact {first} erased" in r.output
    r = runner.invoke(cli, ["memory", "forget", str(first)])
    assert r.exit_code != 0 and "memory list" in r.output
    r = runner.invoke(cli, ["memory", "forget", "--all", "--user", "ana"], input="n\n")
    assert r.exit_code != 0
    r = runner.invoke(cli, ["memory", "forget", "--all", "--user", "ana", "--yes"])
    assert r.exit_code == 0 and "1 facts" in r.output and "2 exchanges" in r.output, r.output
    r = runner.invoke(cli, ["memory", "list", "--user", "ana"])
    assert "Berlin" not in r.output and "Rex" not in r.output


FACTS = [
    "I live in Berlin.",
    "I moved to Lisbon last month.",
    "We live in Austin, near the river.",
    "My cat is called Zorblax.",
    "I have a dog named Rex.",
    "My sister's name is Ines.",
    "My wife works as a teacher.",
    "I work as a nurse.",
    "I'm a carpenter by trade.",
    "I'm allergic to peanuts.",
    "I'm vegetarian.",
    "I prefer short answers without bullet points.",
    "I love the colour teal.",
    "I hate coriander.",
    "Our team ships on Thursdays.",
    "I'm building a compiler in Rust at work.",
    "I play the cello.",
    "I speak Portuguese and German.",
    "My daughter turns five in May.",
    "Remember that the deploy key is in the vault.",
    "Please remember: my cat is called Zorblax.",
    "Don't forget that I'm lactose intolerant.",
    "I want you to remember my birthday is on 3 June.",
    "My favourite film is Alien.",
    "We're based in Osaka these days.",
    "I'd like to be called Sam.",
]
NOT_FACTS = [
    "Give me three ideas for a birthday present.",
    "Tell me a joke about my cat.",
    "Write an email to my landlord.",
    "Please summarise this article for me.",
    "Explain how compound interest works.",
    "Help me plan a trip to Rome.",
    "Ok, let me think about it.",
    "Let's try again.",
    "I'd like a shorter version of that, please.",
    "I want you to rewrite my essay.",
    "I need a recipe for banana bread.",
    "Can you help me write an email?",
    "What is the name of my cat?",
    "Do you remember my cat's name?",
    "where do I live",
    "How do I convert Celsius to Fahrenheit?",
    "Thanks, that was helpful!",
    "Thank you so much.",
    "Okay, sounds good.",
    "I think I'll make pasta tonight.",
    "I'm a bit tired today.",
    "I'm not sure about that.",
    "I guess that works.",
    "I see.",
    "The weather has been strange this week.",
    "The sky is blue.",
    "I don't remember the title.",
]


@pytest.mark.parametrize("text", FACTS)
def test_the_fallback_keeps_statements_about_the_user(text: str) -> None:
    assert is_self_statement(text), text


@pytest.mark.parametrize("text", NOT_FACTS)
def test_the_fallback_drops_requests_questions_and_chit_chat(text: str) -> None:
    assert not is_self_statement(text), text


async def test_forget_everything_erases_the_training_data_built_from_the_users_exchanges(
    embedder: Embedder, tmp_path: Path
) -> None:
    from council.learning.datasets import freeze, load_dataset
    from council.learning.ledger import count_examples, insert_example
    from council.types import Message

    council = council_with(embedder, tmp_path, Echo("a", "ok"))
    assert council.facts is not None and council.memory is not None
    store = council.memory.store
    mine = await council.ask("My cat is called Zorblax. Name three cat toys.", user="ana")
    theirs = await council.ask("Name three dog toys.", user="bob")
    with store.tx() as db:
        for v, text in ((mine, "cat"), (theirs, "dog")):
            insert_example(
                db,
                source="collector",
                exchange_ids=[v.exchange_id],
                messages=[Message("user", f"Name three {text} toys.")],
                response=f"{text} ball, {text} rope, {text} mouse",
                quality=0.9,
            )
    manifest = freeze(store, tmp_path / "datasets", min_quality=0.5)
    assert manifest["examples"] == 2

    counts = council.facts.forget_user("ana")
    assert counts["examples"] == 1 and counts["dataset_lines"] == 1
    assert count_examples(store) == 1
    again, rows = load_dataset(store, manifest["version"])  # the hash still checks
    assert [r["exchange_ids"] for r in rows] == [[theirs.exchange_id]]
    assert again["examples"] == 1 and again["erased"] == 1
    folder = tmp_path / "datasets" / manifest["version"]
    assert "cat" not in (folder / "train.jsonl").read_text()
    assert "Zorblax" not in (folder / "manifest.json").read_text()
    await council.close()


async def test_the_question_is_embedded_once_for_facts_and_memories(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    council = council_with(embedder, tmp_path, Echo("a", "ok"))
    assert council.facts is not None
    await council.ask("My cat is called Zorblax.", user="ana")
    await council.facts.drain()
    texts: list[list[str]] = []
    encode = embedder.encode

    def counted(batch: list[str]) -> Any:
        texts.append(list(batch))
        return encode(batch)

    monkeypatch.setattr(embedder, "encode", counted)
    found = await council.recall("What is my cat called?", "ana", "c2", None, False)
    assert texts == [["What is my cat called?"]]
    assert [f.text for f in found if f.kind == "fact"] == ["My cat is called Zorblax."]
    await council.close()
