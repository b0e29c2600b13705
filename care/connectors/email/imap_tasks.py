"""Celery tasks that poll IMAP mailboxes. Imported by ``care.connectors.tasks`` (Celery's autodiscovery).

Beat runs ``poll_mailboxes`` every minute; it enqueues one ``poll_mailbox`` per active IMAP mailbox.
Both are safe to run twice: a second poll of a mailbox that is being polled returns at once (see
``care.connectors.email.imap``), and a repeated poll finds nothing new.
"""

from __future__ import annotations

from celery import shared_task

from care.connectors.email.imap import mailbox_poll
from care.connectors.models import Mailbox

# A poll that waited this long in the queue is dropped: the next beat has enqueued a fresh one.
POLL_EXPIRES = 55
# When a poll filled its batch, the next batch follows after this many seconds, not a minute later.
NEXT_BATCH_COUNTDOWN = 1


@shared_task
def poll_mailboxes() -> int:
    """Enqueue a poll of every active mailbox that receives its mail by IMAP."""
    ids = list(
        Mailbox.objects.filter(delivery=Mailbox.Delivery.IMAP, is_active=True)
        .exclude(imap_host="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for mailbox_id in ids:
        poll_mailbox.apply_async((mailbox_id,), expires=POLL_EXPIRES)
    return len(ids)


@shared_task(acks_late=True)
def poll_mailbox(mailbox_id: int) -> int:
    """Fetch and store one batch of new mail of one mailbox; returns how many messages were new.

    Errors are recorded on the mailbox (``last_poll_error``), never raised. A full batch re-enqueues
    the task, so a large backlog is worked off in bounded steps.
    """
    mailbox = (
        Mailbox.objects.select_related("tenant")
        .filter(pk=mailbox_id, delivery=Mailbox.Delivery.IMAP, is_active=True)
        .first()
    )
    if mailbox is None:
        return 0
    result = mailbox_poll(mailbox=mailbox)
    if result.more and result.ok and not result.busy:
        poll_mailbox.apply_async((mailbox_id,), countdown=NEXT_BATCH_COUNTDOWN, expires=POLL_EXPIRES)
    return result.stored
