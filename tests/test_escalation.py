"""CloudRetry against a second server standing in for the cloud: a real OpenAI-compatible
HTTP server on a loopback port (marked `cloud = true`), reached by the real openai head."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from council.config import HeadSpec
from council.council import Council
from council.heads import OpenAICompatHead
from council.heads.base import Head
from council.server import create_app
from tests.helpers import ThreadServer, scripted, settings_with


class CloudStub:
    """An OpenAI-compatible server that answers `answer` and keeps every request it saw."""

    def __init__(self, answer: str = "Answer: 42"):
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(body: dict[str, Any]) -> dict[str, Any]:
            self.requests.append(body)
            return {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }

        self.server = ThreadServer(app)
        self.url = self.server.url

    def __enter__(self) -> CloudStub:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


@pytest.fixture
def cloud() -> Iterator[CloudStub]:
    with CloudStub() as stub:
        yield stub


COST = (10 * 0.5 + 5 * 1.0) / 1000  # the stub's usage at the cloud head's prices


def council_with(cloud: CloudStub, *local: str | Exception, **settings: Any) -> Council:
    spec = HeadSpec(
        id="cloud",
        kind="openai",
        model="gpt-stub",
        base_url=f"{cloud.url}/v1",
        provider="openai",
        tier="large",
        cloud=True,  # loopback would count as local: this one stands in for the cloud
        cost_in_per_1k=0.5,
        cost_out_per_1k=1.0,
        quality=9.0,
        timeout_s=20,
    )
    heads: list[Head] = [scripted(r, id=f"l{i}") for i, r in enumerate(local)]
    heads.append(OpenAICompatHead(spec))
    return Council(settings_with([h.spec for h in heads], **settings), heads=heads)


async def test_low_confidence_escalates_to_the_next_provider(cloud: CloudStub) -> None:
    c = council_with(cloud, "1", "2", "3", local_only=False)
    v = await c.ask("Pick a number between 1 and 100.")
    assert v.answer == "Answer: 42" and v.escalated and len(cloud.requests) == 1
    assert [x.head for x in v.votes] == ["cloud"] and v.route and v.route["provider"] == "openai"
    [local] = v.escalation
    assert local["provider"] == "local" and local["reason"] == "confidence 0.33 < 0.5"
    assert local["answer"] == "1" and len(local["votes"]) == 3
    assert v.cost_usd == pytest.approx(COST) and v.head_calls == 4
    assert any("escalated to openai after local (confidence 0.33" in n for n in v.notes)
    assert c.governor.report()["spent_by_head_usd"] == {"cloud": pytest.approx(COST)}
    metrics = c.metrics.render().decode()
    assert 'swarm_cloud_retry_total{provider="openai",reason="low_confidence"} 1.0' in metrics
    assert "swarm_cloud_share_ratio 1.0" in metrics
    # confident local answers stay local
    for i, h in enumerate(c.enabled[:3]):
        h.enqueue("7" if i else "Answer: 7")  # type: ignore[attr-defined]
    v = await c.ask("Pick a lucky number.")
    assert not v.escalated and len(cloud.requests) == 1
    assert "swarm_cloud_share_ratio 0.5" in c.metrics.render().decode()


async def test_local_only_never_calls_a_cloud_head(cloud: CloudStub) -> None:
    c = council_with(cloud, "1", "2", "3", chairman="cloud")  # local_only is the default
    v = await c.ask("Pick a number between 1 and 100.")
    assert not v.escalated and v.answer == "1"
    assert v.route and any("cloud: cloud is a cloud head and local_only is on" in r
                           for r in v.route["reasons"])  # fmt: skip
    for h in c.enabled[:3]:
        h.enqueue("4", "FINAL RANKING: Response A")  # type: ignore[attr-defined]
    v = await c.ask("Pick again", strategy="rank")  # the chairman named is the cloud head
    assert any("chairman cloud failed (refused by the governor" in n for n in v.notes)
    assert v.head_calls == 6  # answers and reviews; the refused call was never sent
    assert cloud.requests == []  # not one request reached the cloud
    assert 'swarm_governor_refusals_total{head="cloud",reason="local_only"}' in (
        c.metrics.render().decode()
    )


async def test_a_verifier_failure_escalates_even_when_the_heads_agree(cloud: CloudStub) -> None:
    cloud.answer = "2 + 2 = 4"
    c = council_with(cloud, "5", "5", "Answer: 5", local_only=False)
    v = await c.ask("What is 2 + 2?")
    assert v.escalated and v.answer == "2 + 2 = 4"
    assert v.escalation[0]["reason"] == "verifier rejected the answer"
    assert v.escalation[0]["confidence"] == 1.0
    c = council_with(cloud, "5", "5", local_only=False, escalate_on_verifier=False)
    assert (await c.ask("What is 2 + 2?")).answer == "5"
    assert len(cloud.requests) == 1


async def test_every_local_head_failing_escalates(cloud: CloudStub) -> None:
    c = council_with(cloud, RuntimeError("OOM"), RuntimeError("OOM"), local_only=False)
    v = await c.ask("Hello?")
    assert v.answer == "Answer: 42" and v.escalated
    assert v.escalation[0]["provider"] == "local" and "OOM" in v.escalation[0]["failed"]
    assert 'reason="failed"' in c.metrics.render().decode()


async def test_the_daily_budget_stops_priced_calls_and_spend_survives_restarts(
    cloud: CloudStub,
) -> None:
    c = council_with(cloud, "1", "2", "3", local_only=False, daily_budget_usd=COST / 2)
    assert (await c.ask("Pick a number.")).escalated  # under budget when it started
    for i, h in enumerate(c.enabled[:3]):
        h.enqueue(str(i))  # type: ignore[attr-defined]
    v = await c.ask("Pick another number.")
    assert not v.escalated and len(cloud.requests) == 1  # budget spent: no second call
    assert v.route and any("daily_budget_usd" in r for r in v.route["reasons"])
    again = council_with(cloud, "1", local_only=False, daily_budget_usd=COST / 2)
    report = again.governor.report()  # a new process reads the same ledger
    assert report["spent_today_usd"] == pytest.approx(COST) and report["remaining_usd"] < 0


def test_streaming_requests_escalate_too(cloud: CloudStub) -> None:
    c = council_with(cloud, "1", "2", "3", local_only=False)
    with TestClient(create_app(c.settings, c)) as client:
        body = {
            "model": "council",
            "stream": True,
            "messages": [{"role": "user", "content": "Pick a number between 1 and 100."}],
        }
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]
    chunks = [json.loads(x) for x in lines if x != "[DONE]"]
    events = [ch["council_event"] for ch in chunks if "council_event" in ch]
    assert {"event": "escalate", "provider": "openai", "reason": "confidence 0.33 < 0.5"} in events
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    assert text == "Answer: 42"
    meta = next(ch["council"] for ch in chunks if "council" in ch)
    assert meta["escalated"] and meta["route"]["provider"] == "openai"
    assert meta["chosen_model"] == "master" and len(cloud.requests) == 1
