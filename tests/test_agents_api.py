"""The APIs agents speak, driven by the official SDKs against a real server (uvicorn on a
loopback port): Anthropic's Messages API on the council (`anthropic`), and /v1/embeddings with
the packaged embedder (`openai`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import numpy as np
import openai
import pytest

from council.council import Council
from council.embeddings import Embedder
from council.server import create_app
from council.types import Completion, GenParams, Message
from tests.helpers import (
    ScriptedHead,
    ThreadServer,
    local_specs,
    scripted,
    serving,
    settings_with,
    write_config,
)
from tests.test_server_api import Always

MODEL = "all-MiniLM-L6-v2"


class Truncated(ScriptedHead):
    """A head whose every answer ran out of tokens (finish_reason "length")."""

    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        self.seen.append(messages)
        return [Completion(head=self.id, text="Answer: 4 and", tokens_in=3, tokens_out=2,
                           finish_reason="length")] * n  # fmt: skip


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The packaged embedder, loaded once for the module (each server gets the same one)."""
    e = Embedder("minilm")
    e.encode(["warm"])
    return e


def serve(embedder: Embedder | None, **kw: Any) -> tuple[ThreadServer, list[ScriptedHead]]:
    heads: list[ScriptedHead] = [
        Always(scripted(id="a"), "Answer: 4"),
        Always(scripted(id="b"), "Answer: 4"),
        # asked by name only (model="cut" / "broken"), never on the council's ballot
        Truncated(scripted(id="cut", enabled=False).spec),
        Always(scripted(id="broken", enabled=False), RuntimeError("HTTP 500 upstream")),
    ]
    settings = settings_with([h.spec for h in heads], max_tokens_cap=64, **kw)
    council = Council(settings, heads=heads, embedder=embedder)
    return ThreadServer(create_app(settings, council)), heads


@pytest.fixture
def server(embedder: Embedder) -> Iterator[tuple[ThreadServer, list[ScriptedHead]]]:
    server, heads = serve(embedder)
    with server:
        yield server, heads


@pytest.fixture
def claude(server: tuple[ThreadServer, list[ScriptedHead]]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server[0].url, api_key="unused", max_retries=0)


def ask(**kw: Any) -> dict[str, Any]:
    return {"model": "council", "max_tokens": 32,
            "messages": [{"role": "user", "content": "2+2?"}], **kw}  # fmt: skip


# Anthropic Messages ---------------------------------------------------------------------------
def test_messages_create_answers_in_anthropic_shape(
    claude: anthropic.Anthropic, server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    msg = claude.messages.create(
        model="council",
        max_tokens=32,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me think."}]},
            {"role": "user", "content": [{"type": "text", "text": "Just the number."}]},
        ],
        stop_sequences=["\n\n"],
        extra_body={"temperature": 0.2, "top_p": 0.9},  # older SDKs' sampling fields
    )
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == "council" and msg.stop_reason == "end_turn"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Answer: 4"
    assert msg.usage.input_tokens == 6 and msg.usage.output_tokens == 4  # two heads, 3 + 2 each
    seen = server[1][0].seen[-1]  # every head got the system prompt and the whole history
    assert [m.role for m in seen][-3:] == ["user", "assistant", "user"]
    assert any("Be brief." in m.content for m in seen if m.role == "system")
    assert seen[-1].content == "Just the number."


