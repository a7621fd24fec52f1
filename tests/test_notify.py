"""Notifications against a real local HTTP receiver, and every way a post can fail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from council.config import Settings
from council.jobs.notify import notify
from tests.helpers import ThreadServer, free_port


class Receiver:
    """A webhook endpoint that records what it is sent and answers a chosen status."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/hooks/{secret}")
        async def hook(secret: str, request: Request) -> Response:
            self.posts.append(await request.json())
            status = 500 if secret == "broken" else 204 if secret == "discord" else 200
            return Response("ok" if status == 200 else "boom", status_code=status)

        @self.app.post("/slow")
        async def slow() -> Response:
            await asyncio.sleep(1.5)
            return Response("late")


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    with ThreadServer(r.app) as server:
        yield r, server.url


@pytest.fixture
def posts(receiver: tuple[Receiver, str]) -> list[dict[str, Any]]:
    receiver[0].posts.clear()
    return receiver[0].posts


def settings(tmp_path: Path, url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", notification_webhook=url)


def test_posts_slack_and_discord_shaped_json(
    receiver: tuple[Receiver, str], posts: list[dict[str, Any]], tmp_path: Path
) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields = {"role": "core", "accuracy": 0.91, "adapter": Path("/a/b"), "at": when}
    sent = notify(settings(tmp_path, f"{receiver[1]}/hooks/T0K3N"), "deploy", "Deployed", fields)
    assert sent is True
    message = "Deployed\nrole: core\naccuracy: 0.91\nadapter: /a/b\nat: 2026-01-02 03:04:05+00:00"
    assert posts == [
        {
            "text": message,
            "content": message,
            "event": "deploy",
            "fields": {
                "role": "core",
                "accuracy": 0.91,
                "adapter": "/a/b",
                "at": "2026-01-02 03:04:05+00:00",
            },
        }
    ]


def test_any_2xx_counts_and_fields_are_optional(
    receiver: tuple[Receiver, str], posts: list[dict[str, Any]], tmp_path: Path
) -> None:
    assert notify(settings(tmp_path, f"{receiver[1]}/hooks/discord"), "train_done", "Trained")
    assert posts == [{"text": "Trained", "content": "Trained", "event": "train_done", "fields": {}}]


def test_discord_content_is_cut_to_its_limit(
    receiver: tuple[Receiver, str], posts: list[dict[str, Any]], tmp_path: Path
) -> None:
    long = "x" * 5000
    assert notify(settings(tmp_path, f"{receiver[1]}/hooks/T"), "pipeline_error", long)
    assert posts[0]["text"] == long
    assert len(posts[0]["content"]) == 2000


def test_unset_webhook_sends_nothing(posts: list[dict[str, Any]], tmp_path: Path) -> None:
    assert notify(settings(tmp_path, None), "rollback", "Rolled back") is False
    assert posts == []


def test_a_500_returns_false_and_logs_without_the_secret_path(
    receiver: tuple[Receiver, str],
    posts: list[dict[str, Any]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="council.jobs.notify")
    assert notify(settings(tmp_path, f"{receiver[1]}/hooks/broken"), "rollback", "R") is False
    assert len(posts) == 1  # it did arrive; the receiver failed
    assert "answered 500" in caplog.text
    assert receiver[1] in caplog.text
    assert "/hooks/broken" not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "http://",
        "ftp://127.0.0.1/hook",
        "http://[::1/hook",
        "http://127.0.0.1:99999/hook",
    ],
)
def test_malformed_urls_return_false_without_raising(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="council.jobs.notify")
    assert notify(settings(tmp_path, url), "pipeline_error", "Failed") is False
    assert "notification 'pipeline_error'" in caplog.text


def test_a_closed_port_returns_false(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="council.jobs.notify")
    url = f"http://127.0.0.1:{free_port()}/hooks/T"  # nothing listens there
    assert notify(settings(tmp_path, url), "deploy", "Deployed") is False
    assert "failed" in caplog.text


def test_a_slow_receiver_times_out(receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    url = f"{receiver[1]}/slow"
    assert notify(settings(tmp_path, url), "deploy", "Deployed", timeout_s=0.2) is False
