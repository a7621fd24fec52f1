"""Pipeline notifications to a Slack- or Discord-compatible incoming webhook.

A notification is a courtesy: it never fails the pipeline. A failed post is logged as a warning
and notify() returns False, so the caller can count it.

Each event is sent once across replicas: `key` names it (a deployment's id and event), and
the first replica to claim it (shared.claim_once: Redis SET NX, else a file on data_dir)
sends it. Without a key, with Redis set, the event and its message are the key for an hour.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from council.config import Settings
from council.shared import claim_once

log = logging.getLogger(__name__)

EVENTS = ("train_done", "deploy", "rollback", "pipeline_error")  # what the pipeline sends
DISCORD_LIMIT = 2000  # Discord answers 400 to a longer `content`
KEYED_TTL_S = 7 * 86_400  # a named event (a deployment's verdict) is sent once a week at most
UNKEYED_TTL_S = 3_600  # the same message twice within an hour is one event told by two replicas


def notify(
    settings: Settings,
    event: str,
    text: str,
    fields: dict[str, Any] | None = None,
    *,
    timeout_s: float = 5.0,
    key: str | None = None,
) -> bool:
    """POST the event to settings.deploy.notification_webhook; True on a 2xx, False otherwise.

    Slack reads `text`, Discord reads `content`; both drop the `fields` object, so the fields
    are also written into the message as `key: value` lines. Never raises. False, without a
    post, when another replica sent this event already.
    """
    url = settings.deploy.notification_webhook
    if not url:
        return False
    message = render(text, fields)
    if not _first_to_send(settings, event, message, key):
        log.info("notification %r already sent by another replica", event)
        return False
    payload = {
        "text": message,
        "content": message[:DISCORD_LIMIT],
        "event": event,
        "fields": fields or {},
    }
    try:
        body = json.dumps(payload, default=str)  # paths, datetimes and the like as strings
        response = httpx.post(
            url, content=body, headers={"content-type": "application/json"}, timeout=timeout_s
        )
    except Exception as e:  # a notification must never take the pipeline down with it
        log.warning("notification %r to %s failed: %s", event, _where(url), e or type(e).__name__)
        return False
    if response.is_success:
        return True
    log.warning(
        "notification %r to %s answered %s: %s",
        event,
        _where(url),
        response.status_code,
        response.text[:200],
    )
    return False


def _first_to_send(settings: Settings, event: str, message: str, key: str | None) -> bool:
    if key is not None:
        return claim_once(settings, f"webhook:{event}:{key}", KEYED_TTL_S)
    if not settings.deploy.redis_url:
        return True  # one process: nothing else would send it
    digest = hashlib.sha256(f"{event}\n{message}".encode()).hexdigest()
    return claim_once(settings, f"webhook:{event}:{digest}", UNKEYED_TTL_S)


def render(text: str, fields: dict[str, Any] | None) -> str:
    """The human-readable message: the text, then one `key: value` line per field."""
    if not fields:
        return text
    return "\n".join([text, *(f"{key}: {value}" for key, value in fields.items())])


def _where(url: str) -> str:
    """Scheme and host only: a webhook's path is its secret and must not reach the logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed webhook URL>"
    if not parts.scheme or not parts.netloc:
        return "<malformed webhook URL>"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
