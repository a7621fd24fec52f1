"""Settings: catalogue defaults, council.toml, COUNCIL_* overrides, errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.config import load_settings, packaged_catalogue
from council.errors import ConfigError
from council.heads import build_heads


def test_packaged_catalogue_is_five_smollm2_personas_and_a_disabled_cloud_head() -> None:
    heads = packaged_catalogue()
    local = [h for h in heads if h.kind == "local" and h.model == "smollm2-135m-instruct"]
    assert len(local) == 5 and all(h.enabled for h in local)
    assert all(h.prompt_template is None for h in local)  # an instruct model: its chat template
    # the second family: a base model behind a few-shot prompt, with adapters of its own role
    gemma = [h for h in heads if h.kind == "local" and h.model == "gemma-3-270m"]
    assert len(gemma) == 2
    assert all(h.prompt_template == "fewshot_qa" and h.role == "gemma" for h in gemma)
    assert {h.model for h in heads if h.kind == "local"} == {"smollm2-135m-instruct",
                                                             "gemma-3-270m"}  # fmt: skip
    cloud = [h for h in heads if h.kind == "openai"]
    assert cloud and not any(h.enabled for h in cloud) and cloud[0].cost_out_per_1k > 0
    assert any(h.temperature == 0.0 for h in local)  # a greedy anchor


def test_toml_file_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "council.toml"
    cfg.write_text(
        'port = 9001\nstrategy = "weighted"\n\n[[heads]]\nid = "a"\nquality = 7\n'
        'specializations = ["code"]\n'
    )
    monkeypatch.setenv("COUNCIL_CONFIG", str(cfg))
    s = load_settings()
    assert s.server.port == 9001 and s.routing.strategy == "weighted"
    assert [h.id for h in s.heads.specs] == ["a"] and s.heads.specs[0].quality == 7
    monkeypatch.setenv("COUNCIL_PORT", "9002")
    monkeypatch.setenv("COUNCIL_HEADS", '[{"id": "b", "kind": "openai", "model": "m"}]')
    s = load_settings()
    assert s.server.port == 9002 and [h.id for h in s.heads.specs] == ["b"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"heads": [{"id": "a", "temprature": 0.3}]}, "heads.0.temprature"),
        ({"heads": [{"id": "a"}, {"id": "a"}]}, "appears twice"),
        ({"heads": [{"id": "council"}]}, "reserved"),
        ({"heads": [{"id": "a", "quality": 11}]}, "heads.0.quality"),
        ({"judge": "nobody"}, "judge='nobody' names no head"),
        ({"threads": 0}, "threads"),
        ({"engine": "batch"}, 'micro-batch engine ("batch") was removed'),
    ],
)
def test_invalid_settings_name_the_setting(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"council\.toml or the COUNCIL_") as info:
        load_settings(**overrides)
    assert fragment in str(info.value)


def test_unknown_head_kind_lists_the_known_ones() -> None:
    s = load_settings(heads=[{"id": "x", "kind": "grpc"}])
    with pytest.raises(
        ConfigError, match=r"Unknown head kind 'grpc' for head 'x'\. Known: local, openai"
    ):
        build_heads(s)
