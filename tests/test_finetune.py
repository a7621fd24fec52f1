"""Bootstrap data normalisation and the hosted fine-tuning job, against a recorded fake of the
OpenAI files + fine_tuning.jobs API on a loopback port (the real API is not reachable here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from council.errors import BootstrapError, FinetuneError
from council.learning.bootstrap import normalise, records
from council.learning.finetune import submit_openai
from tests.helpers import ThreadServer


@pytest.mark.parametrize(
    ("record", "prompt_roles", "answer"),
    [
        ({"conversations": [{"from": "system", "value": "Be brief."},
                            {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]},
         ["system", "user"], "Hello."),  # SlimOrca / OpenHermes (ShareGPT)
        ({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
         ["user"], "4"),
        ({"instruction": "Translate", "input": "bonjour", "output": "hello"}, ["user"], "hello"),
        ({"question": "Capital of Peru?", "answer": "Lima"}, ["user"], "Lima"),
    ],
)  # fmt: skip
def test_bootstrap_schemas_normalise(record: dict, prompt_roles: list[str], answer: str) -> None:
    got = normalise(record)
    assert got is not None
    prompt, response = got
    assert [m["role"] for m in prompt] == prompt_roles and response == answer


def test_unusable_records_and_files() -> None:
    assert normalise({"conversations": [{"from": "human", "value": "only a question"}]}) is None
    assert normalise({"text": "plain"}) is None
    with pytest.raises(BootstrapError, match="does not exist"):
        list(records(Path("/nonexistent.jsonl")))


def test_saved_hf_dataset_folder(tmp_path: Path) -> None:
    from datasets import Dataset

    Dataset.from_list([{"instruction": "a", "output": "b"}]).save_to_disk(str(tmp_path / "ds"))
    assert [normalise(r) for r in records(tmp_path / "ds")] == [
        ([{"role": "user", "content": "a"}], "b")
    ]


class FakeOpenAI:
    """Records what a client sent, answering like api.openai.com (shapes from its docs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/v1/files")
        async def files(request: Request) -> dict:
            raw = (await request.body()).decode()  # multipart, kept raw (no form parser needed)
            self.calls.append(("files", raw))
            return {
                "id": "file-abc123",
                "object": "file",
                "bytes": 10,
                "created_at": 1,
                "filename": "train.jsonl",
                "purpose": "fine-tune",
                "status": "processed",
            }

        @self.app.post("/v1/fine_tuning/jobs")
        async def jobs(body: dict) -> dict:
            self.calls.append(("jobs", body))
            return {"id": "ftjob-xyz789", "object": "fine_tuning.job", "model": body["model"],
                    "created_at": 1, "status": "validating_files", "training_file": body[
                        "training_file"], "hyperparameters": {"n_epochs": "auto"},
                    "organization_id": "org", "result_files": [], "seed": 1,
                    "fine_tuned_model": None, "finished_at": None, "validation_file": None,
                    "trained_tokens": None, "error": None}  # fmt: skip


@pytest.fixture
def fake_openai() -> Any:
    fake = FakeOpenAI()
    with ThreadServer(fake.app) as server:
        fake.url = f"{server.url}/v1"  # type: ignore[attr-defined]
        yield fake


def test_finetune_uploads_then_creates_the_job(
    fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "train.jsonl"
    line = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    data.write_text(json.dumps(line) + "\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    job = submit_openai(data, model="gpt-4o-mini-2024-07-18", base_url=fake_openai.url)
    assert job == {"job_id": "ftjob-xyz789", "status": "validating_files",
                   "file_id": "file-abc123", "model": "gpt-4o-mini-2024-07-18"}  # fmt: skip
    (kind, upload), (kind2, body) = fake_openai.calls
    assert kind == "files" and 'name="purpose"' in upload and "fine-tune" in upload
    assert json.dumps(line) in upload
    assert (
        kind2 == "jobs" and body["training_file"] == "file-abc123" and body["suffix"] == "council"
    )


def test_finetune_without_a_key_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(FinetuneError, match="set OPENAI_API_KEY"):
        submit_openai(tmp_path / "x.jsonl", model="m")
