"""Celery tasks that send outbound email. Thin: they take ids and call ``outbound`` services.

Registered through ``care.connectors.tasks`` (Celery's autodiscovery imports only ``tasks``
modules of the installed apps), which imports ``send_email_delivery`` and ``sweep_outbound``.
"""

from __future__ import annotations

import datetime as dt
import logging
from smtplib import SMTPException

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from care.connectors.email.outbound import (
    MAX_SEND_ATTEMPTS,
    DeliveryFailed,
    delivery_fail,
    delivery_send,
    describe_error,
)
from care.connectors.models import DeliveryStatus, OutboundDelivery
from care.core.channels import Channel

logger = logging.getLogger(__name__)

RETRYABLE = (SMTPException, OSError)
# Deliveries still queued and never attempted this long after being written lost their task
# (the broker was down at commit, or a worker died before acknowledging it).
STUCK_AFTER = dt.timedelta(minutes=5)
SWEEP_BATCH = 200


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=RETRYABLE,
    max_retries=MAX_SEND_ATTEMPTS - 1,
    # 30 s, 60 s, 120 s, 240 s, 480 s (each jittered down at random): about a quarter of an hour
    # in which a mail server may restart or a DNS hiccup pass, before the delivery is failed.
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
)
def send_email_delivery(self: Task[[int], str], delivery_id: int) -> str:
    """Send one ``OutboundDelivery``; returns its status. Safe to run twice: sent ones are skipped."""
    try:
        delivery = delivery_send(delivery_id=delivery_id)
    except DeliveryFailed:
        return DeliveryStatus.FAILED
    except RETRYABLE as exc:
        if self.request.retries >= (self.max_retries or 0):
            # Retries used up before the attempts counter was (a second chain ran): fail it now.
            delivery_fail(delivery_id=delivery_id, error=describe_error(exc))
            return DeliveryStatus.FAILED
        raise  # autoretry_for schedules the next attempt with backoff
    return delivery.status


@shared_task
def sweep_outbound() -> int:
    """Safety net: enqueue email deliveries that were written but whose task never ran."""
    cutoff = timezone.now() - STUCK_AFTER
    ids = list(
        OutboundDelivery.objects.filter(
            status=DeliveryStatus.QUEUED, channel=Channel.EMAIL, attempts=0, created_at__lt=cutoff
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in ids:
        send_email_delivery.delay(delivery_id)
    if len(ids) == SWEEP_BATCH:
        sweep_outbound.apply_async(countdown=5)
    return len(ids)


def enqueue_delivery(delivery_id: int) -> None:
    """Send once the writing transaction has committed. A broker that is down then does not undo
    the reply (robust): the delivery stays queued and ``sweep_outbound`` picks it up."""
    # A lambda, not functools.partial: Django logs a failing robust callback by its __qualname__.
    transaction.on_commit(lambda: send_email_delivery.delay(delivery_id), robust=True)
