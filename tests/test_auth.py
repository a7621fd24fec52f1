"""Identity: single-user mode on loopback with no keys, keys as soon as one exists (or the
server listens beyond loopback), the key lifecycle, impersonation, and the page's sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from council.cli import app as cli
from council.council import Council
from council.server import create_app
from council.users.keys import Users
from tests.helpers import scripted, settings_with
from tests.test_server_api import Always, assert_openai_error

TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PAGE = {"X-Council-Page": "1"}
ASK = {"model": "council", "messages": [{"role": "user", "content": "2+2?"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_client(**kw: object) -> TestClient:
    head = Always(scripted(id="a"), "Answer: 4")
    settings = settings_with([head.spec], admin_token=TOKEN, **kw)
    return TestClient(create_app(settings, Council(settings, heads=[head])))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


def users_of(client: TestClient) -> Users:
    users: Users = client.app.state.users  # type: ignore[attr-defined]
    return users


def test_single_user_mode_stays_on_loopback_with_no_keys(client: TestClient) -> None:
    # Any bearer (the OpenAI SDK always sends one) is ignored; the body's user is a label.
    assert client.get("/api/session").json() == {
        "mode": "single-user", "user": None, "admin": False
    }  # fmt: skip
    r = client.post("/vote", json={"prompt": "2+2?", "user": "ana"})
    assert r.status_code == 200 and r.json()["answer"] == "Answer: 4"
    r = client.post("/v1/chat/completions", json={**ASK, "user": "bob"}, headers=bearer("sk-x"))
    assert r.status_code == 200
    assert client.get("/v1/models").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_auth_is_on_beyond_loopback_even_without_keys() -> None:
    with make_client(host="0.0.0.0") as c:
        assert c.get("/api/session").json()["mode"] == "keys"
        err = assert_openai_error(c.post("/v1/chat/completions", json=ASK), 401, "api key")
        assert err["type"] == "authentication_error"
        assert "council users add NAME" in err["message"]
        assert c.get("/health").status_code == 200
        assert c.post("/v1/chat/completions", json=ASK, headers=ADMIN).status_code == 200


def test_startup_says_who_can_get_in_beyond_loopback_with_no_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="council.server.app"), make_client(host="0.0.0.0"):
        pass
    said = caplog.text
    assert "0.0.0.0" in said and "no API key" in said and "council users add NAME" in said
    caplog.clear()
    with caplog.at_level("WARNING", logger="council.server.app"), make_client():
        pass  # loopback: single-user mode, nothing to warn about
    assert "no API key" not in caplog.text


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_key_lifecycle_and_revocation_takes_effect_at_once(client: TestClient) -> None:
    r = client.post("/api/users", json={"name": "ana"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "ana" and body["key"].startswith("ck-") and len(body["key"]) > 40
    key = body["key"]
    # A key now exists, so the server asks for one: 401 without, 200 with.
    err = assert_openai_error(client.post("/v1/chat/completions", json=ASK), 401, "api key")
    assert "council users add NAME" in err["message"]
    r = client.post("/v1/chat/completions", json=ASK, headers=bearer(key))
    assert r.status_code == 200, r.text
    assert r.headers.get("www-authenticate") is None
    bad = client.post("/v1/chat/completions", json=ASK, headers=bearer("ck-not-a-key"))
    assert_openai_error(bad, 401, "unknown or was revoked")
    assert bad.headers["www-authenticate"] == "Bearer"
    # Open without a key: health and the page's files.
    for path in ("/health", "/", "/static/app.js", "/api/session"):
        assert client.get(path).status_code == 200, path
    for path in ("/v1/models", "/api/conversations", "/api/strategies", "/metrics", "/docs"):
        assert client.get(path).status_code == 401, path
    # The key is stored hashed: its text is nowhere in the database.
    store = users_of(client).store
    rows = store.query("SELECT sha256, prefix FROM api_keys")
    assert len(rows) == 1 and rows[0]["sha256"] != key and key.startswith(rows[0]["prefix"])
    if store.path is not None:  # SQLite: not in the file; Postgres: not in any column
        assert key.encode() not in store.path.read_bytes()
    else:
        rows = store.query("SELECT * FROM api_keys") + store.query("SELECT * FROM users")
        assert all(key not in str(v) for row in rows for v in row)
    listed = client.get("/api/users", headers=ADMIN).json()["users"]
    assert [(u["name"], u["admin"], u["revoked_at"]) for u in listed] == [("ana", False, None)]
    assert listed[0]["keys"] == [rows[0]["prefix"]]
    # Revoked: the very next request is refused, on the same running server.
    assert client.delete("/api/users/ana", headers=ADMIN).json() == {
        "name": "ana", "revoked": True
    }  # fmt: skip
    assert_openai_error(
        client.post("/v1/chat/completions", json=ASK, headers=bearer(key)), 401, "revoked"
    )
    # Revoking the last user does not reopen the server as single-user.
    assert client.get("/api/session").json()["mode"] == "keys"
    assert_openai_error(client.delete("/api/users/ana", headers=ADMIN), 404, "no active user")
    again = client.post("/api/users", json={"name": "ana"}, headers=ADMIN).json()["key"]
    assert again != key
    assert client.post("/v1/chat/completions", json=ASK, headers=bearer(again)).status_code == 200
    assert_openai_error(
        client.post("/api/users", json={"name": "ana"}, headers=ADMIN), 409, "revoke"
    )
    assert_openai_error(
        client.post("/api/users", json={"name": "a b"}, headers=ADMIN), 400, "not allowed"
    )


def test_admin_endpoints_take_an_admin_key_not_a_users(client: TestClient) -> None:
    _, root = users_of(client).add("root", admin=True)
    _, ana = users_of(client).add("ana")
    r = client.post("/api/users", json={"name": "bob"}, headers=bearer(root))
    assert r.status_code == 201
    err = assert_openai_error(client.get("/api/users", headers=bearer(ana)), 403, "not an admin")
    assert err["code"] == "not_admin"
    assert client.get("/api/config/governor", headers=bearer(root)).status_code == 200
    assert client.get("/api/config/governor", headers=bearer(ana)).status_code == 403
    assert client.get("/api/config/governor", headers=ADMIN).status_code == 200


def test_the_key_decides_who_the_user_is(client: TestClient) -> None:
    _, ana = users_of(client).add("ana")
    for path, body in (("/vote", {"prompt": "2+2?"}), ("/hybrid", {"prompt": "2+2?"}),
                       ("/v1/chat/completions", ASK)):  # fmt: skip
        r = client.post(path, json={**body, "user": "bob"}, headers=bearer(ana))
        err = assert_openai_error(r, 403, "signed in as 'ana'")
        assert err["param"] == "user" and "drop the 'user' field" in err["message"]
        assert client.post(path, json={**body, "user": "ana"}, headers=bearer(ana)).is_success
        assert client.post(path, json=body, headers=bearer(ana)).is_success
    r = client.post("/v1/chat/completions", json={**ASK, "user": "bob", "stream": True},
                    headers=bearer(ana))  # fmt: skip
    assert r.status_code == 403  # refused before the stream starts
    r = client.get("/api/conversations", params={"user": "bob"}, headers=bearer(ana))
    assert r.status_code == 403


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_the_page_signs_in_with_a_session_cookie(client: TestClient) -> None:
    _, ana = users_of(client).add("ana")
    assert client.get("/api/session").json() == {"mode": "keys", "user": None, "admin": False}
    # Sign-in is for the page: without its header (a cross-site form cannot send one), refused.
    assert client.post("/api/session", json={"key": ana}).status_code == 400
    assert_openai_error(client.post("/api/session", json={"key": "ck-wrong"}, headers=PAGE),
                        401, "unknown or was revoked")  # fmt: skip
    r = client.post("/api/session", json={"key": ana}, headers=PAGE)
    assert r.status_code == 200 and r.json() == {"mode": "keys", "user": "ana", "admin": False}
    cookie = SimpleCookie(r.headers["set-cookie"])["council_session"]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/" and int(cookie["max-age"]) == 168 * 3600
    assert cookie.value and cookie.value not in ana
    # The cookie authenticates as the key's user.
    assert client.get("/api/session").json()["user"] == "ana"
    assert client.get("/v1/models").status_code == 200
    # A state-changing request carried by the cookie alone is refused (CSRF) ...
    r = client.post("/vote", json={"prompt": "2+2?"})
    assert_openai_error(r, 403, "x-council-page")
    # ... and passes with the page's header.
    assert client.post("/vote", json={"prompt": "2+2?"}, headers=PAGE).status_code == 200
    # Revoking the key ends the session at once.
    users_of(client).revoke("ana")
    assert_openai_error(client.get("/v1/models"), 401, "sign in again")
    _, ana2 = users_of(client).add("ana")
    client.post("/api/session", json={"key": ana2}, headers=PAGE)
    assert client.get("/v1/models").status_code == 200
    r = client.delete("/api/session", headers=PAGE)
    assert r.status_code == 200 and 'council_session=""' in r.headers["set-cookie"]
    client.cookies.set("council_session", cookie.value)  # an old cookie sent again
    assert client.get("/v1/models").status_code == 401
    client.cookies.clear()
    assert client.get("/v1/models").status_code == 401


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_cli_adds_lists_and_revokes_users(client: TestClient) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "ana", "--admin"])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("ck-")
    # The running server (same data dir) knows the key at once.
    assert client.get("/api/users", headers=bearer(key)).status_code == 200
    listed = runner.invoke(cli, ["users", "list"])
    assert "ana" in listed.output and "yes" in listed.output and key not in listed.output
    assert runner.invoke(cli, ["users", "add", "ana"]).exit_code == 1
    assert runner.invoke(cli, ["users", "revoke", "ana"]).exit_code == 0
    assert client.get("/api/users", headers=bearer(key)).status_code == 401
    gone = runner.invoke(cli, ["users", "revoke", "ana"])
    assert gone.exit_code == 1 and "No active user" in gone.output


def test_the_page_carries_its_sign_in_form_without_a_key(client: TestClient) -> None:
    users_of(client).add("ana")  # keys mode: the page and its files still load unsigned
    page = client.get("/")
    assert page.status_code == 200 and 'id="signin"' in page.text and "users add" in page.text
    script = client.get("/static/session.js").text
    assert "/api/session" in script and 'mode === "keys"' in script
    assert '"X-Council-Page": "1"' in client.get("/static/api.js").text


def test_the_single_user_name_cannot_be_taken_by_a_key() -> None:
    from council.errors import InvalidRequestError
    from council.users.keys import check_name

    for name in ("anonymous", "Anonymous"):
        with pytest.raises(InvalidRequestError, match="reserved"):
            check_name(name)
    assert check_name("ana") == "ana"
