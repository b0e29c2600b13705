"""Store first: everything that arrives is saved raw, with its SHA-256, before anything parses it."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from care.connectors.models import InboundMessage, InboundStatus, Mailbox

if TYPE_CHECKING:
    from care.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Attempts after which a failing message is left for a person (it stays listed as failed in the admin).
MAX_AUTOMATIC_ATTEMPTS = 5


def inbound_store(
    *,
    tenant: Tenant,
    channel: str,
    provider: str,
    source: str,
    raw: bytes,
    mailbox: Mailbox | None = None,
    source_ref: str = "",
    received_at: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Save ``raw`` unless the same bytes are already stored for this tenant and provider.

    Returns (message, created). Call inside or outside a transaction; safe under concurrency.
    """
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                tenant=tenant,
                channel=channel,
                provider=provider,
                source=source,
                mailbox=mailbox,
                raw=raw,
                sha256=digest,
                size=len(raw),
                source_ref=source_ref[:300],
                received_at=received_at or timezone.now(),
            )
    except IntegrityError:
        existing = InboundMessage.objects.get(tenant=tenant, provider=provider, sha256=digest)
        return existing, False
    return message, True


# What processing writes on the stored message; the raw bytes and their metadata never change.
_RESULT_FIELDS = (
    "status",
    "attempts",
    "error",
    "processed_at",
    "external_id",
    "ticket",
    "interaction",
    "outcome",
    "summary",
    "updated_at",
)


def inbound_process(
    *,
    inbound_id: int,
    handler: Callable[[InboundMessage], None] | dict[str, Callable[[InboundMessage], None]],
) -> InboundMessage | None:
    """Run ``handler`` on a stored message exactly once, however often this is called.

    The row is locked for the whole run (``SKIP LOCKED``: a concurrent run of the same id returns
    None at once). Messages already processed or ignored are returned untouched. When ``handler``
    raises, its writes are rolled back and the message is marked failed with the error; it can be
    retried (by the sweep or from the admin).
    """
    try:
        with transaction.atomic():
            message = (
                InboundMessage.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("mailbox__tenant", "tenant")
                .filter(pk=inbound_id, status__in=[InboundStatus.RECEIVED, InboundStatus.FAILED])
                .first()
            )
            if message is None:
                return InboundMessage.objects.filter(pk=inbound_id).first()
            message.attempts += 1
            if isinstance(handler, dict):  # one handler per provider (see care.connectors.dispatch)
                if message.provider not in handler:
                    raise LookupError(f"No handler for inbound provider {message.provider!r}.")
                handler[message.provider](message)
            else:
                handler(message)
            if message.status in (InboundStatus.RECEIVED, InboundStatus.FAILED):
                message.status = InboundStatus.PROCESSED
            message.error = ""
            message.processed_at = timezone.now()
            # Not a full save: that would send the raw bytes to the database a second time.
            message.save(update_fields=[*_RESULT_FIELDS])
            return message
    except Exception as exc:
        logger.exception("Processing inbound message %s failed", inbound_id)
        InboundMessage.objects.filter(pk=inbound_id).exclude(status=InboundStatus.PROCESSED).update(
            status=InboundStatus.FAILED,
            error=f"{exc.__class__.__name__}: {exc}"[:5000],
            attempts=F("attempts") + 1,
            processed_at=timezone.now(),
        )
        return InboundMessage.objects.filter(pk=inbound_id).first()


def inbound_retry(*, message: InboundMessage) -> None:
    """Put a failed message back in the queue (the admin's "retry" action)."""
    InboundMessage.objects.filter(pk=message.pk, status=InboundStatus.FAILED).update(
        status=InboundStatus.RECEIVED
    )
