"""The CLI through Typer's runner, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from council.cli import app
from tests.helpers import local_specs, write_config

runner = CliRunner()


def config(tmp_path: Path, model: Path) -> Path:
    return write_config(
        tmp_path / "council.toml", local_specs(model, 3), embedder="none", memory=False
    )


def test_ask_prints_answer_and_vote_table(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["ask", "Say hi", "--config", str(config(tmp_path, tiny_model_dir))],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "Ballot" in r.output and "h0" in r.output and "h2" in r.output
    assert "strategy vote" in r.output


def test_ask_json_is_the_verdict(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "ask",
            "Say hi",
            "--json",
            "--strategy",
            "weighted",
            "--config",
            str(config(tmp_path, tiny_model_dir)),
        ],
    )
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert v["strategy"] == "weighted" and len(v["votes"]) == 3 and "total_cost" in v


def test_ensemble_command_in_the_seed_shape(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "ensemble",
            "--input",
            "What is 2+2?",
            "--models",
            "2",
            "--strategy",
            "consensus",
            "--task-type",
            "code",
            "--config",
            str(config(tmp_path, tiny_model_dir)),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Querying 2 models" in r.output and "Confidence:" in r.output
    assert "Models used: 2" in r.output and "All model responses:" in r.output


def test_heads_lists_catalogue_and_checks_state(tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = str(config(tmp_path, tiny_model_dir))
    r = runner.invoke(app, ["heads", "--check", "--config", cfg], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert r.output.count("ok (") == 3


def test_errors_are_one_line_with_the_fix(tmp_path: Path) -> None:
    r = runner.invoke(app, ["ask", "hi", "--config", str(tmp_path / "missing.toml")])
    assert r.exit_code == 1 and "does not exist" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[heads]]\nid = "a"\ntemprature = 1\n')
    r = runner.invoke(app, ["ask", "hi", "--config", str(bad)])
    assert r.exit_code == 1 and "heads.0.temprature" in r.output
    r = runner.invoke(app, ["ask", "hi", "--strategy", "dice", "--config", str(bad)])
    assert r.exit_code == 1


def test_unknown_strategy_from_the_cli(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["ask", "hi", "--strategy", "dice", "--config", str(config(tmp_path, tiny_model_dir))]
    )
    assert r.exit_code == 1 and "Unknown strategy 'dice'" in r.output
