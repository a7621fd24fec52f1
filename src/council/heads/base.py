"""The one backend contract: `Head.complete()`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from council.config import HeadSpec
from council.types import ABSTAINED, CANNOT_ANSWER, Completion, GenParams, Message

if TYPE_CHECKING:
    from council.heads import HeadContext
    from council.heads.admission import Admission


@dataclass
class HeadState:
    """What /health and `council heads` show for one head."""

    status: str = "idle"  # idle | loading | ready | error
    detail: str | None = None
    calls: int = 0
    errors: int = 0
    last_error: str | None = None
    last_latency_ms: float | None = None
    loaded_at: float | None = field(default=None, repr=False)


class Head(ABC):
    """A model that answers. Failures come back as Completions with `error`, never raise;
    the one exception is OverloadedError: the call was not admitted at all (retry later)."""

    adapter: str | None = None  # the adapter version this head answers with (None: base)
    # Set by the deployer: picks the adapter per call (a canary splits traffic). It is read
    # once when a call starts, so a call that started on one adapter finishes on it.
    route: Callable[[], str | None] | None = None

    def __init__(self, spec: HeadSpec, ctx: HeadContext | None = None):
        self.spec = spec
        self.ctx = ctx
        self.state = HeadState()

    def pick_adapter(self) -> str | None:
        return self.route() if self.route is not None else self.adapter

    @property
    def id(self) -> str:
        return self.spec.id

    @abstractmethod
    async def complete(
        self, messages: list[Message], *, n: int = 1, params: GenParams | None = None
    ) -> list[Completion]:
        """Return n completions for the conversation (errors inside, not raised)."""

    async def start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Load or connect ahead of the first request (optional)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections or memory (optional)."""

    def queue(self) -> Admission | None:
        """The bounded queue this head's rows wait in (local heads); None: no local queue."""
        return None

    def token_cap(self) -> int | None:
        """The most tokens one call may generate: the head's own cap, else the server's."""
        if self.spec.max_tokens_cap is not None:
            return self.spec.max_tokens_cap
        return self.ctx.settings.heads.max_tokens_cap if self.ctx is not None else None

    # helpers shared by every backend -------------------------------------------------
    def resolve(self, params: GenParams | None) -> GenParams:
        """The call's sampling settings: the head's defaults fill the gaps; the token cap
        bounds max_tokens whoever set it (a request, a strategy, the catalogue)."""
        p = params or GenParams()
        s = self.spec
        max_tokens = s.max_tokens if p.max_tokens is None else p.max_tokens
        cap = self.token_cap()
        return GenParams(
            temperature=s.temperature if p.temperature is None else p.temperature,
            top_p=s.top_p if p.top_p is None else p.top_p,
            max_tokens=max_tokens if cap is None else min(max_tokens, cap),
            seed=s.seed if p.seed is None else p.seed,
            stop=list(s.stop) + list(p.stop or []),
            tools=p.tools,
            json_schema=p.json_schema,
            text_or_call=p.text_or_call,
        )

    def with_persona(self, messages: list[Message]) -> list[Message]:
        """Prepend the head's persona as a system message (merged with any given)."""
        persona = self.spec.system_prompt
        if not persona:
            return messages
        if messages and messages[0].role == "system":
            merged = Message("system", f"{persona}\n\n{messages[0].content}")
            return [merged, *messages[1:]]
        return [Message("system", persona), *messages]

    async def count_tokens(self, messages: list[Message]) -> int | None:
        """The prompt's length in this head's own tokens, persona included; None when the head
        cannot tell (it has no tokenizer here)."""
        return None

    def failed(self, error: str, started: float, n: int = 1) -> list[Completion]:
        """Completions that carry `error`, one per requested sample."""
        ms = (time.perf_counter() - started) * 1000
        return [
            Completion(head=self.id, latency_ms=ms, error=error, finish_reason="error")
            for _ in range(n)
        ]

    def abstained(
        self, why: str, started: float, n: int = 1, spent: Completion | None = None
    ) -> list[Completion]:
        """Abstentions, one per requested sample, saying `why` (or what a tool ran). After a
        model call (`spent`) they carry its tokens and cost, so quotas and usage count them."""
        ms = (time.perf_counter() - started) * 1000
        out = Completion(self.id, CANNOT_ANSWER, ms, finish_reason=ABSTAINED, tool=why)
        if spent is not None:
            out = replace(out, tokens_in=spent.tokens_in, tokens_out=spent.tokens_out,
                          cost_usd=spent.cost_usd)  # fmt: skip
        return [replace(out) for _ in range(n)]

    def record(self, completions: list[Completion]) -> None:
        """Count a call in the head's state (the council does this for every call)."""
        for c in completions:
            self.state.calls += 1
            self.state.last_latency_ms = c.latency_ms
            if c.error:
                self.state.errors += 1
                self.state.last_error = c.error
        if completions and self.state.status != "loading":
            self.state.status = "error" if all(c.error for c in completions) else "ready"
