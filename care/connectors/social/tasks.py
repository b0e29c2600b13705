"""Celery tasks of the social channel: attachment downloads. Thin: ids in, ``media`` services out.

Registered through ``care.connectors.tasks`` (Celery's autodiscovery imports only the ``tasks``
module of each installed app).
"""

from __future__ import annotations

import datetime as dt
import random

from celery import Task, shared_task
from django.utils import timezone

from care.connectors.social.base import SendError
from care.connectors.social.media import media_fail, media_fetch, pending_media

# 30 s, 60 s, 120 s … up to an hour: about four hours in which a platform may recover.
MAX_RETRIES = 8
BACKOFF_BASE = 30
BACKOFF_MAX = 3600
# Pending attachments whose task was lost (broker down at commit, a worker died) are enqueued
# again by the sweep once their message is this old.
STUCK_AFTER = dt.timedelta(minutes=10)
SWEEP_BATCH = 200


def backoff(retries: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: what the platform asked for, else exponential with jitter."""
    if retry_after is not None:
        return float(min(max(retry_after, 1.0), BACKOFF_MAX))
    ceiling = float(min(BACKOFF_BASE * 2**retries, BACKOFF_MAX))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def social_media_fetch(self: Task[[int, str], str], inbound_id: int, key: str) -> str:
    """Download one attachment of a stored social message and store it on its interaction."""
    try:
        return media_fetch(inbound_id=inbound_id, key=key)
    except SendError as error:  # retryable: the others are recorded by media_fetch
        if self.request.retries >= (self.max_retries or 0):
            media_fail(
                inbound_id=inbound_id,
                key=key,
                error=f"{error} ({self.request.retries + 1} attempts)",
            )
            return "failed"
        raise self.retry(countdown=backoff(self.request.retries, error.retry_after)) from error


@shared_task
def sweep_social_media() -> int:
    """Safety net: enqueue attachments whose download task never ran (the broker was down when
    their message was applied, or a worker died before taking the task)."""
    found = pending_media(received_before=timezone.now() - STUCK_AFTER, limit=SWEEP_BATCH)
    for inbound_id, key in found:
        social_media_fetch.delay(inbound_id, key)
    return len(found)
