"""Tool calls decided by the council, driven by the official SDKs against a real server
(uvicorn on a loopback port): each scripted head proposes a call or text, the council votes
over canonical calls, and the reply is OpenAI's tool_calls or Anthropic's tool_use blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import anthropic
import httpx
import openai
import pytest

from council.config import HeadSpec
from council.council import Council
from council.heads import build_heads, make_context
from council.server import create_app
from council.toolcalls.canonical import proposal_key
from council.toolcalls.offer import as_tools
from council.toolcalls.parse import parse_calls
from council.types import Completion, GenParams, Message, ToolCall
from tests.helpers import ScriptedHead, ThreadServer, scripted, settings_with

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def call(name: str, args: dict[str, Any] | str, cid: str | None = None) -> ToolCall:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return ToolCall(cid or f"call_{name}_{len(arguments)}", name, arguments)


def proposes(*calls: ToolCall, text: str = "") -> Completion:
    """A scripted head's reply that proposes these calls."""
    return Completion(head="", text=text, tool_calls=list(calls))


@pytest.fixture
def council_server() -> Iterator[tuple[ThreadServer, list[ScriptedHead]]]:
    heads = [scripted(id=i) for i in ("a", "b", "c")]
    settings = settings_with([h.spec for h in heads])
    with ThreadServer(create_app(settings, Council(settings, heads=heads))) as server:
        yield server, heads


@pytest.fixture
def client(council_server: tuple[ThreadServer, list[ScriptedHead]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{council_server[0].url}/v1", api_key="x", max_retries=0)


def script(heads: list[ScriptedHead], *replies: Any) -> None:
    for h, r in zip(heads, replies, strict=True):
        h.enqueue(r)


def votes(resp: Any) -> dict[str, dict[str, Any]]:
    return {v["head"]: v for v in resp.model_extra["council"]["votes"]}


# OpenAI --------------------------------------------------------------------------------------
def test_a_tool_round_trip_call_then_result_then_answer(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    # The same call three ways: keys in another order, 1.0 for 1, a stray space.
    script(
        heads,
        proposes(call("get_weather", {"city": "Paris", "unit": "c"}, "call_a1")),
        proposes(call("get_weather", {"unit": "c", "city": " Paris"})),
        proposes(call("get_weather", '{"city":"Paris","unit":"c"}')),
    )
    resp = client.chat.completions.create(model="council", messages=ASK, tools=[WEATHER, TIME])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [tc] = choice.message.tool_calls or []
    assert tc.type == "function" and tc.id == "call_a1"
    assert tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"city": "Paris", "unit": "c"}
    assert resp.model_extra["council"]["confidence"] == 1.0
    offered = heads[0].asked_with[-1]
    assert offered is not None and offered.tools is not None
    assert [f.name for f in offered.tools.functions] == ["get_weather", "get_time"]

    script(heads, *["It is 18 °C in Paris."] * 3)
    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tc.id, "content": "18 C, sunny"},
    ]
    answer = client.chat.completions.create(model="council", messages=history, tools=[WEATHER])
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == "It is 18 °C in Paris."
    assert not answer.choices[0].message.tool_calls
    for h in heads:  # every head saw the call and its result as they were, not as user turns
        assistant, result = h.seen[-1][-2:]
        assert assistant.role == "assistant" and assistant.tool_calls is not None
        assert assistant.tool_calls[0].id == "call_a1"
        assert json.loads(assistant.tool_calls[0].arguments_json)["city"] == "Paris"
        assert result.role == "tool" and result.tool_call_id == "call_a1"
        assert result.content == "18 C, sunny" and result.name == "get_weather"


