"""Schemathesis fuzzes every operation of the real server's own OpenAPI, with valid and invalid
data, signed in with a user's key (the admin token on admin routes): no answer may be a 5xx.

Bounded: a fixed number of examples per operation and mode, so CI time stays flat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.helpers import ServerProcess, local_specs, serving, write_config

TOKEN = "fuzz-admin-token"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
ADMIN = ("/api/config", "/api/cognitive-map", "/api/adapters", "/api/users", "/api/admin",
         "/api/runs")  # fmt: skip
# POST /api/train starts a training process per call (202, by design): it is fuzzed with the
# plain user's key, so every example goes through auth and validation without spawning one.
NO_ADMIN = {("POST", "/api/train")}


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("fuzz")
    heads = local_specs(tiny_model_dir, 2, max_tokens=8)
    config = write_config(root / "council.toml", heads, admin_token=TOKEN)
    with serving(config, root / "data") as proc:
        yield proc


def headers_for(method: str, path: str, key: str) -> dict[str, str]:
    admin = path.startswith(ADMIN) and (method, path) not in NO_ADMIN
    return {"Authorization": f"Bearer {TOKEN if admin else key}"}


def fuzzer(
    op: Any, mode: GenerationMode, examples: int, url: str, headers: dict[str, str],
    statuses: list[int], failures: list[str],
) -> Callable[[], None]:  # fmt: skip
    """A Hypothesis test over one operation: call the server, note every 5xx."""

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=op.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=headers, timeout=120)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]} (body {str(case.body)[:200]})"
            )

    return fuzz  # type: ignore[no-any-return]


def test_no_operation_answers_5xx(server: ServerProcess) -> None:
    made = httpx.post(
        f"{server.url}/api/users", json={"name": "fuzzer"},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    schema = schemathesis.openapi.from_url(
        f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {key}"}
    )
    failures: list[str] = []
    statuses: list[int] = []
    fuzzed = dict.fromkeys(EXAMPLES, 0)
    for result in schema.get_all_operations():
        op = result.ok()
        headers = headers_for(op.method.upper(), op.path, key)
        for mode, examples in EXAMPLES.items():
            fuzz = fuzzer(op, mode, examples, server.url, headers, statuses, failures)
            try:
                fuzz()
            except Unsatisfiable:  # no parameters: there is no invalid request to make
                assert mode is GenerationMode.NEGATIVE, f"{op.method} {op.path}"
                continue
            fuzzed[mode] += 1
    assert fuzzed[GenerationMode.POSITIVE] >= 30, fuzzed  # every operation
    assert fuzzed[GenerationMode.NEGATIVE] >= 15, fuzzed
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= 300 and len(set(statuses)) >= 5, sorted(set(statuses))
    print(f"fuzzed {len(statuses)} requests: {dict(Counter(statuses))}")
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
