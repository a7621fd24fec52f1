"""The web chat page, end to end: Debian's Chromium (driven by playwright) against the real
server in a subprocess with tiny local heads, an echo head and a dead head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from council.config_sections import RoutingSettings
from council.council import Council
from council.server.app import create_app
from council.strategies import STRATEGIES
from tests.helpers import ServerProcess, ThreadServer, scripted, settings_with, write_config
from tests.web_fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    canned_stream_app,
    echo_app,
    web_heads,
)

Page = Any  # playwright's Page: playwright is imported only where a browser is needed

INJECTION = (
    '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> '
    "[click me](javascript:window.__pwned=1)"
)


class LiveWeb:
    """The server under test; it can be stopped and started again on the same port and data."""

    def __init__(self, config: Path, data: Path):
        self.config, self.data = config, data
        self.proc = ServerProcess(config, data)
        self.port, self.url = self.proc.port, self.proc.url
        self.proc.wait_ready()

    def stop(self) -> None:
        self.proc.stop()

    def start(self) -> None:
        self.proc = ServerProcess(self.config, self.data, port=self.port)
        self.proc.wait_ready()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


@pytest.fixture(scope="module")
def web(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWeb]:
    root = tmp_path_factory.mktemp("web")
    with ThreadServer(echo_app()) as echo:
        heads = web_heads(tiny_model_dir, echo.url)
        config = write_config(root / "council.toml", heads, memory=True, embedder="minilm")
        server = LiveWeb(config, root / "data")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            "web tests need Debian's Chromium at /usr/bin/chromium: "
            "run `apt-get install -y chromium` as root (make install does it when it can)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Any, url: str, user: str, **context: Any) -> Page:
    """A fresh browser profile (empty localStorage) on the page, as `user`."""
    context.setdefault("viewport", {"width": 1280, "height": 800})
    ctx = browser.new_context(**context)
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("body.ready")
    page.fill("#user", user)
    page.dispatch_event("#user", "change")
    return page


def ask(page: Page, text: str) -> tuple[Any, dict[str, Any]]:
    """Send a message; returns the turn once decided (or failed) and the request body sent."""
    done = page.locator(".turn .meta, .turn .error")
    before = done.count()
    with page.expect_request("**/v1/chat/completions") as req:
        page.fill("#input", text)
        page.press("#input", "Enter")
    done.nth(before).wait_for()
    return page.locator(".turn").nth(before), req.value.post_data_json


def cid_of(page: Page) -> str:
    return str(page.evaluate("location.hash")).removeprefix("#c=")


# --- the API the page uses -------------------------------------------------------------------
def test_page_assets_and_strategies_are_served(web: LiveWeb) -> None:
    page = web.get("/")
    assert page.status_code == 200 and "<title>Council</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css", "vendor/marked.umd.js", "vendor/purify.min.js"):
        assert web.get(f"/static/{asset}").status_code == 200, asset
    s = web.get("/api/strategies").json()
    assert s["strategies"] == list(STRATEGIES)
    assert s["default"] == RoutingSettings.model_fields["strategy"].default  # the config sets none
    assert s["heads"] == ["h0", "h1", "echo", "dead"] and s["fast_head"] == "h0"
    assert s["memory"] is True and set(s["descriptions"]) == set(STRATEGIES)


def test_conversation_endpoints_validate_and_404(web: LiveWeb) -> None:
    missing = web.get("/api/conversations/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "conversation_not_found"
    with httpx.Client(base_url=web.url, timeout=30) as c:
        assert c.patch("/api/conversations/nope", json={"title": "x"}).status_code == 404
        assert c.delete("/api/conversations/nope").status_code == 404
        extra = c.patch("/api/conversations/nope", json={"title": "x", "color": "red"})
        assert extra.status_code == 400 and "color" in extra.json()["error"]["message"]
        assert c.patch("/api/conversations/nope", json={"title": "  "}).status_code == 400
    assert web.get("/api/conversations?user=nobody").json() == {"conversations": []}


# --- the page ----------------------------------------------------------------------------------
def test_a_message_streams_in_with_its_ballot(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "ana")
    page.select_option("#strategy", "vote")
    with page.expect_response("**/v1/chat/completions") as resp:
        turn, sent = ask(page, "Say hi")
    assert resp.value.headers["content-type"].startswith("text/event-stream")
    cid = cid_of(page)
    assert sent["stream"] is True and sent["model"] == "council" and sent["strategy"] == "vote"
    assert sent["user"] == "ana" and sent["conversation_id"] == cid
    assert sent["messages"] == [{"role": "user", "content": "Say hi"}]

    assert turn.locator(".answer").inner_text().strip()
    meta = turn.locator(".meta").inner_text()
    assert "confidence" in meta and "strategy vote" in meta and "cost $" in meta
    turn.locator(".ballot summary").click()
    heads = turn.locator(".vote .head-id").all_inner_texts()
    assert sorted(heads) == ["dead", "echo", "h0", "h1"]
    assert turn.locator(".vote.failed .head-id").all_inner_texts() == ["dead"]
    assert "cannot reach" in turn.locator(".vote.failed .vote-error").inner_text()
    assert turn.locator(".vote.won").count() >= 1

    # the next message carries the history; the sidebar lists the conversation
    _, sent = ask(page, "And again")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    page.locator(f'.conv[data-id="{cid}"]').wait_for()
    assert page.locator(".conv").count() == 1
    stored = web.get(f"/api/conversations/{cid}").json()
    assert [t["prompt"] for t in stored["exchanges"]] == ["Say hi", "And again"]
    assert not page.errors


def test_thumbs_down_is_recorded_and_shown_after_reload(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "bo")
    turn, _ = ask(page, "What is 2 + 2?")
    exchange_id = turn.get_attribute("data-exchange-id")
    turn.get_by_role("button", name="Bad answer").click()
    status = turn.locator(".fb-status")
    status.filter(has_text="Recorded: bad answer").wait_for()
    ex = web.get(f"/api/exchanges/{exchange_id}").json()
    assert [f["rating"] for f in ex["feedback"]] == [-1]
    assert ex["success"] is False and ex["label_source"] == "feedback"

    turn.locator(".fb-comment").fill("four, not this")
    turn.get_by_role("button", name="Save comment").click()
    status.filter(has_text="four, not this").wait_for()
    ex = web.get(f"/api/exchanges/{exchange_id}").json()
    assert ex["feedback"][-1] == {**ex["feedback"][-1], "rating": -1, "comment": "four, not this"}

    page.reload()
    page.wait_for_selector("body.ready")
    again = page.locator(f'.turn[data-exchange-id="{exchange_id}"]')
    assert again.get_by_role("button", name="Bad answer").get_attribute("aria-pressed") == "true"
    assert again.get_by_role("button", name="Good answer").get_attribute("aria-pressed") == "false"
    assert "four, not this" in again.locator(".fb-status").inner_text()


def test_mode_and_strategy_persist_across_reload(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "cy")
    page.select_option("#strategy", "weighted")
    page.reload()
    page.wait_for_selector("body.ready")
    assert page.input_value("#strategy") == "weighted"
    assert page.input_value("#user") == "cy"
    _, sent = ask(page, "Hello")
    assert sent["strategy"] == "weighted" and sent["model"] == "council"

    page.get_by_role("button", name="Single head").click()
    page.reload()
    page.wait_for_selector("body.ready")
    assert page.get_attribute("#mode-single", "aria-pressed") == "true"
    assert page.is_disabled("#strategy") and page.input_value("#strategy") == "weighted"
    turn, sent = ask(page, "Hello again")
    assert sent["model"] == "h0" and "strategy" not in sent
    assert "strategy single" in turn.locator(".meta").inner_text()
    turn.locator(".ballot summary").click()
    assert turn.locator(".vote .head-id").all_inner_texts() == ["h0"]

    page.get_by_role("button", name="Council").click()
    page.reload()
    page.wait_for_selector("body.ready")
    assert page.get_attribute("#mode-council", "aria-pressed") == "true"


def test_rename_and_delete_a_conversation(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "dee")
    ask(page, "Name me")
    cid = cid_of(page)
    item = page.locator(f'.conv[data-id="{cid}"]')
    item.get_by_role("button", name="Rename").click()
    page.fill(".rename-input", "Renamed chat")
    page.press(".rename-input", "Enter")
    item.locator(".conv-title", has_text="Renamed chat").wait_for()
    assert page.inner_text("#title") == "Renamed chat"
    assert web.get(f"/api/conversations/{cid}").json()["title"] == "Renamed chat"

    item.get_by_role("button", name="Delete").click()
    item.get_by_role("button", name="Delete").click()  # the second click confirms
    item.wait_for(state="detached")
    assert web.get(f"/api/conversations/{cid}").status_code == 404
    assert cid_of(page) != cid and page.locator(".turn").count() == 0


def test_html_in_messages_and_answers_never_runs(web: LiveWeb, browser: Any) -> None:
    # CSP is the second wall; take it down so this proves the sanitizer holds on its own.
    page = open_page(browser, web.url, "mallory", bypass_csp=True)
    page.select_option("#strategy", "weighted")  # the echo head (quality 9) wins
    turn, _ = ask(page, INJECTION)
    turn.locator(".ballot summary").click()
    assert turn.locator(".vote.won .head-id").all_inner_texts() == ["echo"]

    def assert_inert() -> None:
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("#messages img, #messages script, #messages iframe").count() == 0
        assert page.locator('a[href^="javascript"]').count() == 0
        answer = page.locator(".turn .answer").first
        assert '<img src=x onerror="window.__pwned=1">' in answer.inner_text()
        assert "<script>window.__pwned=1</script>" in answer.inner_text()
        assert 'print("hi")' in answer.locator("pre code").inner_text()  # markdown still works
        assert INJECTION in page.locator(".turn .bubble").first.inner_text()

    assert_inert()
    assert INJECTION in turn.locator(".vote.won .vote-answer").inner_text()
    page.reload()  # the stored conversation renders through the same path
    page.wait_for_selector(".turn .meta")
    assert_inert()
    assert not page.errors


def test_phone_viewport_fits_without_horizontal_scroll(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "phone", viewport={"width": 390, "height": 844})
    page.select_option("#strategy", "weighted")
    turn, _ = ask(page, "A long one: " + "x" * 300 + "\n\n```\n" + "y = 1; " * 60 + "\n```")
    turn.locator(".ballot summary").click()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth,"
        " document.querySelector('#messages').scrollWidth,"
        " document.querySelector('#messages').clientWidth]"
    )
    assert max(widths[0], widths[1]) <= widths[2], widths
    assert widths[3] <= widths[4], widths
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] < 0  # a drawer, off screen until asked for
    page.get_by_role("button", name="Show conversations").click()
    page.wait_for_timeout(300)  # the slide-in transition
    assert sidebar.bounding_box()["x"] >= 0
    page.locator("#scrim").click(position={"x": 370, "y": 400})
    page.wait_for_timeout(300)
    assert sidebar.bounding_box()["x"] < 0


def test_server_down_is_shown_and_a_restart_keeps_the_conversation(
    web: LiveWeb, browser: Any
) -> None:
    page = open_page(browser, web.url, "eve")
    ask(page, "Remember me")
    cid = cid_of(page)
    web.stop()
    try:
        turn, _ = ask(page, "Are you there?")
        assert "Cannot reach the Council server" in turn.locator(".error").inner_text()
        assert turn.get_by_role("button", name="Try again").is_visible()
    finally:
        web.start()
    page.reload()
    page.wait_for_selector(".turn .meta")
    assert cid_of(page) == cid
    assert page.locator(".turn .bubble").all_inner_texts() == ["Remember me"]
    page.locator(f'.conv[data-id="{cid}"]').wait_for()


def test_memory_off_the_page_says_how_to_turn_it_on(browser: Any) -> None:
    heads = [scripted("Four.", id="s0"), scripted("Four.", id="s1")]
    settings = settings_with([h.spec for h in heads])
    app = create_app(settings, Council(settings, heads))
    with ThreadServer(app) as server:
        r = httpx.get(f"{server.url}/api/conversations")
        assert r.status_code == 400 and "COUNCIL_MEMORY=true" in r.json()["error"]["message"]
        page = open_page(browser, server.url, "ana")
        assert "COUNCIL_MEMORY=true" in page.inner_text("#history-note")
        turn, _ = ask(page, "What is 2 + 2?")
        assert turn.locator(".answer").inner_text().strip() == "Four."
        assert "COUNCIL_MEMORY=true" in turn.locator(".feedback").inner_text()


def test_a_rejected_request_shows_the_servers_message(web: LiveWeb, browser: Any) -> None:
    page = open_page(browser, web.url, "flo")
    turn, _ = ask(page, "x" * 32_001)
    message = turn.locator(".error").inner_text()
    assert "32001 characters; the limit is 32000 (COUNCIL_MAX_PROMPT_CHARS)" in message


def test_progress_events_and_stream_errors_are_shown(browser: Any) -> None:
    heads = [scripted(id="s0"), scripted(id="s1")]
    council = Council(settings_with([h.spec for h in heads]), heads)
    with ThreadServer(canned_stream_app(council)) as server:
        page = open_page(browser, server.url, "ana")
        page.fill("#input", "hello")
        page.press("#input", "Enter")
        progress = page.locator(".turn .progress")
        progress.locator(".chip.failed", has_text="s1").wait_for()
        assert progress.locator(".chip.failed").get_attribute("title") == "timed out after 1s"
        assert "s0 · 12 ms" in progress.locator(".chip.ok").inner_text()
        assert "2/2" in progress.inner_text()
        turn = page.locator(".turn").first
        turn.locator(".meta").wait_for()
        assert progress.is_hidden()
        assert turn.locator(".answer strong").inner_text() == "Four"

        for text, shown in [
            ("fail", "All 2 heads failed (s0: boom; s1: boom)."),
            ("cut", "closed the stream before the answer was complete"),
        ]:
            failed, _ = ask(page, text)
            assert shown in failed.locator(".error").inner_text()
