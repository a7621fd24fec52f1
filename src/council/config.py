"""Settings: one object, passed in, grouped into sections (config_sections.py).

COUNCIL_* environment variables win over council.toml, which wins over the packaged head
catalogue (catalogue.toml). Every setting keeps its flat name: `COUNCIL_PORT`, `port = 8000` at
the top of council.toml (or `[server] port = 8000`), `Settings(port=8000)`; in code it is
`settings.server.port`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from council.catalogue import DEFAULT_MODEL, HeadSpec, packaged_catalogue
from council.config_sections import (
    FLAT,
    RENAMED,
    SECTIONS,
    SEED_ENV,
    DeploySettings,
    HeadsSettings,
    LearningSettings,
    LimitsSettings,
    MemorySettings,
    RoutingSettings,
    ServerSettings,
)
from council.errors import ConfigError

__all__ = ["DEFAULT_MODEL", "HeadSpec", "Settings", "load_settings", "packaged_catalogue"]


def nest(data: dict[str, Any]) -> dict[str, Any]:
    """Route flat names (`port`, `heads = [...]`, `MIN_FAILURES_TO_TRAIN`) into their sections;
    section tables (`[server]`) pass through. Unknown names stay, so validation names them."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            out.setdefault(key, {}).update(nest_section(key, value))
            continue
        where = FLAT.get(key) or FLAT.get(key.lower())
        if where is None:
            out[key] = value
        else:
            out.setdefault(where[0], {})[where[1]] = value
    return out


def nest_section(section: str, table: dict[str, Any]) -> dict[str, Any]:
    """Inside a `[section]` table the flat spelling works too (`[memory] memory = false`)."""
    fields = SECTIONS[section].model_fields
    out = {}
    for key, value in table.items():
        where = FLAT.get(key)
        out[where[1] if where and where[0] == section and key not in fields else key] = value
    return out


class FlatEnv(PydanticBaseSettingsSource):
    """COUNCIL_<FLAT_NAME> (and the seeds' names) for every field of every section."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every section at once

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items()}
        out: dict[str, Any] = {}
        for flat, (section, name) in FLAT.items():
            info = SECTIONS[section].model_fields[name]
            for var in (f"COUNCIL_{flat}".upper(), SEED_ENV.get(flat)):
                if var is not None and var in env:
                    out.setdefault(section, {})[name] = decode(info, env[var], var)
                    break
        return out


def decode(info: FieldInfo, raw: str, var: str) -> Any:
    """Lists and tables come as JSON (COUNCIL_HEADS='[{"id": ...}]'); scalars as text."""
    if any(isinstance(m, NoDecode) or m is NoDecode for m in info.metadata):
        return raw
    origin = get_origin(info.annotation)
    complex_ = origin in (list, dict) or any(get_origin(a) in (list, dict)
                                            for a in get_args(info.annotation))  # fmt: skip
    if not complex_:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{var} must be JSON ({exc.msg}); e.g. {var}='[...]'") from None


class Nested(PydanticBaseSettingsSource):
    """Any source with flat names, seen nested."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return nest(self.inner())


class Settings(BaseSettings):
    """Everything configurable. Env: COUNCIL_<NAME>; file: council.toml or $COUNCIL_CONFIG."""

    model_config = SettingsConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    heads: HeadsSettings = Field(default_factory=HeadsSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    @model_validator(mode="after")
    def _routing_references(self) -> Settings:
        ids = {h.id for h in self.heads.specs}
        r = self.routing
        for name in ("chairman", "moa_aggregator", "clone_head"):
            ref = getattr(r, name)
            if ref is not None and ref not in ids:
                raise ValueError(f"{name}={ref!r} names no head; known: {', '.join(sorted(ids))}")
        for h in self.heads.specs:
            if h.enabled and h.provider not in r.provider_priority:
                raise ValueError(
                    f"head {h.id!r} has provider {h.provider!r}, which provider_priority "
                    f"({','.join(r.provider_priority)}) does not list; add it there"
                )
        return self

    @model_validator(mode="after")
    def _references_exist(self) -> Settings:
        m = self.memory
        if m.chunk_overlap >= m.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if m.enabled and m.embedder == "none":
            raise ValueError("memory needs an embedder: set embedder, or memory = false")
        ids = {h.id for h in self.heads.specs}
        refs = {
            "judge": self.routing.judge,
            "hybrid_head": self.heads.hybrid_head,
            "quality_judge": self.learning.quality_judge,
            "oracle_head": self.learning.oracle_head,
            "arbiter_head": self.learning.arbiter_head,
        }
        for name, ref in refs.items():
            if ref is not None and ref not in ids:
                raise ValueError(f"{name}={ref!r} names no head; known: {', '.join(sorted(ids))}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("COUNCIL_CONFIG", "council.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return (
            Nested(settings_cls, init_settings),
            FlatEnv(settings_cls),
            Nested(settings_cls, toml),
        )

    @property
    def enabled_heads(self) -> list[HeadSpec]:
        return [h for h in self.heads.specs if h.enabled]

    @property
    def models_dir(self) -> Path:
        return self.server.data_dir / "models"


def flat_name(loc: tuple[int | str, ...]) -> str:
    """`('heads', 'specs', 0, 'quality')` -> `heads.0.quality`: the name users write."""
    if len(loc) >= 2 and loc[0] in SECTIONS and isinstance(loc[1], str):
        name = RENAMED.get((str(loc[0]), loc[1]), loc[1])
        loc = (name, *loc[2:])
    return ".".join(str(p) for p in loc)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into a ConfigError that names the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [f"  {flat_name(tuple(err['loc'])) or 'settings'}: {err['msg']}"
                 for err in exc.errors()]  # fmt: skip
        raise ConfigError(
            "Invalid configuration (fix council.toml or the COUNCIL_* variable named):\n"
            + "\n".join(lines)
        ) from None
