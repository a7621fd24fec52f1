"""Tests run offline: a guard refuses non-loopback connections, every test gets its own data
dir, and local heads run on a tiny random Llama built here from a config."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from tests.helpers import build_tiny_model, convert_default_model
from tests.pg_fixtures import (  # noqa: F401
    postgres_server,
    postgres_url,
    store_backend,
    store_where,
)

_real_connect = socket.socket.connect


def pytest_configure(config: pytest.Config) -> None:
    """Under `pytest -n 2` (make test) each worker and the servers it starts use one core's
    worth of threads, so two workers do not fight over two cores. Every test process keeps
    the engine at a fixed thread count (tests/test_threads.py tries `adaptive_threads`)."""
    os.environ.setdefault("COUNCIL_ADAPTIVE_THREADS", "false")  # servers started inherit it
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # xdist's workers start with COLUMNS=80 set; rich would fix the CLI's tables at that
        # width on import, where a test asks for its own width through the environment
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
        os.environ["OMP_NUM_THREADS"] = "1"  # servers started by this worker inherit it
        import torch

        torch.set_num_threads(1)


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else None
    if isinstance(host, str):
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host != "localhost" and (ip is None or not ip.is_loopback):
            raise OSError(f"network access to {host} is blocked in tests")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def offline_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    data = tmp_path / "data"
    monkeypatch.setenv("COUNCIL_DATA_DIR", str(data))
    monkeypatch.setenv("COUNCIL_CONFIG", str(tmp_path / "no-such-council.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for key in list(os.environ):
        if key.startswith("COUNCIL_") and key not in ("COUNCIL_DATA_DIR", "COUNCIL_CONFIG"):
            monkeypatch.delenv(key)
    return data


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model, converted once per test session (~25 s)."""
    return convert_default_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama (hidden 64) with the SmolLM2 tokenizer and chat template."""
    return build_tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny"))
