"""Heads: the registry is a dict, `kind` in the catalogue picks the class."""

from __future__ import annotations

from dataclasses import dataclass, field

from council.config import HeadSpec, Settings
from council.embeddings import Embedder, make_embedder
from council.errors import ConfigError
from council.heads.base import Head, HeadState
from council.heads.local import LocalHead, ModelPool
from council.heads.openai_compat import OpenAICompatHead
from council.heads.program import ProgramHead
from council.heads.tools import ToolHead

HEADS: dict[str, type[Head]] = {
    "local": LocalHead, "openai": OpenAICompatHead, "tool": ToolHead, "program": ProgramHead
}  # fmt: skip


@dataclass
class HeadContext:
    """What heads share: settings and the pool of loaded local models."""

    settings: Settings
    pool: ModelPool
    _embedder: list[Embedder | None] = field(default_factory=list, repr=False)

    def embedder(self) -> Embedder | None:
        """The sentence embedder (the council's own, shared: make_embedder caches it)."""
        if not self._embedder:
            self._embedder.append(make_embedder(self.settings.memory.embedder))
        return self._embedder[0]


def make_context(settings: Settings) -> HeadContext:
    pool = ModelPool(
        settings.models_dir,
        threads=settings.heads.threads,
        window_ms=settings.heads.batch_window_ms,
        max_batch=settings.heads.max_batch,
        pack=settings.heads.pack_weights,
        weight_dtype=settings.heads.weight_dtype,
        adaptive_threads=settings.heads.adaptive_threads,
        queue_size=settings.heads.queue_size,
        prefix_cache_tokens=settings.heads.prefix_cache_tokens,
    )
    return HeadContext(settings, pool)


def build_head(spec: HeadSpec, ctx: HeadContext) -> Head:
    try:
        cls = HEADS[spec.kind]
    except KeyError:
        raise ConfigError(
            f"Unknown head kind {spec.kind!r} for head {spec.id!r}. Known: {', '.join(HEADS)}"
        ) from None
    return cls(spec, ctx)


def build_heads(settings: Settings, ctx: HeadContext | None = None) -> list[Head]:
    """Every head in the catalogue (disabled ones too; the council skips them)."""
    ctx = ctx or make_context(settings)
    return [build_head(spec, ctx) for spec in settings.heads.specs]


__all__ = ["HEADS", "Head", "HeadContext", "HeadState", "LocalHead", "OpenAICompatHead", "ToolHead"]
