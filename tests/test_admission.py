"""Admission control: token caps, request validation, bounded model queues (503 with
Retry-After, never a long timeout), abandoned rows, body size and Host checks."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from council.config import HeadSpec, Settings
from council.council import Council
from council.errors import InvalidRequestError, OverloadedError
from council.heads.admission import Admission, reserve
from council.heads.continuous import LocalModel
from council.heads.engine import Row
from council.server import create_app
from council.server.limits import allowed_hosts
from council.types import GenParams, Message
from tests.helpers import ServerProcess, local_specs, scripted, serving, settings_with, write_config

# The module asserts latency ratios and queue bounds under 60 concurrent requests: `make test`
# runs it alone, after the parallel workers (see the Makefile).
pytestmark = pytest.mark.serial

HANG_GUARD_S = 60.0  # far above any honest latency here; only a wedged engine reaches it


def scripted_app(**settings: Any) -> TestClient:
    heads = [scripted("4", id=f"s{i}") for i in range(3)]
    s = settings_with([h.spec for h in heads], **settings)
    return TestClient(create_app(s, Council(s, heads=heads)))


def chat(client: TestClient, **body: Any) -> httpx.Response:
    body.setdefault("model", "council")
    body.setdefault("messages", [{"role": "user", "content": "2+2?"}])
    return client.post("/v1/chat/completions", json=body)


# the token cap --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["council", "s0"])
@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_over_the_cap_is_a_400_naming_the_cap(model: str, stream: bool) -> None:
    with scripted_app() as client:
        r = chat(client, model=model, max_tokens=1_000_000_000, stream=stream)
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["message"] == (
            "max_tokens 1000000000 is over this server's cap of 1024 (COUNCIL_MAX_TOKENS_CAP); "
            "ask for at most 1024"
        )
        assert err["param"] == "max_tokens" and err["code"] == "max_tokens_over_cap"
        assert chat(client, model=model, max_completion_tokens=1025).status_code == 400
        assert chat(client, model=model, max_tokens=1024).status_code == 200


def test_a_heads_own_cap_is_named_when_it_is_asked_alone() -> None:
    heads = [scripted("4", id="s0", max_tokens_cap=64), scripted("4", id="s1")]
    s = settings_with([h.spec for h in heads], max_tokens_cap=512)
    with TestClient(create_app(s, Council(s, heads=heads))) as client:
        err = chat(client, model="s0", max_tokens=65).json()["error"]
        assert "cap of 64 (max_tokens_cap of head 's0')" in err["message"]
        assert chat(client, model="s1", max_tokens=512).status_code == 200
        assert "cap of 512 (COUNCIL_MAX_TOKENS_CAP)" in chat(client, max_tokens=513).text


async def test_the_python_api_refuses_too_and_every_head_call_is_capped() -> None:
    heads = [scripted("4", id="s0", max_tokens=10**9), scripted("4", id="s1", max_tokens_cap=8)]
    council = Council(settings_with([h.spec for h in heads], max_tokens_cap=100), heads=heads)
    with pytest.raises(InvalidRequestError, match="cap of 100"):
        await council.ask("2+2?", params=GenParams(max_tokens=101))
    with pytest.raises(InvalidRequestError, match="cap of 8"):
        await council.ask_single("2+2?", head_id="s1", params=GenParams(max_tokens=9))
    # A head's own default (the catalogue) or a strategy's params never pass its cap.
    assert heads[1].resolve(GenParams(max_tokens=50)).max_tokens == 8
    assert heads[1].resolve(None).max_tokens == 8
    local = HeadSpec(id="l0", max_tokens=10**9)
    from council.heads import build_head, make_context

    head = build_head(local, make_context(council.settings))
    assert head.resolve(None).max_tokens == 100


# validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": [{"role": "user", "content": "hi"}] * 9}, "messages", "COUNCIL_MAX_MESSAGES"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"stop": "x" * 65}, "stop", "1 to 64"),
        ({"stop": [""]}, "stop", "1 to 64"),
        ({"seed": 2**63}, "seed", "out of range"),
        ({"seed": -(2**63) - 1}, "seed", "out of range"),
    ],
)
def test_messages_stop_and_seed_are_validated(body: dict, param: str, words: str) -> None:
    with scripted_app(max_messages=8) as client:
        r = chat(client, **body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == param and words in err["message"]
    ok = {"stop": ["a", "b", "c", "d"], "seed": 2**63 - 1}
    with scripted_app(max_messages=8) as client:
        assert chat(client, **ok).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("content", ['"\\ud800 hi"', '[{"type": "text", "text": "hi \\udfff"}]'])
def test_a_lone_surrogate_in_a_message_is_a_400(content: str, stream: bool) -> None:
    # JSON accepts "\ud800"; the tokenizers and the embedder raise TypeError on it (a 500).
    body = (
        f'{{"model": "council", "stream": {str(stream).lower()}, '
        f'"messages": [{{"role": "user", "content": {content}}}]}}'
    )
    with scripted_app() as client:
        r = client.post("/v1/chat/completions", content=body,
                        headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == "messages" and "unpaired surrogate" in err["message"]


# the bounded queue ---------------------------------------------------------------------------
def test_a_ballot_is_reserved_whole_or_refused_whole() -> None:
    q = Admission("m", size=4)
    with reserve({q: 3}):
        assert q.admitted == 3
        with q.admit(2):  # 2 of the held 3: nothing new admitted
            assert q.admitted == 3
        assert q.admitted == 1  # the call ended; 1 held row is still the ballot's
    assert q.admitted == 0
    with q.admit(3), pytest.raises(OverloadedError) as exc, reserve({q: 2}):
        raise AssertionError("a refused ballot never runs")
    assert q.admitted == 0 and exc.value.retry_after >= 1
    with q.admit(2), reserve({q: 2}):  # 2 waiting + 2 fits a queue of 4
        assert q.admitted == 4
    with q.admit(9):  # an idle model takes any fan-out, even one wider than its queue
        assert q.admitted == 9


async def _ask(engine: LocalModel, row: Row) -> Any:
    with engine.queue.admit(1):
        return (await engine.generate([row]))[0]


async def _until(check: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not check():
        assert time.monotonic() < deadline, "the engine never got there"
        await asyncio.sleep(0.01)


async def test_full_queue_refuses_at_once_and_abandoned_rows_stop(tiny_model_dir: Path) -> None:
    # One slot (max_batch 1): while the hog holds it, every other row waits in the queue.
    engine = LocalModel(tiny_model_dir, queue_size=2, window_ms=1, max_batch=1)
    ids = await engine.encode_async([Message("user", "Tell me a long story.")])
    hog = asyncio.create_task(_ask(engine, Row(ids, temperature=2.0, max_new_tokens=10**6)))
    await _until(lambda: engine.queue.running == 1)  # the hog's batch is generating
    waiting = [asyncio.create_task(_ask(engine, Row(ids, max_new_tokens=4))) for _ in range(2)]
    dropped = asyncio.create_task(_ask(engine, Row(ids, max_new_tokens=4)))
    await asyncio.sleep(0)
    assert dropped.done() and isinstance(dropped.exception(), OverloadedError)
    assert engine.queue.waiting == 2
    gone = asyncio.create_task(_ask(engine, Row(ids, max_new_tokens=4)))
    await asyncio.sleep(0)
    assert isinstance(gone.exception(), OverloadedError)  # refused at once, not queued
    # The caller of the hog gives up (a timeout, a disconnect): its row stops at the next
    # decode step, so the rows behind it run long before a million tokens could.
    started = time.monotonic()
    hog.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiting), HANG_GUARD_S)
    assert all(r.tokens_out <= 4 for r in results)
    assert time.monotonic() - started < HANG_GUARD_S
    # Three prefills (the hog, then each waiting row as the slot frees); the hog is counted
    # as abandoned, the two that finished as done.
    assert engine.rows_abandoned == 1 and engine.batches == 3 and engine.rows_done == 2
    # A row abandoned while it waits is dropped before its batch.
    hog = asyncio.create_task(_ask(engine, Row(ids, temperature=2.0, max_new_tokens=10**6)))
    await _until(lambda: engine.queue.running == 1)
    waiter = asyncio.create_task(_ask(engine, Row(ids, max_new_tokens=4)))
    await asyncio.sleep(0.05)
    waiter.cancel()
    hog.cancel()
    await _until(lambda: engine.queue.running == 0 and engine.batches == 4)
    await asyncio.sleep(0.05)
    assert engine.rows_done == 2 and engine.batches == 4  # the waiter never ran
    assert engine.rows_abandoned == 3
    assert engine.queue.admitted == 0
    engine.close()


async def test_a_council_is_refused_before_any_head_runs(tiny_model_dir: Path) -> None:
    s = settings_with(local_specs(tiny_model_dir, 3), queue_size=2, batch_window_ms=1)
    council = Council(s)
    await council.start()
    assert council.ctx is not None
    engine = council.ctx.pool.get(str(tiny_model_dir))
    ids = await engine.encode_async([Message("user", "Tell me a long story.")])
    hog = asyncio.create_task(_ask(engine, Row(ids, temperature=2.0, max_new_tokens=10**6)))
    await _until(lambda: engine.queue.running == 1)
    waiting = asyncio.create_task(_ask(engine, Row(ids, max_new_tokens=4)))
    await asyncio.sleep(0)
    with pytest.raises(OverloadedError, match="COUNCIL_QUEUE_SIZE"):
        await council.ask("What is 2+2?")
    assert all(h.state.calls == 0 for h in council.heads.values())  # no head was asked
    assert engine.queue.admitted == 2  # the hog and the waiter; nothing leaked
    hog.cancel()
    await asyncio.wait_for(waiting, HANG_GUARD_S)
    verdict = await council.ask("What is 2+2?", params=GenParams(max_tokens=4))
    assert verdict.answer is not None and engine.queue.admitted == 0
    await council.close()


def test_an_overloaded_error_is_a_503_with_retry_after() -> None:
    heads = [scripted("4", id="s0")]
    heads[0].complete = _raise_overloaded  # type: ignore[method-assign]
    s = settings_with([h.spec for h in heads])
    with TestClient(create_app(s, Council(s, heads=heads))) as client:
        r = client.post("/vote", json={"prompt": "2+2?"})
        assert r.status_code == 503 and r.headers["retry-after"] == "3"
        assert r.json()["error"]["type"] == "overloaded_error"


async def _raise_overloaded(*args: Any, **kwargs: Any) -> Any:
    raise OverloadedError("Model m is busy.", retry_after=2.4)


# body size and Host --------------------------------------------------------------------------
def test_a_body_over_the_cap_is_a_413_declared_or_streamed() -> None:
    with scripted_app(max_body_bytes=2048) as client:
        big = {"prompt": "x" * 4000}
        r = client.post("/vote", json=big)
        assert r.status_code == 413 and "COUNCIL_MAX_BODY_BYTES" in r.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
            yield b'{"prompt": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        r = client.post("/vote", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "COUNCIL_MAX_BODY_BYTES" in r.text
        assert client.post("/vote", json={"prompt": "2+2?"}).status_code == 200


def test_default_hosts_follow_the_bind_address() -> None:
    assert allowed_hosts(Settings(host="127.0.0.1")) == ["localhost", "127.0.0.1", "[::1]",
                                                         "127.0.0.1"]  # fmt: skip
    assert allowed_hosts(Settings(host="::1"))[-1] == "[::1]"
    assert allowed_hosts(Settings(host="0.0.0.0")) == ["*"]
    assert allowed_hosts(Settings(host="::")) == ["*"]
    assert allowed_hosts(Settings(allowed_hosts="council.lan, localhost")) == [
        "council.lan",
        "localhost",
    ]


# a real server --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("admission")
    heads = local_specs(tiny_model_dir, 3, max_tokens=48, temperature=1.0)
    config = write_config(root / "council.toml", heads, embedder="none", memory=False,
                          queue_size=16, max_body_bytes=100_000)  # fmt: skip
    with serving(config, root / "data") as proc:
        yield proc


def post_chat(url: str, **body: Any) -> tuple[int, float, httpx.Headers]:
    body.setdefault("model", "council")
    body.setdefault("messages", [{"role": "user", "content": "Tell me about rivers."}])
    started = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=HANG_GUARD_S)
    return r.status_code, time.perf_counter() - started, r.headers


def test_sixty_requests_over_a_queue_of_16_get_only_200s_and_503s(server: ServerProcess) -> None:
    with ThreadPoolExecutor(60) as pool:  # a timeout raises here and fails the test
        got = list(pool.map(lambda _: post_chat(server.url), range(60)))
    codes = [code for code, _, _ in got]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 5 and codes.count(503) >= 1, codes  # the queue did bound
    assert all(int(h["retry-after"]) >= 1 for code, _, h in got if code == 503)
    assert post_chat(server.url)[0] == 200  # and the server is free again at once


def test_a_huge_request_does_not_slow_short_ones(server: ServerProcess) -> None:
    short = {"max_tokens": 8, "messages": [{"role": "user", "content": "Say hi"}]}

    def five(abuse: dict[str, Any] | None = None) -> list[float]:
        with ThreadPoolExecutor(6) as pool:
            bad = pool.submit(post_chat, server.url, **abuse) if abuse else None
            shorts = [pool.submit(post_chat, server.url, **short) for _ in range(5)]
            if bad is not None:
                assert bad.result()[0] == 400  # refused at once, never generated
            got = [f.result() for f in shorts]
        assert all(code == 200 for code, _, _ in got)
        return [seconds for _, seconds, _ in got]

    five()  # warm
    # "Solo" is the five short requests together with nothing else running: static batching
    # already spreads five arrivals over two batches, so one short alone is not the baseline.
    solo = statistics.median(max(five()) for _ in range(3))
    abused = five({"max_tokens": 10**9, "temperature": 2.0})
    assert max(abused) <= 2 * solo, (abused, solo)


def test_a_real_server_caps_bodies_and_checks_the_host(server: ServerProcess) -> None:
    r = httpx.post(f"{server.url}/vote", json={"prompt": "x" * 200_000}, timeout=30)
    assert r.status_code == 413
    r = httpx.get(f"{server.url}/health", headers={"Host": "evil.example"}, timeout=30)
    assert r.status_code == 400
    assert "COUNCIL_ALLOWED_HOSTS" in r.json()["error"]["message"]
    assert httpx.get(f"{server.url}/health", headers={"Host": "localhost:1"}).status_code == 200


def test_the_servers_own_work_waits_in_line_instead_of_being_refused() -> None:
    from council.heads.admission import Admission, patient

    queue = Admission("m", size=2)
    queue.admitted = 3  # three rows waiting: a request would get a 503 ...
    with pytest.raises(OverloadedError):
        queue.check_room(1)
    with patient():  # ... a canary's probes queue behind them
        queue.check_room(4)
    assert queue.refused == 1
