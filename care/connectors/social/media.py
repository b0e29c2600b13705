"""Attachments of social messages: downloaded after the message is applied, stored on its interaction.

``social_apply`` lists every attachment in the stored message's summary (``summary["media"]``: key,
interaction, the adapter's ``MediaRef``, status ``pending``) and enqueues one task per attachment.
``media_fetch`` downloads it with the adapter (outside any transaction: the network is slow) and
stores it with ``attachment_store``; the entry then says ``stored`` (with the attachment id) or
``failed`` (with the reason). A download that fails leaves the message and its interaction as they
are: only the file is missing, and the summary says why.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import requests
from django.db import transaction
from django.utils.translation import gettext as _

from care.connectors.models import InboundMessage, SocialAccount
from care.connectors.social.base import MediaRef, SendError
from care.connectors.social.registry import adapter_for, slug_of_provider
from care.core.channels import Channel
from care.tickets.models import Interaction
from care.tickets.services import attachment_store

logger = logging.getLogger(__name__)

MAX_MEDIA_BYTES = 25 * 1024 * 1024


class Media:
    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"
    MISSING = "missing"  # no such message or entry


def _entry(summary: Any, key: str) -> dict[str, Any] | None:
    for entry in (summary or {}).get("media") or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry
    return None


def _update_entry(inbound_id: int, key: str, **changes: Any) -> None:
    """Write ``changes`` into one media entry, under the stored message's row lock."""
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update(of=("self",)).filter(pk=inbound_id).first()
        entry = _entry(locked.summary if locked else None, key)
        if locked is None or entry is None or entry.get("status") == Media.STORED:
            return
        entry.update(changes)
        locked.save(update_fields=["summary", "updated_at"])


def media_fail(*, inbound_id: int, key: str, error: str) -> None:
    """Give up on one attachment; the message keeps its interaction and the reason is recorded."""
    logger.warning("Social attachment %s of inbound message %s not stored: %s", key, inbound_id, error)
    _update_entry(inbound_id, key, status=Media.FAILED, error=error[:1000])


def media_fetch(*, inbound_id: int, key: str, session: requests.Session | None = None) -> str:
    """Download attachment ``key`` of stored message ``inbound_id`` and store it; returns its status.

    Safe to run twice: a stored entry is left alone. Raises ``SendError`` (retryable) for a failure
    worth trying again later (the caller retries, then calls ``media_fail``); a failure that is not
    is recorded at once.
    """
    message = (
        InboundMessage.objects.filter(pk=inbound_id).only("pk", "tenant_id", "provider", "summary").first()
    )
    entry = _entry(message.summary if message else None, key)
    if message is None or entry is None:
        return Media.MISSING
    if entry.get("status") == Media.STORED:
        return Media.STORED
    account_id = (message.summary or {}).get("account")
    account = (
        SocialAccount.objects.filter(pk=account_id, tenant_id=message.tenant_id).first()
        if isinstance(account_id, int)
        else None
    )
    adapter = adapter_for(slug_of_provider(message.provider))
    if account is None or adapter is None:
        media_fail(inbound_id=inbound_id, key=key, error=_("The social account or its adapter is gone."))
        return Media.FAILED
    try:
        media = MediaRef(**entry["ref"])
    except (KeyError, TypeError):
        media_fail(inbound_id=inbound_id, key=key, error=_("The attachment entry is unreadable."))
        return Media.FAILED
    attempts = int(entry.get("attempts") or 0) + 1
    own_session = session is None
    active = session or requests.Session()
    try:
        downloaded = adapter.download(active, account.credentials(), media)
    except SendError as error:
        if error.retryable:
            _update_entry(inbound_id, key, attempts=attempts, error=str(error)[:1000])
            raise
        media_fail(inbound_id=inbound_id, key=key, error=str(error))
        return Media.FAILED
    finally:
        if own_session:
            active.close()
    if len(downloaded.content) > MAX_MEDIA_BYTES:
        media_fail(
            inbound_id=inbound_id,
            key=key,
            error=_("The file is larger than %(limit)d MB.") % {"limit": MAX_MEDIA_BYTES // (1024 * 1024)},
        )
        return Media.FAILED
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update(of=("self",)).get(pk=inbound_id)
        entry = _entry(locked.summary, key)
        if entry is None:
            return Media.MISSING
        if entry.get("status") == Media.STORED:  # a second run finished first
            return Media.STORED
        interaction_id = entry.get("interaction")
        interaction = (
            Interaction.objects.filter(pk=interaction_id, tenant_id=locked.tenant_id).first()
            if isinstance(interaction_id, int)
            else None
        )
        if interaction is None:
            entry.update(status=Media.FAILED, error=_("The interaction of this attachment was deleted."))
        else:
            attachment = attachment_store(
                interaction=interaction,
                filename=downloaded.filename or media.filename,
                content=downloaded.content,
                content_type=downloaded.mime_type or media.mime_type,
            )
            entry.update(
                status=Media.STORED,
                attachment=attachment.pk,
                size=attachment.size,
                sha256=attachment.sha256,
                attempts=attempts,
                error="",
            )
        locked.save(update_fields=["summary", "updated_at"])
        return str(entry["status"])


def pending_media(*, received_before: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """(message id, key) of attachments whose task never ran (pending, no attempt yet) of messages
    received before ``received_before``, oldest first, at most ``limit``. Attachments being retried
    have attempts and are left to their own task."""
    found: list[tuple[int, str]] = []
    rows = (
        InboundMessage.objects.filter(
            channel=Channel.SOCIAL,
            received_at__lt=received_before,
            summary__media__contains=[{"status": Media.PENDING, "attempts": 0}],
        )
        .order_by("received_at")
        .values_list("pk", "summary")
    )
    for inbound_id, summary in rows.iterator(chunk_size=100):
        for entry in (summary or {}).get("media") or []:
            if isinstance(entry, dict) and entry.get("status") == Media.PENDING and not entry.get("attempts"):
                found.append((inbound_id, str(entry.get("key"))))
                if len(found) >= limit:
                    return found
    return found
