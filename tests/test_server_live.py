"""The real server in a subprocess on a loopback port, driven by the official `openai` SDK,
and used as a remote `openai` head by a second Council."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from council.config import HeadSpec
from council.council import Council
from tests.helpers import (
    ServerProcess,
    free_port,
    local_specs,
    serving,
    settings_with,
    write_config,
)


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("live")
    config = write_config(
        root / "council.toml", local_specs(tiny_model_dir, 3), embedder="none", memory=False
    )
    with serving(config, root / "data") as proc:
        yield proc


def sdk(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_openai_sdk_plain_completion(server: ServerProcess) -> None:
    client = sdk(server)
    assert {m.id for m in client.models.list()} == {"council", "h0", "h1", "h2"}
    resp = client.chat.completions.create(
        model="council", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8
    )
    assert resp.object == "chat.completion"
    text = resp.choices[0].message.content
    assert isinstance(text, str) and text
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    extra = resp.model_extra or {}
    assert {v["head"] for v in extra["council"]["votes"]} == {"h0", "h1", "h2"}
    assert text in {v["answer"] for v in extra["council"]["votes"]}


def test_openai_sdk_streaming(server: ServerProcess) -> None:
    client = sdk(server)
    stream = client.chat.completions.create(
        model="council",
        messages=[{"role": "user", "content": "Say hi"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=8,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_logprobs_of_the_answering_head_plain_and_streamed(server: ServerProcess) -> None:
    client = sdk(server)
    q = [{"role": "user", "content": "Say hi"}]
    resp = client.chat.completions.create(model="h0", messages=q, max_tokens=8, logprobs=True)
    choice = resp.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert len(tokens) == resp.usage.completion_tokens  # type: ignore[union-attr]
    assert all(t.logprob <= 0 and t.bytes == list(t.token.encode()) for t in tokens)
    text = choice.message.content or ""
    assert "".join(t.token for t in tokens).strip().startswith(text[:4])
    plain = client.chat.completions.create(model="h0", messages=q, max_tokens=8)
    assert plain.choices[0].logprobs is None  # only when asked
    # the council's answer is a head's own text: that head's tokens, in the final chunk
    stream = client.chat.completions.create(
        model="council", messages=q, max_tokens=8, logprobs=True, stream=True
    )
    [final] = [c for c in stream if c.choices and c.choices[0].finish_reason == "stop"]
    assert final.choices[0].logprobs is not None and final.choices[0].logprobs.content
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(model="h0", messages=q, logprobs=True, top_logprobs=3)


def test_openai_sdk_sees_errors_as_exceptions(server: ServerProcess) -> None:
    client = sdk(server)
    with pytest.raises(openai.NotFoundError, match="Unknown model"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="council", messages=[])


async def test_a_second_council_uses_the_server_as_its_openai_head(server: ServerProcess) -> None:
    remote = [
        HeadSpec(
            id="remote-council",
            kind="openai",
            model="council",
            base_url=f"{server.url}/v1",
            max_tokens=8,
            timeout_s=60,
        ),
        HeadSpec(
            id="remote-h0",
            kind="openai",
            model="h0",
            base_url=f"{server.url}/v1",
            max_tokens=8,
            cost_in_per_1k=0.5,
            cost_out_per_1k=1.0,
            logprobs=True,  # how sure the remote head is travels with its answer
        ),
        HeadSpec(
            id="dead",
            kind="openai",
            model="x",
            base_url=f"http://127.0.0.1:{free_port()}/v1",
            timeout_s=5,
        ),
    ]
    outer = Council(settings_with(remote))
    try:
        v = await outer.ask("Say hi")
    finally:
        await outer.close()
    votes = {x.head: x for x in v.votes}
    assert votes["remote-council"].error is None and votes["remote-council"].answer
    assert votes["remote-h0"].error is None and votes["remote-h0"].tokens_out > 0
    assert votes["remote-h0"].cost_usd == pytest.approx(
        (votes["remote-h0"].tokens_in * 0.5 + votes["remote-h0"].tokens_out * 1.0) / 1000
    )
    assert "cannot reach" in (votes["dead"].error or "")
    assert v.answer
    sure = votes["remote-h0"].logprob
    assert sure is not None and sure < 0 and votes["remote-council"].logprob is None


async def test_missing_api_key_is_an_error_that_names_the_variable() -> None:
    spec = HeadSpec(
        id="cloud",
        kind="openai",
        model="gpt-4o-mini",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="COUNCIL_TEST_NO_SUCH_KEY",
    )
    outer = Council(
        settings_with(
            [
                spec,
                HeadSpec(id="cloud2", kind="openai", model="m", base_url="http://127.0.0.1:9/v1"),
            ]
        )
    )
    with pytest.raises(Exception, match="set the environment variable COUNCIL_TEST_NO_SUCH_KEY"):
        await outer.ask("hi")
    await outer.close()
