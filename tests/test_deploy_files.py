"""deploy/: the dashboard and the alerts query only metrics the code registers, and parse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SOURCE = ROOT / "src" / "council"

# Being added to the learning pipeline alongside this folder: treat them as registered.
PENDING = {
    "autogen_training_loss",
    "autogen_training_completed_total",
    "autogen_training_duration_seconds",
    "swarm_lora_train_total",
    "swarm_lora_loss_last",
    "autogen_quality_improvement_ratio",
    "autogen_gauntlet_accuracy",
    "autogen_deployment_success_total",
    "autogen_rollback_triggered_total",
    "autogen_cycle_runs_total",
    "autogen_cycle_duration_seconds",
    "council_adapter_swap_seconds",
}
ALERTS = {
    "CouncilVoteLatencyRegressedAfterDeploy",
    "CouncilGauntletAccuracyDropped",
    "CouncilImprovementCycleFailed",
}
# What Grafana puts in place of its variables, so promtool can parse the panel queries.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1h", "$__range": "1d"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def registered_metrics() -> set[str]:
    """Metric names as string literals in the source (prometheus_client constructors)."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        found.update(re.findall(r"[\"']((?:swarm|autogen)_[a-z0-9_]+)[\"']", path.read_text()))
    return found | PENDING


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (label names, functions and keywords out)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\boffset\s+-?\w+", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if m.group() in PROMQL_WORDS or e[m.end() :].lstrip().startswith("("):
            continue  # a keyword or a function call
        names.add(re.sub(r"_(bucket|sum|count)$", "", m.group()))
    return names


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "council.json").read_text())


def dashboard_exprs() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_metric_name_scanner_sees_selectors_only() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, strategy) (rate(swarm_vote_latency_seconds_bucket"
        '{source="cloud"}[5m] offset 1h))) > 1e3 * foo_typo and on () (sum(up) > 0)'
    )
    assert metric_names(expr) == {"swarm_vote_latency_seconds", "foo_typo", "up"}


def test_the_scan_finds_the_councils_own_metrics() -> None:
    names = registered_metrics()
    assert {"swarm_vote_latency_seconds", "swarm_council_agreement_last"} <= names
    assert "autogen_harvest_total" in names  # learning/metrics.py


def test_dashboard_queries_only_registered_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    known = registered_metrics()
    for expr in exprs:
        used = metric_names(expr)
        assert used, f"no metric in {expr!r}"
        assert used <= known, f"{expr!r} uses unregistered {sorted(used - known)}"


def test_dashboard_covers_the_brief_and_is_importable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert {"x", "y", "w", "h"} <= set(p["gridPos"])
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    for metric in (
        "swarm_vote_latency_seconds",
        "swarm_council_agreement_last",
        "swarm_council_agreement",
        "swarm_cloud_share_ratio",
        "swarm_cloud_retry_total",
        "swarm_head_tokens_total",
        "autogen_training_loss",
        "autogen_deployment_success_total",
        "autogen_rollback_triggered_total",
        "autogen_gauntlet_accuracy",
        "autogen_quality_improvement_ratio",
        "autogen_cycle_runs_total",
    ):
        assert metric in used, f"the dashboard does not chart {metric}"


def test_alerts_parse_and_query_only_registered_metrics() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERTS
    known = registered_metrics()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        used = metric_names(rule["expr"])
        assert used and used <= known, f"{rule['alert']} uses {sorted(used - known)}"
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert "offset 1h" in by_name["CouncilVoteLatencyRegressedAfterDeploy"]
    assert "-0.03" in by_name["CouncilGauntletAccuracyDropped"]
    assert 'outcome="failed"' in by_name["CouncilImprovementCycleFailed"]


def test_prometheus_config_scrapes_the_server_with_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def test_promtool_accepts_the_config_and_rules(promtool: str) -> None:
    config = DEPLOY / "prometheus" / "prometheus.yml"
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_promtool_parses_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    rules = []
    for n, expr in enumerate(dashboard_exprs()):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_scheduled_jobs_run_council_improve_at_two() -> None:
    cron = (DEPLOY / "cron" / "council-nightly").read_text()
    (line,) = [
        ln for ln in cron.splitlines() if ln.strip() and not ln.startswith("#") and "=" not in ln
    ]
    fields = line.split()
    assert fields[:5] == ["0", "2", "*", "*", "*"]
    assert fields[5] == "council"  # cron.d lines name the user
    assert "council improve" in line and ".venv/bin/council" in line
    assert "council serve --nightly 02:00" in cron

    service = (DEPLOY / "systemd" / "council-improve.service").read_text()
    assert "Type=oneshot" in service
    assert re.search(r"^ExecStart=\S*/council improve$", service, re.M)
    timer = (DEPLOY / "systemd" / "council-improve.timer").read_text()
    assert "OnCalendar=*-*-* 02:00:00" in timer and "Persistent=true" in timer
    server = (DEPLOY / "systemd" / "council.service").read_text()
    assert re.search(r"^ExecStart=\S*/council serve$", server, re.M)


def test_systemd_units_verify() -> None:
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    units = sorted(str(p) for p in (DEPLOY / "systemd").iterdir())
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    # The units name /opt/council, which this machine lacks; anything else is a real problem.
    problems = [
        ln
        for ln in (done.stdout + done.stderr).splitlines()
        if ln.strip() and "is not executable: No such file or directory" not in ln
    ]
    assert not problems, "\n".join(problems)


# the container image and the replicas' compose file --------------------------------------------
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
# Settings being added beside this file (the Postgres store): known once merged.
INTERPOLATED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def council_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in doc["services"].items() if s.get("image") == "council:local"}


