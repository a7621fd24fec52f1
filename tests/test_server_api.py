"""The HTTP surface in-process: response shapes, OpenAI-style errors, health and metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from council.council import Council
from council.server import create_app
from council.server.adapters_api import PromoteRequest, TrainRequest
from tests.helpers import ScriptedHead, scripted, settings_with


class Always(ScriptedHead):
    """Answers the same text forever (or fails forever with an Exception)."""

    def __init__(self, head: ScriptedHead, reply: str | Exception):
        super().__init__(head.spec)
        self.reply = reply

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        self.replies.append(self.reply)
        return await super().complete(messages, n=n, params=params)


@pytest.fixture
def client() -> Iterator[TestClient]:
    heads = [
        Always(scripted(id="fast", speed=9.0), "Answer: 4"),
        Always(scripted(id="slowpoke", speed=2.0), "Answer: 4"),
        Always(scripted(id="broken", speed=5.0), RuntimeError("HTTP 500 upstream")),
    ]
    settings = settings_with([h.spec for h in heads], max_prompt_chars=200)
    app = create_app(settings, Council(settings, heads=heads))
    with TestClient(app) as c:
        yield c


def assert_openai_error(r, status: int, fragment: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert fragment.lower() in err["message"].lower(), err["message"]
    return err


def test_vote_returns_answer_and_full_ballot(client: TestClient) -> None:
    r = client.post("/vote", json={"prompt": "2+2?"})
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == "Answer: 4"
    meta = body["meta"]
    assert {"latency_ms", "cost_usd", "votes", "confidence", "strategy"} <= set(meta)
    assert meta["strategy"] == "vote" and meta["confidence"] == 1.0
    votes = {v["head"]: v for v in meta["votes"]}
    assert set(votes) == {"fast", "slowpoke", "broken"}
    assert "HTTP 500" in votes["broken"]["error"] and votes["fast"]["won"]
    assert client.post("/chat", json={"prompt": "2+2?"}).json()["answer"] == "Answer: 4"


def test_hybrid_uses_the_single_fastest_head(client: TestClient) -> None:
    meta = client.post("/hybrid", json={"prompt": "2+2?"}).json()["meta"]
    assert meta["strategy"] == "single" and [v["head"] for v in meta["votes"]] == ["fast"]


def test_v1_chat_completion_shape_and_models(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["council", "fast", "slowpoke", "broken"]
    r = client.post(
        "/v1/chat/completions",
        json={"model": "council", "messages": [{"role": "user", "content": "2+2?"}]},
    )
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Answer: 4"}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 6 - 0 or True
    assert body["usage"]["completion_tokens"] == 4  # two heads answered, 2 tokens each
    assert len(body["council"]["votes"]) == 3
    one = client.post(
        "/v1/chat/completions",
        json={"model": "slowpoke", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert [v["head"] for v in one.json()["council"]["votes"]] == ["slowpoke"]


def test_streaming_sends_chunks_then_done(client: TestClient) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "council",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "2+2?"}],
        },
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Answer: 4"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and "council" in chunks[-2]
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    events = [c["council_event"] for c in chunks if "council_event" in c]
    assert sorted(e["head"] for e in events) == ["broken", "fast", "slowpoke"]
    assert {e["head"]: e["error"] for e in events}["broken"] == "HTTP 500 upstream"
    first_text = next(
        i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["delta"].get("content")
    )
    assert all(i < first_text for i, c in enumerate(chunks) if "council_event" in c)


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "fragment"),
    [
        (
            "/vote",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "Malformed JSON",
        ),
        ("/vote", {"json": {}}, 400, "prompt: Field required"),
        ("/vote", {"json": {"prompt": "   "}}, 400, "blank"),
        ("/vote", {"json": {"prompt": 5}}, 400, "valid string"),
        ("/vote", {"json": {"prompt": "hi", "num_models": "many"}}, 400, "num_models"),
        ("/vote", {"json": {"prompt": "hi", "stratgy": "vote"}}, 400, "stratgy"),
        (
            "/vote",
            {"json": {"prompt": "hi", "strategy": "coinflip"}},
            400,
            "Known: vote, weighted, consensus, best_of_n, specialization",
        ),
        ("/vote", {"json": {"prompt": "x" * 201}}, 413, "COUNCIL_MAX_PROMPT_CHARS"),
        ("/v1/chat/completions", {"json": {"model": "council", "messages": []}}, 400, "messages"),
        ("/v1/chat/completions", {"json": {"model": "council"}}, 400, "messages: Field required"),
        (
            "/v1/chat/completions",
            {"json": {"model": "gpt-7", "messages": [{"role": "user", "content": "hi"}]}},
            404,
            "Unknown model 'gpt-7'. Known: council, fast",
        ),
        (
            "/v1/chat/completions",
            {"json": {"model": "council", "messages": [{"role": "wizard", "content": "hi"}]}},
            400,
            "role",
        ),
        (
            "/v1/chat/completions",
            {
                "json": {
                    "model": "council",
                    "messages": [{"role": "user", "content": "hi"}],
                    "temperature": "hot",
                }
            },
            400,
            "temperature",
        ),
        (
            "/v1/chat/completions",
            {
                "json": {
                    "model": "council",
                    "stream": True,
                    "messages": [{"role": "user", "content": "x" * 500}],
                }
            },
            413,
            "limit",
        ),
        ("/nowhere", {"json": {}}, 404, "No route POST /nowhere"),
    ],
)
def test_client_mistakes_get_openai_shaped_4xx(client, path, kwargs, status, fragment) -> None:  # type: ignore[no-untyped-def]
    assert_openai_error(client.post(path, **kwargs), status, fragment)


def test_all_heads_failing_is_502_with_each_error(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "broken", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert_openai_error(r, 502, "HTTP 500 upstream")


def test_health_and_metrics(client: TestClient) -> None:
    client.post("/vote", json={"prompt": "2+2?"})
    health = client.get("/health").json()
    assert {h["id"]: h["calls"] for h in health["heads"]} == {"fast": 1, "slowpoke": 1, "broken": 1}
    assert next(h for h in health["heads"] if h["id"] == "broken")["errors"] == 1
    text = client.get("/metrics").text
    for name in (
        "swarm_vote_latency_seconds_bucket",
        "swarm_vote_results_total",
        "swarm_head_latency_seconds",
        'swarm_head_errors_total{head="broken"} 1.0',
        "swarm_head_tokens_total",
        "swarm_council_agreement",
        'swarm_http_requests_total{route="/vote",status="200"}',
    ):
        assert name in text, name


@pytest.mark.parametrize("path", ["/vote", "/chat", "/hybrid"])
def test_empty_conversation_id_is_a_400_that_says_what_to_send(
    client: TestClient, path: str
) -> None:
    # With memory on, "" reached SQLite as a dangling foreign key: a 500 after the ballot ran.
    r = client.post(path, json={"prompt": "2+2?", "conversation_id": ""})
    err = assert_openai_error(
        r, 400, "conversation_id must be a non-empty id; omit it to start a new conversation"
    )
    assert err["param"] == "conversation_id" and err["code"] == "invalid_value"
    assert "Value error" not in err["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "fragment"),
    [
        ("post", "/vote", {"json": {"prompt": "hi", "conversation_id": "   "}}, "conversation_id"),
        ("post", "/vote", {"json": {"prompt": "hi", "user": ""}}, "user must be a non-empty id"),
        (
            "post",
            "/v1/chat/completions",
            {
                "json": {
                    "model": "council",
                    "messages": [{"role": "user", "content": "hi"}],
                    "conversation_id": "",
                }
            },
            "omit it to start a new conversation",
        ),
        ("post", "/api/feedback", {"json": {"exchange_id": "", "rating": 1}}, "meta.exchange_id"),
        ("get", "/api/memory/search", {"params": {"q": "x", "user": ""}}, "user must be"),
        ("get", "/api/conversations", {"params": {"user": ""}}, "user must be a non-empty id"),
    ],
)
def test_every_empty_id_is_a_400_naming_the_field(  # type: ignore[no-untyped-def]
    client, method, path, kwargs, fragment
) -> None:
    assert_openai_error(getattr(client, method)(path, **kwargs), 400, fragment)


@pytest.mark.parametrize(
    ("model", "fields", "fragment"),
    [
        (PromoteRequest, {"version": ""}, "send 'base' for no adapter"),
        (TrainRequest, {"dataset": ""}, "omit it for the newest dataset"),
        (TrainRequest, {"role": " "}, "role must be a non-empty id"),
    ],
)
def test_admin_request_ids_are_never_empty(model, fields, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=fragment):
        model(**fields)
