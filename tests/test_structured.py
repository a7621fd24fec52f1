"""Structured output: response_format on /v1 through the official `openai` SDK, local heads
decoding under the real llguidance grammar, and the ballot over canonical JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel

from council.config import HeadSpec
from council.council import Council
from council.errors import ResponseSchemaError
from council.heads import build_heads, make_context
from council.heads.openai_compat import OpenAICompatHead
from council.server import create_app
from council.structured.canonical import canonical_json, check_answer, validate
from council.structured.grammar import check_schema
from council.types import GenParams, Message
from tests.helpers import (
    ScriptedHead,
    ThreadServer,
    local_specs,
    scripted,
    serving,
    settings_with,
    write_config,
)


class Reply(BaseModel):
    answer: Literal["yes", "no", "maybe"]
    sure: bool


class Person(BaseModel):
    name: str
    age: int


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


# the real constrained local decode ------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadServer]:
    """Our server on a loopback port, its two local heads on the tiny model."""
    data = tmp_path_factory.mktemp("structured")
    settings = settings_with(local_specs(tiny_model_dir, 2, max_tokens=48), data_dir=data)
    with ThreadServer(create_app(settings, Council(settings))) as srv:
        yield srv


def test_sdk_parse_with_a_pydantic_model_on_local_heads_under_the_grammar(
    tiny_server: ThreadServer,
) -> None:
    """A random tiny model writes anything at all; under the grammar it writes only Reply."""
    resp = sdk(tiny_server.url).chat.completions.parse(
        model="council",
        messages=[{"role": "user", "content": "Is the sky blue?"}],
        response_format=Reply,
    )
    parsed = resp.choices[0].message.parsed
    assert isinstance(parsed, Reply)
    votes = (resp.model_extra or {})["council"]["votes"]
    assert {v["head"] for v in votes} == {"h0", "h1"}
    for v in votes:  # every head's own text is valid: the grammar, not luck
        Reply.model_validate_json(v["answer"])
        assert v["invalid"] is None
    # the same head without a grammar: the random model's text is not JSON
    plain = sdk(tiny_server.url).chat.completions.create(
        model="h0", messages=[{"role": "user", "content": "Is the sky blue?"}], max_tokens=12
    )
    assert check_answer(plain.choices[0].message.content or "", {}).canonical is None


def test_a_single_head_decodes_under_the_grammar_too(tiny_server: ThreadServer) -> None:
    resp = sdk(tiny_server.url).chat.completions.parse(
        model="h1", messages=[{"role": "user", "content": "Sure?"}], response_format=Reply
    )
    assert isinstance(resp.choices[0].message.parsed, Reply)


def test_unsupported_schema_is_a_400_naming_the_keyword(tiny_server: ThreadServer) -> None:
    schema = {"type": "object", "properties": {"a": {"not": {"type": "string"}}}}
    with pytest.raises(openai.BadRequestError) as err:
        sdk(tiny_server.url).chat.completions.create(
            model="council",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
    assert '"not"' in err.value.message and "response_format" in err.value.message
    body: Any = err.value.body
    assert body["code"] == "invalid_schema" and body["param"] == "response_format"


async def test_the_engine_constrains_its_rows_and_leaves_the_others_alone(
    tiny_model_dir: Path,
) -> None:
    settings = settings_with(local_specs(tiny_model_dir, 2, max_tokens=48))
    heads = build_heads(settings, make_context(settings))
    ask = [Message("user", "Is the sky blue?")]
    # closed, as the SDK's parse() sends it: else a random model may write endless extra keys
    params = GenParams(json_schema={**Reply.model_json_schema(), "additionalProperties": False})
    constrained, plain = await asyncio.gather(
        heads[0].complete(ask, n=2, params=params), heads[1].complete(ask)
    )
    for c in constrained:
        assert c.ok and c.finish_reason == "stop", c.error
        Reply.model_validate_json(c.text)
    [alone] = await heads[1].complete(ask)  # a row without a grammar: as if it ran alone
    assert plain[0].text == alone.text and check_answer(alone.text, {}).canonical is None


@pytest.mark.slow
def test_the_default_model_answers_json_schema_and_json_object(
    smollm2_dir: Path, tmp_path: Path
) -> None:
    heads = local_specs(smollm2_dir, 2, max_tokens=48, temperature=0.0)
    config = write_config(tmp_path / "council.toml", heads, embedder="none", memory=False)
    with serving(config, tmp_path / "data") as proc:
        client = sdk(proc.url)
        resp = client.chat.completions.parse(
            model="council",
            messages=[{"role": "user", "content": "Give me a person as JSON."}],
            response_format=Person,
        )
        assert isinstance(resp.choices[0].message.parsed, Person)
        obj = client.chat.completions.create(
            model="council",
            messages=[{"role": "user", "content": "Give me a city and its country as JSON."}],
            response_format={"type": "json_object"},
        )
        assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)


# the ballot over canonical JSON (scripted heads) ------------------------------------------------
class Always(ScriptedHead):
    """Answers the same text every call."""

    def __init__(self, head_id: str, reply: str):
        super().__init__(scripted(id=head_id).spec)
        self.reply = reply
        self.params: list[GenParams | None] = []

    async def complete(self, messages, *, n=1, params=None):  # type: ignore[no-untyped-def]
        self.params.append(params)
        self.replies.append(self.reply)
        return await super().complete(messages, n=n, params=params)


def scripted_server(*replies: tuple[str, str]) -> ThreadServer:
    heads = [Always(h, text) for h, text in replies]
    settings = settings_with([h.spec for h in heads])
    return ThreadServer(create_app(settings, Council(settings, heads=heads)))


PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}  # fmt: skip


def test_invalid_answers_are_excluded_and_the_vote_is_over_canonical_json() -> None:
    with scripted_server(
        ("a", 'Sure! {"name": "Ann", "age": 30}'),  # prose around it: not JSON
        ("b", '{"age": "thirty", "name": "Ann"}'),  # JSON, not valid under the schema
        ("c", '{"name": "Bob", "age": 41}'),
        ("d", '{"age": 41.0, "name": "Bob"}'),  # the same value as c, spelt differently
        ("e", '{"name":"Ann","age":30}'),
    ) as srv:
        resp = sdk(srv.url).chat.completions.create(
            model="council",
            messages=[{"role": "user", "content": "Who?"}],
            response_format=PERSON,  # type: ignore[arg-type]
        )
    content = resp.choices[0].message.content or ""
    assert json.loads(content) == {"name": "Bob", "age": 41}
    votes = {v["head"]: v for v in (resp.model_extra or {})["council"]["votes"]}
    assert votes["a"]["invalid"].startswith("not JSON")
    assert "'thirty' is not of type 'integer'" in votes["b"]["invalid"]
    for h in "ab":
        assert votes[h]["cluster"] is None and votes[h]["weight"] == 0 and not votes[h]["won"]
    assert votes["c"]["cluster"] == votes["d"]["cluster"] != votes["e"]["cluster"]
    assert votes["c"]["won"] and votes["d"]["won"] and not votes["e"]["won"]
    assert votes["c"]["extracted"] == '{"age":41,"name":"Bob"}'


def test_json_object_mode_counts_any_object_and_fails_clearly_without_one() -> None:
    with scripted_server(("a", '{"b": [1, 2], "a": null}'), ("b", "no JSON here")) as srv:
        resp = sdk(srv.url).chat.completions.create(
            model="council",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_object"},
        )
        assert json.loads(resp.choices[0].message.content or "") == {"a": None, "b": [1, 2]}
        with pytest.raises(openai.UnprocessableEntityError) as err:
            sdk(srv.url).chat.completions.create(
                model="b",
                messages=[{"role": "user", "content": "x"}],
                response_format={"type": "json_object"},
            )
    assert "No answer was valid JSON" in err.value.message and "b: not JSON" in err.value.message
    body: Any = err.value.body
    assert body["code"] == "no_valid_answer"


def test_no_valid_answer_on_the_council_is_a_422_saying_why_and_what_to_do() -> None:
    srv = scripted_server(("a", "[1, 2]"), ("b", '{"name": "Ann"}'))
    with srv, pytest.raises(openai.UnprocessableEntityError) as err:
        sdk(srv.url).chat.completions.create(
            model="council",
            messages=[{"role": "user", "content": "Who?"}],
            response_format=PERSON,  # type: ignore[arg-type]
        )
    message = err.value.message
    assert "'age' is a required property" in message and "is not of type 'object'" in message
    assert "Raise max_tokens" in message


async def test_openai_heads_pass_response_format_through() -> None:
    """Our own server as the remote: it enforces the schema it was sent."""
    schema = PERSON["json_schema"]["schema"]  # type: ignore[index]
    with (
        scripted_server(("x", '{"name": "Ann", "age": 30}')) as good,
        scripted_server(("y", "Ann, 30")) as bad,
    ):
        heads = [
            OpenAICompatHead(HeadSpec(id=n, kind="openai", base_url=f"{s.url}/v1", model="council"))
            for n, s in (("good", good), ("bad", bad))
        ]
        ask = [Message("user", "Who?")]
        [ok] = await heads[0].complete(ask, params=GenParams(json_schema=schema))
        [refused] = await heads[1].complete(ask, params=GenParams(json_schema=schema))
        [plain] = await heads[1].complete(ask)
        for h in heads:
            await h.close()
    assert json.loads(ok.text) == {"name": "Ann", "age": 30}
    assert refused.error is not None and "HTTP 422" in refused.error
    assert plain.ok and plain.text == "Ann, 30"


async def test_python_api_takes_the_schema_through_params() -> None:
    heads = [Always("a", '{"n": 1}'), Always("b", '{"n": 1.0}'), Always("c", "one")]
    settings = settings_with([h.spec for h in heads])
    council = Council(settings, heads=heads)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    v = await council.ask("n?", params=GenParams(json_schema=schema))
    assert json.loads(v.answer) == {"n": 1}
    assert heads[0].params[0] is not None and heads[0].params[0].json_schema == schema
    assert [vote.invalid is not None for vote in v.votes] == [False, False, True]
    with pytest.raises(ResponseSchemaError):
        await council.ask("n?", params=GenParams(json_schema={"type": "strin"}))


# the pure parts -----------------------------------------------------------------------------
def test_canonical_json_sorts_keys_and_normalises_numbers() -> None:
    assert canonical_json({"b": 1.0, "a": [2.50, -0.0, True]}) == '{"a":[2.5,0,true],"b":1}'
    assert validate({"x": 1}, {}) is None and validate([1], {}) is not None  # {}: any object
    with pytest.raises(ResponseSchemaError, match="not valid"):
        check_schema({"type": "object", "properties": {"a": {"type": 5}}})


def test_schemas_that_would_exhaust_the_validator_are_400s() -> None:
    deep: dict[str, Any] = {"type": "object"}
    inner = deep
    for _ in range(300):
        inner["properties"] = {"a": {"type": "object"}}
        inner = inner["properties"]["a"]
    with pytest.raises(ResponseSchemaError, match="nests deeper than"):
        check_schema(deep)
    with pytest.raises(ResponseSchemaError, match="refers to itself without end"):
        check_schema({"$ref": "#"})
    with pytest.raises(ResponseSchemaError, match="cannot be applied"):
        check_schema({"$ref": "#/$defs/missing"})
    # an answer nested past the parser's stack is invalid, not a crash
    checked = check_answer("[" * 5000 + "]" * 5000, {"type": "array"})
    assert checked.canonical is None and checked.invalid is not None