def known_variables() -> set[str]:
    from council.config_sections import FLAT

    return {f"COUNCIL_{name}".upper() for name in FLAT} | {"COUNCIL_CONFIG"}


def cli_accepts(argv: list[str]) -> None:
    """Parse argv with the real CLI (typer's click command), running nothing."""
    from typer.main import get_command

    from council.cli import app

    assert argv[0] == "council", argv
    command: Any = get_command(app)  # typer's own copy of click: groups by duck type
    args, path = argv[1:], []
    while hasattr(command, "resolve_command"):
        name, sub, args = command.resolve_command(command.context_class(command), args)
        assert sub is not None, f"`council {' '.join(argv[1:])}`: no command {name!r}"
        command, path = sub, [*path, str(name)]
    command.make_context(" ".join(["council", *path]), list(args))  # unknown options raise


def test_the_compose_file_runs_two_replicas_on_postgres_and_redis_behind_one_address() -> None:
    doc = compose()
    replicas = [n for n, s in council_services(doc).items() if "serve" in s["command"]]
    assert len(replicas) == 2, replicas
    images = {n: s.get("image") for n, s in doc["services"].items()}
    assert images["postgres"].startswith("pgvector/pgvector:pg")
    assert images["redis"].startswith("redis:") and images["proxy"].startswith("nginx:")
    for name, image in images.items():  # pinned: a moving tag changes the service under you
        assert ":" in image and not image.endswith(":latest"), (name, image)
    upstream = re.findall(r"server (\S+):8000", (DEPLOY / "compose" / "nginx.conf").read_text())
    assert sorted(upstream) == sorted(replicas)
    for name in replicas:
        env = doc["services"][name]["environment"]
        assert env["COUNCIL_REDIS_URL"] == "redis://redis:6379/0"
        assert "@postgres:5432/" in env["COUNCIL_DATABASE_URL"]
        assert doc["services"][name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_compose_file_names_only_council_variables_that_exist() -> None:
    text = COMPOSE.read_text()
    named = set(re.findall(r"\bCOUNCIL_[A-Z0-9_]+", text))  # comments and the vLLM block too
    unknown = named - known_variables()
    assert not unknown, f"not settings: {sorted(unknown)}"
    for name, service in council_services(compose()).items():
        env = service["environment"]
        assert all(k.startswith("COUNCIL_") for k in env), (name, env)
        for value in env.values():
            for var in INTERPOLATED.findall(str(value)):
                assert not var.startswith("COUNCIL_") or var in known_variables(), var


def test_the_compose_services_commands_match_the_cli() -> None:
    for service in council_services(compose()).values():
        cli_accepts(service["command"])
    with pytest.raises(Exception, match="No such option"):  # the check itself bites
        cli_accepts(["council", "serve", "--nightlyy", "02:00"])


def test_the_commented_vllm_head_parses_with_a_gpu_reservation() -> None:
    lines = COMPOSE.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "# vllm:")
    block = []
    for ln in lines[start:]:
        if not ln.startswith("  #"):
            break
        block.append(ln.replace("# ", "", 1))
    vllm = yaml.safe_load("\n".join(block))["vllm"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "--enable-lora" in vllm["command"]
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    heads_line = next(ln for ln in lines if "COUNCIL_HEADS:" in ln)
    heads = json.loads(yaml.safe_load(heads_line.replace("#", "", 1))["COUNCIL_HEADS"])
    from council.config import HeadSpec

    (head,) = [HeadSpec(**h) for h in heads]
    assert head.base_url is not None and "vllm:8000" in str(head.base_url)


def test_the_dockerfile_prepares_the_model_and_serves_as_a_user_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"pip install .*download\.pytorch\.org/whl/cpu \.", text)
    user = text.index("USER council")
    assert user < text.index("RUN council prepare") < text.index("CMD")
    healthcheck = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", text, re.M)
    assert healthcheck is not None and "/health" in healthcheck.group(1)
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    cli_accepts(json.loads(cmd))
    cli_accepts(["council", "prepare"])
    for var in re.findall(r"\bCOUNCIL_[A-Z0-9_]+", text):
        assert var in known_variables(), var
