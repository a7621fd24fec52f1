"""Limits per key against the real app and store: 429s with Retry-After from the rpm, token and
USD limits, every head call of a council request charged to the caller, usage per key and per
head, the Prometheus counters, the CLI, and counters shared through a real redis-server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from council.cli import app as cli
from council.config import Settings
from council.council import Council
from council.server import create_app
from council.storage import open_store
from council.types import Completion, GenParams, Message
from council.users.caller import current
from council.users.keys import Users
from tests.helpers import ScriptedHead, scripted, settings_with
from tests.test_lock import redis_server, redis_url  # noqa: F401  (fixtures)

TOKENS_PER_CALL = 5  # a scripted completion is 3 tokens in, 2 out


class Always(ScriptedHead):
    """Answers the same text forever, and notes whose request each call served."""

    def __init__(self, head: ScriptedHead, reply: str):
        super().__init__(head.spec)
        self.reply = reply
        self.callers: list[str | None] = []

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        seen = current()
        in_thread = await asyncio.to_thread(current)  # what work handed to a thread sees
        assert in_thread == seen
        self.callers.append(seen.name if seen else None)
        self.replies.append(self.reply)
        return await super().complete(messages, n=n, params=params)


def heads(**spec: Any) -> list[Always]:
    return [Always(scripted(id=i, quality=q, **spec), "Answer: 4")
            for i, q in (("a", 9.0), ("b", 6.0), ("c", 3.0))]  # fmt: skip


KEYS: dict[str, str] = {}  # user -> API key, issued in this test's data dir
USERS = {"alice": False, "bob": False, "carol": False, "root": True}  # name -> admin


def issue_keys(settings: Settings) -> None:
    """Real users and keys in the data dir, so the auth middleware decides who calls."""
    store = open_store(settings)
    try:
        users = Users(store)
        if not users.keys_exist():
            KEYS.clear()
            for name, admin in USERS.items():
                KEYS[name] = users.add(name, admin=admin)[1]
    finally:
        store.close()


def make_app(members: list[Always], keys: bool = True, **limits: Any) -> FastAPI:
    settings = settings_with([h.spec for h in members], **limits)
    if keys:
        issue_keys(settings)
    return create_app(settings, Council(settings, heads=list(members)))


@pytest.fixture
def members() -> list[Always]:
    return heads()


@pytest.fixture
def client(members: list[Always]) -> Iterator[TestClient]:
    with TestClient(make_app(members, rpm=2, tokens_per_day=100)) as c:
        yield c


def as_(name: str, admin: bool = False) -> dict[str, str]:
    assert USERS[name] == admin, f"{name} is {'an' if USERS[name] else 'no'} admin"
    return {"Authorization": f"Bearer {KEYS[name]}"}


def ask(client: TestClient, who: str | None, path: str = "/vote") -> int:
    """The status of one question from this key (None: nobody signed in)."""
    headers = as_(who) if who else {}
    return client.post(path, json={"prompt": "2+2?"}, headers=headers).status_code


def assert_429(r: Any, fragment: str, max_wait: int) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= max_wait
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error"
    assert fragment in err["message"], err["message"]
    return dict(err)


def test_rpm_limit_answers_429_with_retry_after_and_names_the_limit(client: TestClient) -> None:
    for _ in range(2):
        assert ask(client, "alice") == 200
    chat = {"model": "council", "messages": [{"role": "user", "content": "2+2?"}]}
    r = client.post("/v1/chat/completions", headers=as_("alice"), json=chat)
    err = assert_429(r, "Rate limit: 2 requests per minute for key 'alice'", 60)
    assert err["code"] == "rate_limit_exceeded"
    assert "council users limits alice --rpm N" in err["message"]
    assert ask(client, "alice", "/hybrid") == 429
    # another key has its own minute
    assert ask(client, "bob", "/chat") == 200
    # routes that do not ask the council are not counted
    assert client.get("/api/usage", headers=as_("alice")).status_code == 200


def test_token_budget_refuses_once_spent_and_lets_the_crossing_request_finish(
    members: list[Always],
) -> None:
    with TestClient(make_app(members, tokens_per_day=10)) as c:
        first = c.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
        assert first.status_code == 200  # 3 heads x 5 tokens: crosses 10, still answered
        r = c.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
        err = assert_429(r, "Token limit: 10 tokens per day for key 'alice' (15 used today)",
                         86_400)  # fmt: skip
        assert err["code"] == "tokens_per_day_exceeded"
        assert "council users limits alice --tokens-per-day N" in err["message"]
        assert ask(c, "bob") == 200


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_usd_budget_where_heads_are_priced() -> None:
    priced = heads(cost_in_per_1k=100.0)  # 3 tokens in: $0.30 a call
    with TestClient(make_app(priced, usd_per_day=0.5)) as c:
        assert ask(c, "alice") == 200
        r = c.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
        assert_429(r, "Spend limit: $0.5 per day for key 'alice' ($0.9000 spent today)", 86_400)
        usage = c.get("/api/usage", headers=as_("alice")).json()["keys"][0]
        assert usage["cost_usd"] == pytest.approx(0.9)
        assert {h["head"]: h["cost_usd"] for h in usage["heads"]} == pytest.approx(
            {"a": 0.3, "b": 0.3, "c": 0.3}
        )


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_a_council_request_charges_every_head_call_it_causes(
    client: TestClient, members: list[Always]
) -> None:
    """moa: proposers, a second layer and the aggregator; each call is the caller's."""
    r = client.post("/vote", json={"prompt": "Name a colour.", "strategy": "moa"},
                    headers=as_("alice"))  # fmt: skip
    assert r.status_code == 200, r.text
    calls = {h.id: len(h.callers) for h in members}
    assert sum(calls.values()) > len(members)  # more calls than heads: layers and aggregator
    assert all(c == "alice" for h in members for c in h.callers)
    usage = client.get("/api/usage", headers=as_("alice")).json()
    [mine] = usage["keys"]
    assert mine["key"] == "alice" and mine["requests"] == 1
    assert {h["head"]: h["calls"] for h in mine["heads"]} == calls
    assert mine["tokens"] == TOKENS_PER_CALL * sum(calls.values())
    assert mine["limits"] == {"rpm": 2, "tokens_per_day": 100, "usd_per_day": None}


