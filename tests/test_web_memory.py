"""The web page's memory, end to end: Debian's Chromium (playwright) against the real server in
a subprocess, keys on, facts on (extracted by the rules fallback), an echo head answering.
The facts used show under an answer; the Memory panel lists, edits and deletes them; "forget
everything" asks first; a 👎 can carry what the answer should have said."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from council.council import Council
from council.server.app import create_app
from tests.helpers import ServerProcess, ThreadServer, scripted, settings_with, write_config
from tests.test_web import ask, browser, cid_of, open_page  # noqa: F401  (browser: fixture)
from tests.web_fixtures import echo_app

Page = Any  # playwright's Page

USERS = ("ana", "bob", "cleo", "dora", "eli", "fay")
CAT = "Please remember: my cat is called Zorblax and my favourite colour is teal."
# A fact whose text is HTML: the page must show it, never run it.
TRAP = 'My nickname is <img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>.'


class MemoryWeb:
    """`council serve` with facts on and one key per user, added as an admin would (the CLI)."""

    def __init__(self, root: Path, echo_url: str):
        from council.config import HeadSpec

        echo = HeadSpec(id="echo", kind="openai", model="echo", base_url=f"{echo_url}/v1")
        self.config = write_config(
            root / "council.toml", [echo], memory=True, embedder="minilm", facts=True,
            fact_head="none",
            # these tests are about the page, not the floor (benchmarks/memory_recall.py sets
            # that): a two-part question scores the HTML-laden nickname fact at 0.38
            fact_min_score=0.3,
        )  # fmt: skip
        data = root / "data"
        self.keys = {name: self._add_user(name, data) for name in USERS}
        self.proc = ServerProcess(self.config, data)
        self.url = self.proc.url
        self.proc.wait_ready()

    def _add_user(self, name: str, data: Path) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
        env.update(COUNCIL_DATA_DIR=str(data), HF_HUB_OFFLINE="1")
        done = subprocess.run(
            [sys.executable, "-m", "council", "users", "add", name, "--config", str(self.config)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def api(self, user: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[user]}"}
        return httpx.Client(base_url=self.url, headers=auth, timeout=30)

    def facts(self, user: str, history: bool = False) -> list[dict[str, Any]]:
        with self.api(user) as c:
            r = c.get("/api/memories", params={"history": history})
        assert r.status_code == 200, r.text
        return list(r.json()["memories"])

    def wait_facts(self, user: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        """The user's facts once the worker (off the reply path) has stored n of them."""
        deadline = time.monotonic() + timeout
        while len(found := self.facts(user)) < n:
            assert time.monotonic() < deadline, f"no facts extracted for {user}: {found}"
            time.sleep(0.2)
        return found


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryWeb]:
    with ThreadServer(echo_app()) as echo:
        server = MemoryWeb(tmp_path_factory.mktemp("web-memory"), echo.url)
        try:
            yield server
        finally:
            server.proc.stop()