def test_tool_choice_forces_a_function_and_other_proposals_lose_their_vote(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    script(
        heads,
        proposes(call("get_weather", {"city": "Paris"})),  # not the function asked for
        "It is noon.",  # text, where a call is required
        proposes(call("get_time", {"city": "Paris"})),
    )
    forced = {"type": "function", "function": {"name": "get_time"}}
    resp = client.chat.completions.create(
        model="council", messages=ASK, tools=[WEATHER, TIME], tool_choice=forced
    )
    [tc] = resp.choices[0].message.tool_calls or []
    assert tc.function.name == "get_time" and resp.choices[0].finish_reason == "tool_calls"
    ballot = votes(resp)
    assert "tool_choice asked for 'get_time'" in ballot["a"]["error"]
    assert "answered text" in ballot["b"]["error"]
    assert ballot["c"]["won"] and not ballot["a"]["won"] and ballot["a"]["weight"] == 0
    seen = heads[0].asked_with[-1]
    assert seen is not None and seen.tools is not None and seen.tools.forced == "get_time"


def test_the_majority_call_wins_and_the_minority_is_on_the_ballot(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    script(
        heads,
        proposes(call("get_weather", {"city": "Paris"})),
        proposes(call("get_weather", {"city": "Lyon"})),
        proposes(call("get_weather", {"city": "Paris"})),
    )
    resp = client.chat.completions.create(
        model="council", messages=ASK, tools=[WEATHER], tool_choice="required"
    )
    [tc] = resp.choices[0].message.tool_calls or []
    assert json.loads(tc.function.arguments) == {"city": "Paris"}
    ballot = votes(resp)
    assert ballot["a"]["won"] and ballot["c"]["won"] and not ballot["b"]["won"]
    minority = ballot["b"]["tool_calls"][0]["function"]
    assert minority["name"] == "get_weather" and json.loads(minority["arguments"]) == {
        "city": "Lyon"
    }
    assert ballot["b"]["extracted"] == 'get_weather({"city":"Lyon"})'
    assert ballot["b"]["cluster"] != ballot["a"]["cluster"] and ballot["b"]["error"] is None
    assert abs(resp.model_extra["council"]["confidence"] - 2 / 3) < 1e-6


def test_calls_with_invalid_arguments_are_excluded_from_the_vote(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    script(
        heads,
        proposes(call("get_weather", {"city": "Rome", "unit": "kelvin"})),  # not in the enum
        proposes(call("get_weather", '{"city": ')),  # not JSON
        proposes(call("get_weather", {"city": "Oslo"})),
    )
    resp = client.chat.completions.create(model="council", messages=ASK, tools=[WEATHER])
    [tc] = resp.choices[0].message.tool_calls or []
    assert json.loads(tc.function.arguments) == {"city": "Oslo"}
    ballot = votes(resp)
    assert "proposal excluded" in ballot["a"]["error"] and "'kelvin'" in ballot["a"]["error"]
    assert "not JSON" in ballot["b"]["error"]
    assert ballot["a"]["tool_calls"] and ballot["a"]["weight"] == 0 and ballot["c"]["won"]


def test_under_auto_the_kind_most_heads_proposed_wins(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    script(heads, "Answer: 18", proposes(call("get_weather", {"city": "Paris"})), "Answer: 18")
    resp = client.chat.completions.create(model="council", messages=ASK, tools=[WEATHER])
    assert resp.choices[0].message.content == "Answer: 18"
    assert resp.choices[0].finish_reason == "stop" and not resp.choices[0].message.tool_calls
    assert votes(resp)["b"]["tool_calls"] and not votes(resp)["b"]["won"]
    assert any("not counted: b" in n for n in resp.model_extra["council"]["notes"])
    # tool_choice none: a call is no vote at all
    script(heads, proposes(call("get_weather", {"city": "Paris"})), "Answer: 18", "Answer: 18")
    resp = client.chat.completions.create(
        model="council", messages=ASK, tools=[WEATHER], tool_choice="none"
    )
    assert resp.choices[0].message.content == "Answer: 18"
    assert "tool_choice is none" in votes(resp)["a"]["error"]


def test_streamed_tool_call_deltas_are_reassembled_by_the_sdk(
    client: openai.OpenAI, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    weather = call("get_weather", {"city": "Paris, Île-de-France", "unit": "c"}, "call_w")
    time_ = call("get_time", {"city": "Paris, Île-de-France"}, "call_t")
    # Parallel calls are one proposal, whatever their order.
    script(heads, proposes(weather, time_), proposes(time_, weather), proposes(weather, time_))
    with client.chat.completions.stream(
        model="council", messages=ASK, tools=[WEATHER, TIME]
    ) as stream:
        deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 2  # the arguments came in pieces
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [
        ("call_w", "get_weather"),
        ("call_t", "get_time"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris, Île-de-France", "unit": "c"}
    assert json.loads(calls[1].function.arguments) == {"city": "Paris, Île-de-France"}


def test_bad_tools_are_a_400_that_says_why(client: openai.OpenAI) -> None:
    broken = {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}
    with pytest.raises(openai.BadRequestError, match="not a valid JSON schema"):
        client.chat.completions.create(model="council", messages=ASK, tools=[broken])
    forced = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(openai.BadRequestError, match="not among the tools"):
        client.chat.completions.create(
            model="council", messages=ASK, tools=[WEATHER], tool_choice=forced
        )
    with pytest.raises(openai.BadRequestError, match="needs tools"):
        client.chat.completions.create(model="council", messages=ASK, tool_choice="required")
    with pytest.raises(openai.BadRequestError, match="is not a function tool"):
        client.chat.completions.create(
            model="council",
            messages=ASK,
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
            stream=True,
        )


def nested(levels: int) -> dict[str, Any]:
    """An object schema `levels` deep (a hostile client's schema)."""
    schema: dict[str, Any] = {"type": "object"}
    inner = schema
    for _ in range(levels - 1):
        inner["properties"] = {"a": {"type": "object"}}
        inner = inner["properties"]["a"]
    return schema


def test_hostile_tool_schemas_and_arguments_are_400s_not_500s(client: openai.OpenAI) -> None:
    deep = {"type": "function", "function": {"name": "f", "parameters": nested(300)}}
    with pytest.raises(openai.BadRequestError, match="nests deeper than"):
        client.chat.completions.create(model="council", messages=ASK, tools=[deep])
    endless = {"type": "function", "function": {"name": "f", "parameters": {"$ref": "#"}}}
    with pytest.raises(openai.BadRequestError, match="cannot be applied"):
        client.chat.completions.create(model="council", messages=ASK, tools=[endless])
    # a history whose call arguments nest past the parser's stack is read as text, not a 500
    args = "[" * 5000 + "]" * 5000
    history: Any = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": args}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]  # fmt: skip
    reply = client.chat.completions.create(model="council", messages=history, tools=[WEATHER])
    assert reply.choices[0].finish_reason in {"stop", "tool_calls", "length"}


# Anthropic -----------------------------------------------------------------------------------
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city now.",
    "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
}


@pytest.fixture
def claude(council_server: tuple[ThreadServer, list[ScriptedHead]]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=council_server[0].url, api_key="x", max_retries=0)


def test_anthropic_tool_round_trip(
    claude: anthropic.Anthropic, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    script(heads, *[proposes(call("get_weather", {"city": "Paris"}, "call_p"))] * 3)
    msg = claude.messages.create(
        model="council", max_tokens=64, messages=ASK, tools=[CLAUDE_WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "any"},
    )  # fmt: skip
    assert msg.stop_reason == "tool_use"
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id == "call_p"
    offered = heads[0].asked_with[-1]
    assert offered is not None and offered.tools is not None and offered.tools.choice == "required"

    script(heads, *["Sunny, 18 °C."] * 3)
    answer = claude.messages.create(
        model="council",
        max_tokens=64,
        tools=[CLAUDE_WEATHER],  # type: ignore[list-item]
        messages=[
            *ASK,  # type: ignore[list-item]
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "18 C, sunny"},
                    {"type": "text", "text": "Say it briefly."},
                ],
            },
        ],
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].text == "Sunny, 18 °C."  # type: ignore[union-attr]
    turns = heads[1].seen[-1]
    assert [m.role for m in turns[-4:]] == ["user", "assistant", "tool", "user"]
    assistant, result = turns[-3], turns[-2]
    assert assistant.tool_calls is not None and assistant.tool_calls[0].name == "get_weather"
    assert result.tool_call_id == "call_p" and result.content == "18 C, sunny"
    assert result.name == "get_weather" and turns[-1].content == "Say it briefly."


def test_anthropic_stream_sends_a_tool_use_block(
    claude: anthropic.Anthropic, council_server: tuple[ThreadServer, list[ScriptedHead]]
) -> None:
    heads = council_server[1]
    args = {"city": "Paris, Île-de-France", "unit": "f"}
    script(heads, *[proposes(call("get_weather", args, "call_s"))] * 3)
    with claude.messages.stream(
        model="council",
        max_tokens=64,
        messages=ASK,
        tools=[CLAUDE_WEATHER],  # type: ignore[list-item]
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [use] = final.content
    assert use.type == "tool_use" and use.input == args and use.id == "call_s"
    assert "input_json" in kinds and kinds[-1] == "message_stop"
    # errors about tools keep Anthropic's shape
    raw = httpx.post(
        f"{council_server[0].url}/v1/messages",
        json={"model": "council", "max_tokens": 8, "messages": ASK,
              "tools": [{"name": "f", "input_schema": {"type": 3}}]},
    )  # fmt: skip
    assert raw.status_code == 400 and raw.json()["type"] == "error"
    assert "not a valid JSON schema" in raw.json()["error"]["message"]


# The Python API and the pieces ---------------------------------------------------------------
async def test_the_python_api_takes_tools_and_tool_choice() -> None:
    heads = [scripted(id=i) for i in ("a", "b", "c")]
    council = Council(settings_with([h.spec for h in heads]), heads=heads)
    script(
        heads,
        proposes(call("get_weather", {"city": "Paris"})),
        proposes(call("get_weather", {"city": "Paris"})),
        "It is sunny.",
    )
    v = await council.ask(ASK, tools=[WEATHER], tool_choice="required", strategy="moa")
    assert v.finish_reason == "tool_calls" and v.tool_calls is not None
    assert v.tool_calls[0].name == "get_weather" and v.strategy == "vote"
    assert any("strategy moa writes its own answer" in n for n in v.notes)
    await council.close()


def test_canonical_calls_and_what_a_head_wrote() -> None:
    a = [call("f", {"x": 2.0, "y": " é"}), call("g", {})]
    b = [call("g", {}), call("f", {"y": "e\u0301", "x": 2})]
    assert proposal_key(a) == proposal_key(b)
    assert proposal_key(a) != proposal_key([call("f", {"x": 3, "y": "é"}), call("g", {})])
    [tagged] = parse_calls('<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>') or []
    assert tagged.name == "f" and json.loads(tagged.arguments_json) == {"x": 1}
    llama = parse_calls('{"name": "f", "parameters": {"x": 1}}') or []
    assert json.loads(llama[0].arguments_json) == {"x": 1}
    assert (
        len(parse_calls('[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]') or [])
        == 2
    )
    assert parse_calls("Paris is sunny.") is None
    # a stored exchange's tool turns read back as they were (memory, learning's harvest)
    turn = Message("assistant", "", tool_calls=(call("f", {"x": 1}, "c1"),))
    assert Message.coerce(json.loads(json.dumps(asdict(turn)))) == turn
    assert parse_calls('{"city": "Paris"}') is None


async def test_an_openai_head_passes_tools_and_tool_turns_through(
    council_server: tuple[ThreadServer, list[ScriptedHead]],
) -> None:
    """Our own server as the remote end of an `openai` head: the tools, tool_choice and the
    tool turns reach its heads as they were sent, and its tool_calls come back as a call."""
    server, inner = council_server
    spec = HeadSpec(id="remote", kind="openai", model="council", base_url=f"{server.url}/v1")
    settings = settings_with([spec])
    council = Council(settings, heads=build_heads(settings, make_context(settings)))
    script(inner, *[proposes(call("get_time", {"city": "Lima"}, "call_r"))] * 3)
    earlier = call("get_weather", {"city": "Lima"}, "c0")
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [earlier.to_openai()]},
        {"role": "tool", "tool_call_id": "c0", "content": "20 C"},
    ]
    forced = {"type": "function", "function": {"name": "get_time"}}
    v = await council.ask_single(history, head_id="remote", params=GenParams(
        tools=as_tools([WEATHER, TIME], forced)))  # fmt: skip
    assert v.tool_calls == [call("get_time", {"city": "Lima"}, "call_r")]
    assert v.finish_reason == "tool_calls"
    seen = inner[0].seen[-1]
    assert seen[-2].tool_calls == (earlier,)
    assert seen[-1].role == "tool" and seen[-1].tool_call_id == "c0"
    asked = inner[0].asked_with[-1]
    assert asked is not None and asked.tools is not None and asked.tools.forced == "get_time"
    await council.close()