def test_a_streamed_request_is_charged_to_its_caller(
    client: TestClient, members: list[Always]
) -> None:
    body = {"model": "council", "stream": True,
            "messages": [{"role": "user", "content": "2+2?"}]}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body, headers=as_("carol")) as r:
        assert r.status_code == 200
        assert "[DONE]" in "".join(r.iter_text())
    assert [c for h in members for c in h.callers] == ["carol"] * len(members)
    mine = client.get("/api/usage", headers=as_("carol")).json()["keys"][0]
    assert mine["tokens"] == TOKENS_PER_CALL * len(members)


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_usage_is_your_own_unless_you_are_an_admin(client: TestClient) -> None:
    for who in ("alice", "bob"):
        assert client.post("/vote", json={"prompt": "2+2?"}, headers=as_(who)).status_code == 200
    assert [k["key"] for k in client.get("/api/usage", headers=as_("bob")).json()["keys"]] == [
        "bob"
    ]
    r = client.get("/api/usage?user=alice", headers=as_("bob"))
    assert r.status_code == 403 and "only its own usage" in r.json()["error"]["message"]
    every = client.get("/api/usage", headers=as_("root", admin=True)).json()
    assert [k["key"] for k in every["keys"]] == ["alice", "bob"]
    one = client.get("/api/usage?user=alice&days=7", headers=as_("root", admin=True)).json()
    assert [k["key"] for k in one["keys"]] == ["alice"] and one["days"] == 7


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        m = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m[1] for k, v in labels.items()):
            return float(m[2])
    return 0.0


def test_prometheus_counters_per_key(client: TestClient) -> None:
    for _ in range(3):
        client.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
    text = client.get("/metrics", headers=as_("root", admin=True)).text
    assert metric(text, "council_key_requests_total", key="alice") == 2
    assert metric(text, "council_key_rejections_total", key="alice", limit="rpm") == 1
    for head in ("a", "b", "c"):
        assert metric(text, "council_key_tokens_total", key="alice", head=head) == 2 * 5
    assert 'council_key_cost_usd_total{head="a",key="alice"} 0.0' in text  # unpriced heads


@pytest.mark.usefixtures("store_backend")  # SQLite, then Postgres
def test_cli_sets_limits_a_running_server_applies_at_once(members: list[Always]) -> None:
    runner = CliRunner()
    with TestClient(make_app(members)) as c:  # no default limits
        assert ask(c, "alice") == 200
        r = runner.invoke(cli, ["limits", "alice", "--rpm", "1", "--usd-per-day", "unlimited"])
        assert r.exit_code == 0, r.output
        assert "rpm 1" in r.output and "usd_per_day unlimited" in r.output
        # the minute counts from the limit on: one request fits, the next is refused
        assert ask(c, "alice") == 200
        r = c.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
        assert_429(r, "1 requests per minute for key 'alice'", 60)
        assert ask(c, "bob") == 200
        r = runner.invoke(cli, ["limits", "alice", "--rpm", "default"])
        assert "rpm unlimited" in r.output  # the default: no limit
        assert ask(c, "alice") == 200
    r = runner.invoke(cli, ["users", "usage", "alice"])
    assert r.exit_code == 0, r.output
    assert "alice" in r.output and all(h in r.output for h in ("a", "b", "c"))
    r = runner.invoke(cli, ["limits", "alice", "--rpm", "lots"])
    assert r.exit_code == 1 and "'unlimited', or 'default'" in r.output


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_replicas_share_counters_through_redis(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Two apps (replicas) on one data dir: with Redis they count one minute; in memory,
    each counts its own."""
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    extra = {"redis_url": url} if url else {}
    one, two = (make_app(heads(), rpm=2, **extra) for _ in range(2))
    with TestClient(one) as c1, TestClient(two) as c2:
        assert one.state.quota.meter.backend == backend
        for c in (c1, c2):
            assert ask(c, "alice") == 200
        third = c1.post("/vote", json={"prompt": "2+2?"}, headers=as_("alice"))
        assert third.status_code == (429 if backend == "redis" else 200)


def test_single_user_mode_and_the_admin_token_are_not_limited(members: list[Always]) -> None:
    with TestClient(make_app(members, keys=False, rpm=1, admin_token="op")) as c:
        for _ in range(3):  # no key exists: nobody signs in, there is no key to limit
            assert ask(c, None) == 200
    with TestClient(make_app(members, rpm=1, admin_token="op")) as c:
        for _ in range(3):  # the operator's token is not a user's key
            r = c.post("/vote", json={"prompt": "2+2?"}, headers={"Authorization": "Bearer op"})
            assert r.status_code == 200, r.text
        assert ask(c, "alice") == 200 and ask(c, "alice") == 429
