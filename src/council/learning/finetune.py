"""Hosted fine-tuning: export the examples and submit a job through the `openai` SDK."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openai

from council.errors import FinetuneError


def submit_openai(
    training_file: Path, *, model: str, base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY", suffix: str | None = "council",
) -> dict[str, Any]:  # fmt: skip
    """Upload the JSONL (purpose fine-tune) and create the job; returns its id and status."""
    key = os.environ.get(api_key_env, "")
    if not key:
        raise FinetuneError(f"No API key: set {api_key_env} to submit a hosted fine-tuning job.")
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    try:
        with training_file.open("rb") as f:
            uploaded = client.files.create(file=f, purpose="fine-tune")
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=model,
                                             suffix=suffix)  # fmt: skip
    except openai.APIError as exc:
        raise FinetuneError(f"The fine-tuning API refused the job: {exc}") from exc
    return {"job_id": job.id, "status": job.status, "file_id": uploaded.id, "model": job.model}