def test_messages_to_one_head_and_max_tokens_stop_reason(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(
        model="cut", max_tokens=8, messages=[{"role": "user", "content": "2+2?"}]
    )
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == "Answer: 4 and"
    assert msg.model == "cut"


def test_messages_stream_sends_anthropics_event_sequence(
    claude: anthropic.Anthropic, server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    with claude.messages.stream(**ask()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Answer: 4" and final.content[0].text == "Answer: 4"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4
    assert final.usage.input_tokens == 6
    raw = httpx.post(f"{server[0].url}/v1/messages", json=ask(stream=True))  # pings too
    events = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in events and raw.status_code == 200


def test_messages_errors_come_in_anthropics_shape(
    claude: anthropic.Anthropic, server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    # Tools are served now (tests/test_tools.py); what cannot run here is still a 400.
    search = {"type": "web_search_20250305", "name": "web_search"}
    with pytest.raises(anthropic.BadRequestError, match="server tools"):
        claude.messages.create(**ask(), tools=[search])
    tool_result = [{"type": "tool_result", "content": "4"}]
    with pytest.raises(anthropic.BadRequestError, match="without tool_use_id"):
        claude.messages.create(**ask(messages=[{"role": "user", "content": tool_result}]))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    with pytest.raises(anthropic.BadRequestError, match="text only"):
        claude.messages.create(**ask(messages=[{"role": "user", "content": [image]}]))
    with pytest.raises(anthropic.BadRequestError, match="cap of 64"):
        claude.messages.create(**ask(max_tokens=65))
    with pytest.raises(anthropic.NotFoundError, match="Unknown model 'nope'"):
        claude.messages.create(**ask(model="nope"))
    with pytest.raises(anthropic.BadRequestError, match="cannot count tokens"):
        claude.messages.count_tokens(model="council", messages=ask()["messages"])
    raw = httpx.post(f"{server[0].url}/v1/messages", json={"model": "council", "messages": []})
    assert raw.status_code == 400
    body = raw.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    # every other route keeps OpenAI's shape
    other = httpx.post(f"{server[0].url}/v1/chat/completions", json={"model": "council"})
    assert other.status_code == 400 and set(other.json()) == {"error"}


def test_a_failure_mid_stream_is_an_error_event(claude: anthropic.Anthropic) -> None:
    streamed = claude.messages.stream(**ask(model="broken"))
    with pytest.raises(anthropic.APIStatusError, match="Head broken failed"), streamed as stream:
        for _ in stream:
            pass
    with pytest.raises(anthropic.APIStatusError, match="Head broken failed") as failed:
        claude.messages.create(**ask(model="broken"))
    assert failed.value.status_code == 502
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_x_api_key_signs_in_with_keys_on(embedder: Embedder) -> None:
    server, _ = serve(embedder)
    with server:
        users = server.server.config.app.state.users
        _, key = users.add("ana")
        _, other = users.add("bo")
        ana = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
        assert ana.messages.create(**ask()).content[0].text == "Answer: 4"
        # metadata.user_id is opaque (Claude Code sends a session id): never an identity
        meta = {"user_id": "user_0f3a_session_9b2c"}
        assert ana.messages.create(**ask(), metadata=meta).stop_reason == "end_turn"
        with pytest.raises(anthropic.PermissionDeniedError, match="signed in as 'ana'"):
            ana.messages.create(**ask(), extra_body={"user": "bo"})
        stranger = anthropic.Anthropic(base_url=server.url, api_key="nope", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError, match="unknown or was revoked") as no:
            stranger.messages.create(**ask())
        assert no.value.body["type"] == "error"  # type: ignore[index]
        assert no.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        # the OpenAI SDK's bearer key works as before, and x-api-key on every other route
        gpt = openai.OpenAI(base_url=f"{server.url}/v1", api_key=other, max_retries=0)
        reply = gpt.chat.completions.create(
            model="council", messages=[{"role": "user", "content": "2+2?"}]
        )
        assert reply.choices[0].message.content == "Answer: 4"
        assert httpx.get(f"{server.url}/v1/models", headers={"x-api-key": key}).status_code == 200


# /v1/embeddings -------------------------------------------------------------------------------
@pytest.fixture
def gpt(server: tuple[ThreadServer, list[ScriptedHead]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0].url}/v1", api_key="unused", max_retries=0)


def test_embeddings_single_batch_and_base64(gpt: openai.OpenAI, embedder: Embedder) -> None:
    one = gpt.embeddings.create(model=MODEL, input="The cat sat.", encoding_format="float")
    assert one.model == MODEL and len(one.data) == 1 and len(one.data[0].embedding) == 384
    expected = embedder.count_tokens(["The cat sat."])[0]
    assert one.usage.prompt_tokens == one.usage.total_tokens == expected
    texts = ["The dog ran.", "The cat sat.", "Stock prices fell."]
    batch = gpt.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in batch.data] == [0, 1, 2]
    assert batch.usage.prompt_tokens == sum(embedder.count_tokens(texts))
    vectors = np.array([d.embedding for d in batch.data])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors[1], one.data[0].embedding, atol=1e-5)  # batching changes nothing
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # pets are nearer than prices
    packed = gpt.embeddings.create(model=MODEL, input=texts)  # the SDK asks for base64
    assert np.allclose([d.embedding for d in packed.data], vectors, atol=1e-6)


def test_embedder_is_listed_as_a_model(gpt: openai.OpenAI) -> None:
    listed = {m.id: m for m in gpt.models.list()}
    assert listed[MODEL].owned_by == "sentence-transformers"
    assert listed[MODEL].type == "embedding"  # type: ignore[attr-defined]
    assert getattr(listed["council"], "type", None) is None


def test_embeddings_refusals_say_what_to_do(embedder: Embedder) -> None:
    server, _ = serve(embedder, embed_max_inputs=3)
    with server:
        gpt = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="send the text itself"):
            gpt.embeddings.create(model=MODEL, input=[[101, 7592]])
        with pytest.raises(openai.BadRequestError, match="at most 3 per request"):
            gpt.embeddings.create(model=MODEL, input=["a", "b", "c", "d"])
        with pytest.raises(openai.BadRequestError, match="Leave dimensions out"):
            gpt.embeddings.create(model=MODEL, input="a", dimensions=64)
        assert gpt.embeddings.create(model=MODEL, input="a", dimensions=384).data
        with pytest.raises(openai.APIStatusError, match="Split it into shorter") as long:
            gpt.embeddings.create(model=MODEL, input="word " * 400)
        assert long.value.status_code == 413
        with pytest.raises(openai.NotFoundError, match=f"send model='{MODEL}'"):
            gpt.embeddings.create(model="text-embedding-3-small", input="a")
        with pytest.raises(openai.BadRequestError, match="empty string"):
            gpt.embeddings.create(model=MODEL, input=["a", ""])


def test_embeddings_off_says_how_to_turn_them_on() -> None:
    server, _ = serve(None)  # settings_with: COUNCIL_EMBEDDER=none
    with server:
        gpt = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="COUNCIL_EMBEDDER=minilm"):
            gpt.embeddings.create(model=MODEL, input="a")
        assert MODEL not in {m.id for m in gpt.models.list()}


