"""A JSON schema as a decoding constraint: llguidance masks each row's logits to the tokens
that keep the text valid under the schema.

llguidance was chosen over xgrammar and outlines-core on our engine (CPU, SmolLM2-135M,
benchmarks in the issue 17 report): it compiled a schema in ~7 ms (xgrammar ~35 ms,
outlines-core ~1.2 s), computed a mask in ~1.4 ms a token (xgrammar ~1.9, outlines-core ~3.1),
needs no torch.compile or triton, and names an unsupported schema keyword before any decode.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import llguidance
import llguidance.hf
import torch

from council.errors import ResponseSchemaError
from council.structured.applicable import problem

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions

ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Compact JSON (no free whitespace): fewer tokens, and a small model cannot wander in blanks.
OPTIONS: JsonCompileOptions = {"whitespace_flexible": False}
_BITS = torch.arange(32, dtype=torch.int32)


MAX_COMPILED = 256  # compiled grammars kept per model


def effective(schema: dict[str, Any]) -> dict[str, Any]:
    """`{}` means "any JSON object" (response_format json_object)."""
    return schema or ANY_OBJECT


def compile_schema(schema: dict[str, Any]) -> str:
    """The llguidance grammar for a schema; ResponseSchemaError (400) names what is wrong."""
    if not isinstance(schema, dict):
        raise ResponseSchemaError(f"the JSON schema must be an object, not {type(schema).__name__}")
    schema = effective(schema)
    why = problem(schema)
    if why is not None:
        raise ResponseSchemaError(f"the JSON schema {why}")
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), OPTIONS)
    except ValueError as exc:
        raise ResponseSchemaError(f"the JSON schema cannot be read: {exc}") from None
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise ResponseSchemaError(f"the JSON schema uses what structured output does not support: "
                          f"{messages[0]}")  # fmt: skip
    return grammar


def text_or_call(call_schema: dict[str, Any]) -> str:
    """The llguidance (Lark) grammar of "free text, or a call valid under `call_schema`": the
    text may not open with JSON, so a reply that starts a call must finish a valid one."""
    return (
        f"start: call | TEXT\ncall: %json {json.dumps(call_schema)}\nTEXT: /[^{{\\[\\s][\\s\\S]*/\n"
    )


def compile_text_or_call(call_schema: dict[str, Any]) -> str:
    grammar = llguidance.grammar_from("lark", text_or_call(call_schema))
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise ResponseSchemaError(f"the tools' schemas cannot be decoded: {messages[0]}")
    return str(grammar)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ResponseSchemaError before any head is asked when the schema cannot be decoded."""
    compile_schema(schema)


class Grammars:
    """One model's tokenizer as llguidance sees it (built once, ~1 s) and its compiled schemas."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int):
        self.vocab_size = vocab_size
        self.eos = int(hf_tokenizer.eos_token_id)
        self.tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size)
        self._compiled: dict[str, str] = {}

    def constraint(self, schema: dict[str, Any], or_text: bool = False) -> Constraint:
        """A fresh state for text valid under `schema` (or, with `or_text`, free text or
        JSON valid under it: a call a head may make instead of answering)."""
        key = ("text|" if or_text else "") + json.dumps(schema, sort_keys=True)
        if key not in self._compiled:
            if len(self._compiled) >= MAX_COMPILED:  # oldest first: a bounded cache
                del self._compiled[next(iter(self._compiled))]
            self._compiled[key] = (
                compile_text_or_call(schema) if or_text else compile_schema(schema)
            )
        matcher = llguidance.LLMatcher(self.tokenizer, self._compiled[key])
        if matcher.is_error():
            raise ResponseSchemaError(f"the JSON schema cannot be compiled: {matcher.get_error()}")
        return Constraint(matcher, self.eos)


class Constraint:
    """One row's grammar state: `mask` its logits, `advance` by the token it chose, `done`
    once the text is complete (then only EOS may follow)."""

    def __init__(self, matcher: llguidance.LLMatcher, eos: int):
        self.matcher = matcher
        self.eos = eos

    @property
    def done(self) -> bool:
        return bool(self.matcher.is_stopped() or self.matcher.is_error())

    def mask(self, logits: torch.Tensor) -> None:
        """Set to -inf, in place, the logits of every token the grammar forbids next."""
        if self.matcher.is_error():  # cannot happen under its own masks; end the row cleanly
            eos = logits[self.eos].clone()
            logits.fill_(float("-inf"))
            logits[self.eos] = eos
            return
        words = torch.frombuffer(bytearray(self.matcher.compute_bitmask()), dtype=torch.int32)
        allowed = ((words.unsqueeze(-1) >> _BITS) & 1).flatten()[: logits.shape[-1]].bool()
        logits.masked_fill_(~allowed, float("-inf"))

    def advance(self, token: int) -> None:
        self.matcher.consume_token(token)
