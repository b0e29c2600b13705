"""Celery tasks that send agents' social replies. Thin: they take ids and call ``outbound``.

Registered through ``care.connectors.tasks`` (Celery's autodiscovery imports only ``tasks`` modules
of the installed apps), which imports ``send_social_delivery`` and ``sweep_social_outbound``.

Retries are decided by ``social_delivery_send`` from the delivery's own attempts counter (stored,
so that a second chain of tasks for the same delivery cannot add attempts): a retryable platform
error comes back after an exponential backoff or the platform's ``Retry-After``, up to
``MAX_SEND_ATTEMPTS``; the account's rate limit comes back after its wait, which is no attempt.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import requests
from celery import Task, shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from care.connectors.models import DeliveryStatus, OutboundDelivery
from care.connectors.social.outbound import social_delivery_send
from care.core.channels import Channel

# Deliveries still queued and never attempted this long after being written lost their task (the
# broker was down at commit, or a worker died before acknowledging it).
STUCK_AFTER = dt.timedelta(minutes=5)
# Attempted, still queued, untouched this long: its retry was lost (longer than the longest backoff
# or Retry-After a retry waits for).
RETRY_LOST_AFTER = dt.timedelta(hours=2)
SWEEP_BATCH = 200

_local = threading.local()


def _session() -> requests.Session:
    """One HTTP session per worker thread: connections to the platform's API are kept and reused."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_social_delivery(self: Task[[int], str], delivery_id: int) -> str:
    """Send one social ``OutboundDelivery``; returns its status. Safe to run twice: a delivery no
    longer queued is skipped, and one that another worker is sending is left to it."""
    outcome = social_delivery_send(delivery_id=delivery_id, session=_session())
    if outcome.retry_in is None:
        return outcome.status
    if self.request.is_eager and not outcome.counted:
        # Run eagerly (tests, CELERY_TASK_ALWAYS_EAGER) a retry starts at once, whatever its
        # countdown: wait here for the rate limit instead of asking it again in a tight loop.
        time.sleep(outcome.retry_in)
    raise self.retry(countdown=outcome.retry_in)


@shared_task
def sweep_social_outbound() -> int:
    """Safety net: enqueue social deliveries whose task was lost (never run, or its retry lost)."""
    now = timezone.now()
    ids = list(
        OutboundDelivery.objects.filter(status=DeliveryStatus.QUEUED, channel=Channel.SOCIAL)
        .filter(
            Q(attempts=0, created_at__lt=now - STUCK_AFTER)
            | Q(attempts__gt=0, updated_at__lt=now - RETRY_LOST_AFTER)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in ids:
        send_social_delivery.delay(delivery_id)
    if len(ids) == SWEEP_BATCH:
        sweep_social_outbound.apply_async(countdown=5)
    return len(ids)


def enqueue_social_delivery(delivery_id: int) -> None:
    """Send once the writing transaction has committed. A broker that is down then does not undo the
    reply (robust): the delivery stays queued and ``sweep_social_outbound`` picks it up."""
    # A lambda, not functools.partial: Django logs a failing robust callback by its __qualname__.
    transaction.on_commit(lambda: send_social_delivery.delay(delivery_id), robust=True)
