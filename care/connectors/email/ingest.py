"""Inbound email: store the raw message, then parse it and apply it to the right ticket.

``email_receive`` is what every way in calls (HTTP, IMAP, the CLI): it stores the bytes and enqueues
processing. ``email_apply`` is the processing, run by ``care.connectors.services.inbound_process``
inside one transaction with the stored row locked, so it happens once whatever is retried.
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from care.connectors.email.parse import EmailParseError, ParsedEmail, parse_email
from care.connectors.email.threading import find_ticket
from care.connectors.models import (
    DeliveryStatus,
    InboundMessage,
    InboundStatus,
    Mailbox,
    OutboundDelivery,
)
from care.connectors.services import inbound_store
from care.contacts.identities import IdentityKind
from care.contacts.models import Customer, Identity
from care.contacts.services import customer_create, customer_get_or_create_by_identity
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tenants.models import Tenant
from care.tickets.models import Direction, Interaction, Ticket, TicketLink
from care.tickets.services import (
    attachment_store,
    interaction_add,
    ticket_change_status,
    ticket_create,
    ticket_link,
)
from care.tickets.status import Status

logger = logging.getLogger(__name__)

PROVIDER = "email"


class Outcome:
    CREATED = "created"
    APPENDED = "appended"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"


def email_receive(
    *, mailbox: Mailbox, raw: bytes, source: str, source_ref: str = "", process: bool = True
) -> tuple[InboundMessage, bool]:
    """Store ``raw`` for ``mailbox`` (idempotent on its bytes) and enqueue its processing.

    Returns (message, created). With ``process=False`` the caller processes it itself (the CLI does,
    to print the result).
    """
    from care.connectors.tasks import enqueue_processing

    message, created = inbound_store(
        tenant=mailbox.tenant,
        channel=Channel.EMAIL,
        provider=PROVIDER,
        source=source,
        raw=raw,
        mailbox=mailbox,
        source_ref=source_ref,
    )
    if created and process:
        enqueue_processing(message.pk)
    return message, created


def email_apply(message: InboundMessage) -> None:
    """Parse ``message`` and apply it: bounce, duplicate, loop, or a ticket created or continued.

    Precondition: called by ``inbound_process`` with the row locked inside a transaction. Sets
    ``message.status``/``outcome``/``ticket``/``interaction``/``summary``; raises to fail.
    """
    mailbox = message.mailbox
    if mailbox is None:
        raise BusinessRuleViolation(_("An inbound email must belong to a mailbox."))
    try:
        parsed = parse_email(bytes(message.raw), language_candidates=mailbox.tenant.languages)
    except EmailParseError as exc:
        raise BusinessRuleViolation(_("Not an email message: %(error)s") % {"error": exc}) from exc
    message.external_id = (parsed.message_id or "")[:500]
    summary = summary_of(parsed)

    if parsed.bounce is not None:
        _apply_bounce(message, parsed)
        _finish(message, Outcome.IGNORED, summary)
        return
    if parsed.message_id:
        stored = Interaction.objects.filter(
            tenant_id=message.tenant_id, channel=Channel.EMAIL, external_id=parsed.message_id
        ).first()
        if stored is not None:
            _finish(message, Outcome.DUPLICATE, summary, ticket=stored.ticket, interaction=stored)
            return
    address, name = contact_of(parsed)
    if not address:
        raise BusinessRuleViolation(_("The message names no sender address (From, Reply-To)."))
    if Mailbox.objects.filter(address=address).exists():
        # Mail from one of Care's own addresses: a loop between two mailboxes or an echo.
        _finish(message, Outcome.IGNORED, summary, reason="loop")
        return

    tenant = mailbox.tenant
    language = parsed.language  # detected by the parser among the tenant's languages
    summary["language"] = language
    customer, identity = _sender(tenant, address, name, language)
    ticket, rule = find_ticket(
        tenant=tenant,
        message_ids=[*parsed.in_reply_to, *reversed(parsed.references)],
        subject=parsed.subject,
        customer=customer,
    )
    if ticket is None and parsed.is_auto_reply:
        # An out-of-office answer to nothing Care knows: keep it stored, open no ticket, send nothing.
        _finish(message, Outcome.IGNORED, summary, reason="auto-reply")
        return

    outcome = Outcome.APPENDED
    if ticket is not None and ticket.status == Status.CLOSED:
        previous = ticket
        ticket = _new_ticket(mailbox, customer, parsed, language)
        ticket_link(source=ticket, target=previous, kind=TicketLink.Kind.FOLLOW_UP, actor=None)
        outcome = Outcome.CREATED
    elif ticket is not None:
        if not parsed.is_auto_reply and ticket.status in (Status.SOLVED, Status.PENDING):
            # The customer answered: a solved ticket reopens, a pending one is back with the agents.
            ticket = ticket_change_status(ticket=ticket, status=Status.OPEN, actor=None)
    else:
        ticket = _new_ticket(mailbox, customer, parsed, language)
        outcome = Outcome.CREATED

    interaction, _added = interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        body_text=parsed.visible_text,
        body_html=parsed.html,
        full_text=parsed.text,
        author_identity=identity,
        external_id=(parsed.message_id or f"sha256:{message.sha256}")[:500],
        occurred_at=parsed.date if parsed.date and parsed.date <= timezone.now() else message.received_at,
    )
    for attachment in parsed.attachments:
        attachment_store(
            interaction=interaction,
            filename=attachment.filename,
            content=attachment.content,
            content_type=attachment.content_type,
            content_id=attachment.content_id or "",
            is_inline=attachment.is_inline,
        )
    summary["threaded_by"] = rule
    _finish(message, outcome, summary, ticket=ticket, interaction=interaction)
    if outcome == Outcome.CREATED and mailbox.auto_acknowledge and not parsed.is_auto_reply:
        from care.connectors.email.outbound import email_acknowledge

        email_acknowledge(ticket=ticket, mailbox=mailbox, in_reply_to=interaction)


def mailbox_for(raw: bytes) -> Mailbox:
    """The mailbox a message was sent to, by Delivered-To, X-Original-To, To and Cc; else the oldest.

    For a catch-all pipe or a folder of files whose mailbox is not given. Raises Mailbox.DoesNotExist
    when no mailbox is active at all.
    """
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:200_000])
    recipients: list[str] = []
    for field in ("Delivered-To", "X-Original-To", "To", "Cc"):
        values = [str(value) for value in headers.get_all(field) or []]
        recipients += [address.lower() for _name, address in getaddresses(values) if address]
    active = Mailbox.objects.select_related("tenant").filter(is_active=True)
    by_address = {mailbox.address: mailbox for mailbox in active.filter(address__in=recipients)}
    for address in recipients:
        if address in by_address:
            return by_address[address]
    return active.order_by("pk")[:1].get()


def _sender(
    tenant: Tenant, address: str, name: str, language: str | None
) -> tuple[Customer, Identity | None]:
    """The customer behind ``address``. A malformed address (``user@example.com.``) is repaired where
    that is unambiguous; one that cannot be repaired still gets a customer, without an identity, so
    that the message is never lost for the sake of its sender line."""
    for candidate in dict.fromkeys([address, address.strip("<>\"' ").rstrip(".")]):
        try:
            customer, identity, _created = customer_get_or_create_by_identity(
                tenant=tenant,
                kind=IdentityKind.EMAIL,
                value=candidate,
                display_name=name,
                preferred_language=language or "",
            )
        except ValidationError:
            continue
        return customer, identity
    logger.warning("Inbound email with an unusable sender address %r; customer without identity", address)
    return customer_create(
        tenant=tenant, display_name=name or address, preferred_language=language or ""
    ), None


def contact_of(parsed: ParsedEmail) -> tuple[str, str]:
    """Who the customer is: a mailing list's original sender, else Reply-To, else From."""
    original = parsed.headers.get("x-original-sender", "").strip().lower()
    if original and "@" in original:
        return original, parsed.from_name
    if parsed.reply_to_address:
        return parsed.reply_to_address, parsed.reply_to_name or parsed.from_name
    return parsed.from_address or "", parsed.from_name


