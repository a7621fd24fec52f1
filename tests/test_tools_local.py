"""Tool calls on local heads: tools in the chat template's own format or as a prompt, tool
turns rendered for a template without them, a call's schema to decode under, and Anthropic's
stop_sequence reported from the head that stopped at it (a tiny random Llama)."""

from __future__ import annotations

from pathlib import Path

import anthropic

from council.council import Council
from council.errors import NoAnswerError
from council.heads import build_heads, make_context
from council.heads.tooluse import TemplateTools, prepare
from council.server import create_app
from council.toolcalls.offer import as_tools
from council.types import GenParams, Message
from tests.helpers import ThreadServer, local_specs, settings_with
from tests.test_tools import ASK, TIME, WEATHER, call


def test_a_local_prompt_names_the_tools_and_renders_tool_turns() -> None:
    tools = as_tools([WEATHER], "required")
    assert tools is not None
    history = [
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(call("get_weather", {"city": "Paris"}, "c1"),)),
        Message("tool", "18 C", tool_call_id="c1", name="get_weather"),
    ]
    plain, offered, params = prepare(history, GenParams(tools=tools), TemplateTools())
    assert offered is None and plain[0].role == "system" and "get_weather" in plain[0].content
    assert [m.role for m in plain] == ["system", "user", "assistant", "user"]
    assert '"city": "Paris"' in plain[2].content and "Result of get_weather" in plain[3].content
    assert params.json_schema is not None  # a call is required: decode under its schema
    native, offered, _ = prepare(history, GenParams(tools=tools), TemplateTools(True, True))
    assert native == history and offered == [WEATHER]


async def test_a_local_head_never_answers_prose_where_a_call_is_required(
    tiny_model_dir: Path,
) -> None:
    """A tiny random model under tool_choice required: it decodes under the call's schema
    (GenParams.json_schema) where the engine has a grammar, and makes a valid call; without
    one, its prose is excluded and the council says why. Never prose as the answer."""
    settings = settings_with(local_specs(tiny_model_dir, 1, max_tokens=48))
    ctx = make_context(settings)
    council = Council(settings, heads=build_heads(settings, ctx))
    try:
        v = await council.ask(ASK, tools=[WEATHER], tool_choice="required")
    except NoAnswerError as exc:
        assert "proposal excluded" in str(exc) or "answered text" in str(exc)
    else:
        assert v.finish_reason == "tool_calls" and v.tool_calls
        assert v.tool_calls[0].name == "get_weather"
    finally:
        await council.close()
        ctx.pool.close()


# A chat template with tools and tool turns (as Qwen's and Llama 3.1's have them), small.
TOOL_TEMPLATE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>"
    "{% endif %}{% for m in messages %}<{{ m.role }}>"
    "{% for c in m.tool_calls or [] %}<call>{{ c.function.name }}</call>{% endfor %}"
    "{% if m.role == 'tool' %}result: {% endif %}{{ m.content or '' }}</{{ m.role }}>"
    "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
)


async def test_a_template_with_tools_gets_them_in_its_own_format(tiny_model_dir: Path) -> None:
    settings = settings_with(local_specs(tiny_model_dir, 1, max_tokens=4, system_prompt=""))
    ctx = make_context(settings)
    [head] = build_heads(settings, ctx)
    await head.start()
    engine = head._engine()  # type: ignore[attr-defined]
    assert engine.template_tools() == TemplateTools(tools=False, turns=False)  # SmolLM2's
    engine.tokenizer.chat_template = TOOL_TEMPLATE
    assert engine.template_tools() == TemplateTools(tools=True, turns=True)
    tools = as_tools([WEATHER, TIME], {"type": "function", "function": {"name": "get_time"}})
    history = [
        Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(call("get_weather", {"city": "Paris"}, "c1"),)),
        Message("tool", "18 C", tool_call_id="c1", name="get_weather"),
    ]
    prompt, offered, _ = prepare(history, GenParams(tools=tools), engine.template_tools())
    text = engine.tokenizer.decode(engine.encode(prompt, offered))
    assert "<tools>get_time;</tools>" in text  # only the function tool_choice names
    assert "<assistant><call>get_weather</call></assistant>" in text
    assert "<tool>result: 18 C</tool>" in text and text.endswith("<assistant>")
    [c] = await head.complete(history, params=GenParams(tools=tools))  # through the engine
    assert c.ok and c.tokens_in == len(engine.encode(prompt, offered))
    await head.close()
    ctx.pool.close()


def test_anthropic_reports_the_stop_sequence_a_local_head_stopped_at(
    tiny_model_dir: Path,
) -> None:
    settings = settings_with(local_specs(tiny_model_dir, 1, max_tokens=12))
    ctx = make_context(settings)
    council = Council(settings, heads=build_heads(settings, ctx))
    with ThreadServer(create_app(settings, council)) as server:
        claude = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
        full = claude.messages.create(model="h0", max_tokens=12, messages=ASK)  # type: ignore[arg-type]
        text = full.content[0].text  # type: ignore[union-attr]
        stop = text[len(text) // 2 : len(text) // 2 + 2]
        assert stop.strip() and full.stop_reason in ("max_tokens", "end_turn"), text
        cut = claude.messages.create(
            model="h0",
            max_tokens=12,
            messages=ASK,
            stop_sequences=[stop],  # type: ignore[arg-type]
        )
        assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
        assert stop not in cut.content[0].text  # type: ignore[union-attr]
    ctx.pool.close()


def test_under_auto_a_call_once_begun_is_decoded_under_the_tools_schemas(
    tiny_model_dir: Path,
) -> None:
    """tool_choice auto with tools in a prompt: the head decodes under "free text, or a call
    valid under the tools' schemas" (llguidance), so prose stays free and a begun call can
    only be a valid one. With the template's own tool format, nothing is imposed."""
    from transformers import AutoTokenizer

    from council.structured.grammar import Grammars

    tools = as_tools([WEATHER], "auto")
    assert tools is not None
    asked = [Message("user", "What is the weather in Paris?")]
    _, _, params = prepare(asked, GenParams(tools=tools), TemplateTools())
    assert params.json_schema is None and params.text_or_call is not None
    _, _, native = prepare(asked, GenParams(tools=tools), TemplateTools(True, True))
    assert native.text_or_call is None and native.json_schema is None

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    grammars = Grammars(tok, len(tok))

    def fed(text: str) -> tuple[bool, bool]:
        """(every token allowed, the grammar finished) after feeding `text`."""
        c = grammars.constraint(params.text_or_call or {}, or_text=True)
        for t in tok(text, add_special_tokens=False)["input_ids"]:
            c.advance(t)
        return not c.matcher.is_error(), c.done

    assert fed("It is sunny in Paris today.") == (True, False)  # prose: free, open-ended
    assert fed('{"name":"get_weather","arguments":{"city":"Paris"}}') == (True, True)
    assert fed('{"name":"get_time"')[0] is False  # not among the tools
    assert fed('{"name":"get_weather","arguments":{"town":"Paris"}}')[0] is False