def test_embeddings_count_against_a_keys_limits(embedder: Embedder) -> None:
    server, _ = serve(embedder, rpm=1)
    with server:
        _, key = server.server.config.app.state.users.add("ana")
        gpt = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        gpt.embeddings.create(model=MODEL, input="a")
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            gpt.embeddings.create(model=MODEL, input="a")
        assert time.monotonic() - started < 60  # hang guard: refused, not queued


# `council serve` with a local head ------------------------------------------------------------
def test_served_council_with_a_local_head(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A real `council serve` (memory on, its packaged embedder): the local engine's own stop
    reason reaches Anthropic's stop_reason, and /v1/embeddings uses the memory's embedder."""
    config = write_config(tmp_path / "council.toml", local_specs(tiny_model_dir, 1))
    with serving(config, tmp_path / "data") as proc:
        claude = anthropic.Anthropic(base_url=proc.url, api_key="unused", max_retries=0)
        ask_h0: dict[str, Any] = {
            "model": "h0",
            "messages": [{"role": "user", "content": "Count to ten."}],
        }
        counted = claude.messages.count_tokens(**ask_h0).input_tokens
        assert (
            claude.messages.count_tokens(**{**ask_h0, "model": "council"}).input_tokens == counted
        )
        msg = claude.messages.create(**ask_h0, max_tokens=4)
        assert msg.usage.input_tokens == counted  # the same tokenizer, persona and template
        ran_out = msg.usage.output_tokens == 4  # the engine stopped at the budget, not EOS
        assert msg.stop_reason == ("max_tokens" if ran_out else "end_turn")
        assert msg.content[0].type == "text"
        with claude.messages.stream(
            model="council", max_tokens=4, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.stop_reason in ("max_tokens", "end_turn") and final.usage.input_tokens > 0
        gpt = openai.OpenAI(base_url=f"{proc.url}/v1", api_key="unused", max_retries=0)
        vectors = gpt.embeddings.create(model=MODEL, input=["a", "b"]).data
        assert [len(v.embedding) for v in vectors] == [384, 384]