def _new_ticket(mailbox: Mailbox, customer: Any, parsed: ParsedEmail, language: str | None) -> Ticket:
    return ticket_create(
        tenant=mailbox.tenant,
        customer=customer,
        channel=Channel.EMAIL,
        subject=parsed.subject,
        language=language or mailbox.default_language or "",
        priority=mailbox.default_priority,
        team=mailbox.default_team,
    )


def _apply_bounce(message: InboundMessage, parsed: ParsedEmail) -> None:
    """A delivery-status report marks the outbound message it refers to as failed."""
    bounce = parsed.bounce
    assert bounce is not None  # noqa: S101 - checked by the caller
    if not bounce.original_message_id:
        return
    OutboundDelivery.objects.filter(
        tenant_id=message.tenant_id, message_id=bounce.original_message_id
    ).exclude(status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.FAILED,
        last_error=_("Bounced: %(status)s") % {"status": bounce.status or _("no status code")},
        failed_at=timezone.now(),
    )


def _finish(
    message: InboundMessage,
    outcome: str,
    summary: dict[str, Any],
    *,
    ticket: Ticket | None = None,
    interaction: Interaction | None = None,
    reason: str = "",
) -> None:
    message.outcome = outcome
    message.status = InboundStatus.IGNORED if outcome == Outcome.IGNORED else InboundStatus.PROCESSED
    message.ticket = ticket
    message.interaction = interaction
    summary["status"] = outcome
    summary["ticket"] = ticket.reference if ticket is not None else None
    if reason:
        summary["reason"] = reason
    message.summary = summary


def summary_of(parsed: ParsedEmail) -> dict[str, Any]:
    """The checkable contract of ``ingest_email --json`` (docs/email.md), minus file and status."""
    return {
        "message_id": parsed.message_id,
        "from": {"address": parsed.from_address, "name": parsed.from_name},
        "subject": parsed.subject,
        "body_text": parsed.visible_text,
        "full_text": parsed.text,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.content),
                "sha256": hashlib.sha256(a.content).hexdigest(),
            }
            for a in parsed.attachments
        ],
        "language": None,
        "auto_reply": parsed.is_auto_reply,
        "error": None,
    }
