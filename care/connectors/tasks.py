"""Celery tasks of the connectors. Thin: they take ids and call services; all are safe to run twice."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import transaction
from django.utils import timezone

# Provider task modules, imported here so that Celery's autodiscovery (which finds this module)
# registers their tasks.
from care.connectors.email.imap_tasks import poll_mailbox, poll_mailboxes  # noqa: F401
from care.connectors.email.outbound_tasks import send_email_delivery, sweep_outbound  # noqa: F401
from care.connectors.models import InboundMessage, InboundStatus
from care.connectors.services import MAX_AUTOMATIC_ATTEMPTS
from care.connectors.social.outbound_tasks import send_social_delivery, sweep_social_outbound  # noqa: F401
from care.connectors.social.tasks import social_media_fetch, sweep_social_media  # noqa: F401

# Messages still "received" this long after arriving lost their task (a worker died before
# acknowledging it, or the broker was down): the sweep enqueues them again.
STUCK_AFTER = dt.timedelta(minutes=2)
SWEEP_BATCH = 200


@shared_task(acks_late=True)
def process_inbound(inbound_id: int) -> str | None:
    """Parse and apply one stored inbound message (see care.connectors.dispatch)."""
    from care.connectors.dispatch import process_stored

    message = process_stored(inbound_id)
    return message.status if message else None


@shared_task
def sweep_inbound() -> int:
    """Safety net: re-enqueue messages whose processing task was lost, and retry failures a few times."""
    cutoff = timezone.now() - STUCK_AFTER
    ids = list(
        InboundMessage.objects.filter(
            status__in=[InboundStatus.RECEIVED, InboundStatus.FAILED],
            received_at__lt=cutoff,
            attempts__lt=MAX_AUTOMATIC_ATTEMPTS,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for inbound_id in ids:
        process_inbound.delay(inbound_id)
    if len(ids) == SWEEP_BATCH:
        sweep_inbound.apply_async(countdown=5)  # more are waiting: go on in a moment, in bounded batches
    return len(ids)


def enqueue_processing(inbound_id: int) -> None:
    """Enqueue processing once the storing transaction has committed (the row must be visible).

    Robust: with the broker down the message is still stored and the caller still answers; the sweep
    (``sweep_inbound``) enqueues it once the broker is back.
    """
    transaction.on_commit(lambda: process_inbound.delay(inbound_id), robust=True)