def signed_in(browser: Any, web: MemoryWeb, user: str, **context: Any) -> Page:  # noqa: F811
    """A fresh browser profile that signs in with the user's key (the page's own dialog)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, **context)
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(web.url + "/")
    page.fill("#signin-key", web.keys[user])
    page.press("#signin-key", "Enter")
    page.wait_for_selector("body.ready")
    assert page.input_value("#user") == user
    return page


def open_memory(page: Page) -> Any:
    """The Memory panel, open, once its list is drawn."""
    page.get_by_role("button", name="Memory").click()
    panel = page.locator('#memory[aria-busy="false"]')
    panel.wait_for()
    return panel


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


# --- the panel ---------------------------------------------------------------------------------
def test_a_fact_told_in_chat_is_listed_edited_and_deleted(
    web: MemoryWeb,
    browser: Any,  # noqa: F811
) -> None:
    page = signed_in(browser, web, "ana")
    panel = open_memory(page)
    assert "Just tell it in chat" in panel.locator("#memory-note").inner_text()
    panel.get_by_role("button", name="Close").click()

    ask(page, CAT)
    [fact] = web.wait_facts("ana", 1)
    panel = open_memory(page)
    item = panel.locator(f'.fact[data-id="{fact["id"]}"]')
    assert item.locator(".fact-text").inner_text() == CAT
    assert f"said {today()}" in item.locator(".fact-meta").inner_text()
    assert panel.locator("#memory-note").is_hidden()

    # edit: the new text is stored (and shown); a cancelled edit changes nothing
    item.get_by_role("button", name="Edit").click()
    panel.locator(".fact-input").fill("My cat is called Zorblax.")
    panel.locator(".fact-input").press("Enter")
    item.locator(".fact-text", has_text="My cat is called Zorblax.").wait_for()
    assert [f["text"] for f in web.facts("ana")] == ["My cat is called Zorblax."]
    item.get_by_role("button", name="Edit").click()
    panel.locator(".fact-input").fill("something else")
    panel.get_by_role("button", name="Cancel").click()
    item.locator(".fact-text").wait_for()
    assert [f["text"] for f in web.facts("ana")] == ["My cat is called Zorblax."]

    # a changed fact replaces the old one; "show history" brings the old one back, marked
    panel.get_by_role("button", name="Close").click()
    ask(page, "I live in Berlin.")
    web.wait_facts("ana", 2)
    ask(page, "I moved to Lisbon last month.")
    deadline = time.monotonic() + 60
    while "I moved to Lisbon last month." not in [f["text"] for f in web.facts("ana")]:
        assert time.monotonic() < deadline, web.facts("ana", history=True)
        time.sleep(0.2)
    panel = open_memory(page)
    texts = panel.locator(".fact .fact-text").all_inner_texts()
    assert "I moved to Lisbon last month." in texts and "I live in Berlin." not in texts
    panel.get_by_label("Show history").check()
    old = panel.locator(".fact.superseded")
    old.wait_for()
    assert old.locator(".fact-text").inner_text() == "I live in Berlin."
    assert "replaced by a newer fact" in old.inner_text()
    assert old.get_by_role("button", name="Edit").count() == 0
    panel.get_by_label("Show history").uncheck()
    old.wait_for(state="detached")

    # delete: a second click confirms; the fact is erased on the server
    item.get_by_role("button", name="Delete").click()
    assert item.is_visible() and fact["id"] in [f["id"] for f in web.facts("ana")]
    item.get_by_role("button", name="Delete").click()
    item.wait_for(state="detached")
    assert fact["id"] not in [f["id"] for f in web.facts("ana", history=True)]

    # keys on: another user sees none of it, and cannot touch it
    other = signed_in(browser, web, "bob")
    panel = open_memory(other)
    assert "Nothing remembered yet" in panel.locator("#memory-note").inner_text()
    assert panel.locator(".fact").count() == 0
    lisbon = next(f for f in web.facts("ana") if "Lisbon" in f["text"])
    with web.api("bob") as c:
        assert c.delete(f"/api/memories/{lisbon['id']}").status_code == 404
    assert not page.errors and not other.errors


def test_the_facts_used_show_under_the_answer_and_after_reload(
    web: MemoryWeb,
    browser: Any,  # noqa: F811
) -> None:
    # CSP is the second wall; take it down so this proves the text-only rendering on its own.
    page = signed_in(browser, web, "cleo", bypass_csp=True)
    first, _ = ask(page, CAT)
    assert first.locator(".used-facts").count() == 0  # nothing was known yet
    ask(page, TRAP)
    web.wait_facts("cleo", 2)

    page.get_by_role("button", name="New conversation").click()
    turn, _ = ask(page, "What is the name of my cat? And my nickname?")
    cid = cid_of(page)

    def assert_shown(turn: Any) -> None:
        facts = turn.locator(".used-facts")
        assert "What you told it" in facts.locator(".used-title").inner_text()
        shown = facts.locator(".used-fact .used-text").all_inner_texts()
        assert CAT in shown and TRAP in shown  # the HTML is shown as text
        assert all(w == f"said {today()}" for w in facts.locator(".used-when").all_inner_texts())
        # the council's own earlier answers (the echo head's) are apart, labelled, folded
        past = turn.locator(".used-past")
        assert "Past answers recalled" in past.locator("summary").inner_text()
        assert "\nA: Echo: Please remember" in str(past.locator("li").first.text_content())
        assert not past.locator("li").first.is_visible()
        assert all(not t.startswith("Echo:") for t in shown)
        assert page.locator(".used img, .used script, #memory-list img").count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"

    assert_shown(turn)

    page.reload()  # the stored conversation renders what its answer used
    page.wait_for_selector(".turn .meta")
    assert cid_of(page) == cid
    assert_shown(page.locator(".turn").last)

    panel = open_memory(page)
    assert TRAP in panel.locator(".fact .fact-text").all_inner_texts()
    assert page.locator("#memory-list img, #memory-list script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not page.errors


def test_forget_everything_asks_first_and_cancel_loses_nothing(
    web: MemoryWeb,
    browser: Any,  # noqa: F811
) -> None:
    with web.api("fay") as c:  # someone else's memory, which must stay
        said = {"model": "council", "messages": [{"role": "user", "content": "I am a baker."}]}
        assert c.post("/v1/chat/completions", json=said).status_code == 200
    fays = web.wait_facts("fay", 1)
    page = signed_in(browser, web, "dora")
    ask(page, CAT)
    web.wait_facts("dora", 1)
    with web.api("dora") as c:
        assert len(c.get("/api/conversations").json()["conversations"]) == 1
    page.locator(".conv").first.wait_for()

    panel = open_memory(page)
    panel.get_by_role("button", name="Forget everything about me").click()
    go = panel.get_by_role("button", name="Forget everything", exact=True)
    assert go.is_disabled()
    panel.get_by_label("Type forget everything to confirm").fill("forget")
    assert go.is_disabled()
    panel.get_by_role("button", name="Cancel").click()
    assert panel.locator("#forget-form").is_hidden()
    assert len(web.facts("dora")) == 1
    with web.api("dora") as c:
        assert len(c.get("/api/conversations").json()["conversations"]) == 1

    panel.get_by_role("button", name="Forget everything about me").click()
    assert panel.get_by_label("Type forget everything to confirm").input_value() == ""
    panel.get_by_label("Type forget everything to confirm").fill("forget everything")
    go.click()
    panel.locator("#memory-note", has_text="Forgotten: 1 facts").wait_for()
    assert panel.locator(".fact").count() == 0
    page.locator("#conversations", has_text="No conversations yet.").wait_for()
    assert page.locator(".turn").count() == 0
    assert web.facts("dora", history=True) == []
    with web.api("dora") as c:
        assert c.get("/api/conversations").json()["conversations"] == []
    assert web.facts("fay") == fays  # only the caller's memory went
    assert not page.errors


def test_thumbs_down_can_say_what_it_should_have_said(
    web: MemoryWeb,
    browser: Any,  # noqa: F811
) -> None:
    page = signed_in(browser, web, "eli")
    turn, _ = ask(page, "What is 2 + 2?")
    exchange_id = turn.get_attribute("data-exchange-id")
    box = turn.locator(".fb-fix")
    assert box.is_hidden()

    with page.expect_request("**/api/feedback") as plain:
        turn.get_by_role("button", name="Bad answer").click()
    assert plain.value.post_data_json == {"exchange_id": exchange_id, "rating": -1}
    turn.locator(".fb-status", has_text="Recorded: bad answer").wait_for()
    assert "What should it have said?" in box.inner_text()

    with page.expect_response("**/api/feedback") as sent:
        turn.get_by_label("What should it have said?").fill("4")
        turn.get_by_role("button", name="Send correction").click()
    assert sent.value.status == 200
    assert sent.value.request.post_data_json == {
        "exchange_id": exchange_id,
        "rating": -1,
        "correction": "4",
    }
    turn.locator(".fb-status", has_text="your correction: “4”").wait_for()
    assert box.is_hidden()
    with web.api("eli") as c:
        stored = c.get(f"/api/exchanges/{exchange_id}").json()
        assert [f["rating"] for f in stored["feedback"]] == [-1, -1]
        assert stored["feedback"][-1]["correction"] == "4"
        assert stored["success"] is False and stored["label_source"] == "feedback"
        too_long = {"exchange_id": exchange_id, "rating": -1, "correction": "x" * 4001}
        r = c.post("/api/feedback", json=too_long)
        assert r.status_code == 400 and "correction" in r.json()["error"]["message"]

    # 👍 opens no correction box
    turn.get_by_role("button", name="Good answer").click()
    turn.locator(".fb-status", has_text="Recorded: good answer").wait_for()
    assert box.is_hidden()
    assert not page.errors


# --- single-user mode (no keys): the "You are" label says whose memory ---------------------------
def test_single_user_mode_shows_the_labels_own_facts(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    heads = [scripted(*["Noted."] * 4, id="s0")]
    settings = settings_with(
        [h.spec for h in heads], memory=True, embedder="minilm", facts=True, data_dir=tmp_path
    )
    app = create_app(settings, Council(settings, heads))
    with ThreadServer(app) as server:
        page = open_page(browser, server.url, "gus")
        ask(page, "I am allergic to peanuts.")
        deadline = time.monotonic() + 60
        while not httpx.get(f"{server.url}/api/memories?user=gus").json()["memories"]:
            assert time.monotonic() < deadline, "the fact worker stored nothing"
            time.sleep(0.2)
        panel = open_memory(page)
        assert panel.locator(".fact .fact-text").all_inner_texts() == ["I am allergic to peanuts."]
        assert panel.locator("#memory-user").inner_text() == "gus"
        panel.get_by_role("button", name="Close").click()

        page.fill("#user", "hal")
        page.dispatch_event("#user", "change")
        panel = open_memory(page)
        assert panel.locator(".fact").count() == 0
        assert "Nothing remembered yet" in panel.locator("#memory-note").inner_text()
        assert len(httpx.get(f"{server.url}/api/memories?user=gus").json()["memories"]) == 1
        assert not page.errors


# --- facts off -----------------------------------------------------------------------------------
def test_facts_off_the_panel_says_how_to_turn_them_on(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    heads = [scripted("Four.", id="s0"), scripted("Four.", id="s1")]
    settings = settings_with([h.spec for h in heads])  # facts (and memory) off
    app = create_app(settings, Council(settings, heads))
    with ThreadServer(app) as server:
        r = httpx.get(f"{server.url}/api/memories")
        assert r.status_code == 400 and r.json()["error"]["code"] == "memory_disabled"
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body.ready")
        panel = open_memory(page)
        note = panel.locator("#memory-note")
        note.filter(has_text="COUNCIL_FACTS=true").wait_for()
        assert panel.locator("#forget").is_hidden()
        assert panel.locator("#memory-history-field").is_hidden()
        page.close()
