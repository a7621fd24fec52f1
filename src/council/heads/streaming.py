"""Real token streaming for a request that asks one head alone.

The server opens a `TextSink` around a single-head request; the first head call inside that
can stream (a local head on the continuous engine, one sample) claims it and pushes its text
deltas as they are generated. A head that cannot stream leaves the sink empty and the server
sends the finished answer instead. A context variable carries the sink, so the council's
stages between the route and the head (recall, the ballot, timeouts) need not know of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_sink: ContextVar[TextSink | None] = ContextVar("council_text_sink", default=None)


class TextSink:
    """Where one head call's text deltas go, in order; `text` is what was sent so far."""

    def __init__(self, on_text: Callable[[str], None]):
        self.on_text = on_text
        self.text = ""
        self.claimed = False

    def push(self, delta: str) -> None:
        self.text += delta
        self.on_text(delta)


@contextmanager
def streaming_to(sink: TextSink | None) -> Iterator[None]:
    """Tasks created inside the block see `sink` (contexts are copied at task creation)."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def claim() -> TextSink | None:
    """The open sink for the first head call that streams; None for every other call."""
    sink = _sink.get()
    if sink is None or sink.claimed:
        return None
    sink.claimed = True
    return sink
