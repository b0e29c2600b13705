"""Outbound email: agents' replies and the automatic acknowledgement of new tickets.

Writing and sending are separate steps. ``email_reply`` and ``email_acknowledge`` store the outbound
interaction (its ``external_id`` is the Message-ID we will send, without ``<>``, so that the
customer's answer threads onto the ticket by its In-Reply-To) and an ``OutboundDelivery`` in one
transaction, and enqueue ``send_email_delivery`` once it commits. ``delivery_send``, run by that
task, builds the message from what is stored and hands it to Django's email backend.

Acknowledgements carry ``.ack`` in their Message-ID (``<time.pid.random.ack@domain>``): that is how
this module recognises them, to send one per ticket at most and to mark them as automatic
(``Auto-Submitted: auto-replied``, RFC 3834) so that other systems do not answer them.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Sequence
from email import encoders
from email.mime.base import MIMEBase
from email.utils import formataddr, make_msgid
from smtplib import SMTPAuthenticationError, SMTPException, SMTPRecipientsRefused, SMTPResponseException
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from care.connectors.email.reply import html_to_text
from care.connectors.models import DeliveryStatus, InboundMessage, Mailbox, OutboundDelivery
from care.contacts.identities import IdentityKind
from care.contacts.models import Identity
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction, Interaction, Ticket
from care.tickets.services import attachment_store, interaction_add
from care.tickets.status import Status

if TYPE_CHECKING:
    from care.accounts.models import User

logger = logging.getLogger(__name__)

# One first attempt and five retries (the task's max_retries); then the delivery is failed.
MAX_SEND_ATTEMPTS = 6
# RFC 5322 asks to keep References short enough; the thread's first id and the newest ones matter.
MAX_REFERENCES = 20
# Loop breaker: an address that opened this many tickets within the hour gets no further
# acknowledgements (an auto-responder without Auto-Submitted headers, writing new subjects).
ACKNOWLEDGEMENTS_PER_HOUR = 5
ACK_IDSTRING = "ack"
_ACK_MARK = f".{ACK_IDSTRING}@"
_EMAIL_PROVIDER = "email"
_SIGNATURE_DELIMITER = "-- \n"
_MESSAGE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$")  # printable, no <>
_REPLY_PREFIXES = re.compile(r"^\s*((re|aw|antw|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


class DeliveryFailed(Exception):  # noqa: N818 - reads as what happened
    """The delivery failed for good (permanent SMTP error or attempts used up); it is marked failed."""


# --- writing ------------------------------------------------------------------------------------


@transaction.atomic
def email_reply(
    *,
    ticket: Ticket,
    author: User | None,
    body_text: str,
    body_html: str = "",
    attachments: Sequence[tuple[str, bytes, str]] = (),
    to: str | None = None,
) -> Interaction:
    """Store an agent's email reply on ``ticket`` and queue it for sending after commit.

    ``attachments`` are (filename, content, content type). The recipient is ``to`` or the
    customer's primary (else most recent) email address; the sending mailbox is the one the
    customer last wrote to, else the tenant's first active one. Closed tickets take no replies.
    The caller has checked that ``author`` may act on the ticket (``access_ticket``).
    """
    locked = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)
    if locked.status == Status.CLOSED:
        raise BusinessRuleViolation(
            _("%(ticket)s is closed; a closed ticket takes no replies. Open a follow-up ticket instead.")
            % {"ticket": locked.reference}
        )
    if not body_text.strip():
        body_text = html_to_text(body_html).strip() if body_html.strip() else ""
    if not body_text:
        raise BusinessRuleViolation(_("The reply is empty."))
    recipient = _recipient(locked, to)
    mailbox = reply_mailbox(locked)
    return _queue_outbound(
        ticket=locked,
        mailbox=mailbox,
        recipient=recipient,
        author=author,
        body_text=body_text,
        body_html=body_html,
        attachments=attachments,
        acknowledgement=False,
    )


@transaction.atomic
def email_acknowledge(*, ticket: Ticket, mailbox: Mailbox, in_reply_to: Interaction) -> Interaction | None:
    """Queue the automatic "we received your message, your reference is …" for a new ticket.

    Called by email ingestion inside its transaction, for a ticket it just created from
    ``in_reply_to``. Returns None, sending nothing, when the ticket was acknowledged before, the
    mailbox is inactive, the customer has no usable address or it is one of our mailboxes, or the
    address was acknowledged too often within the hour (a loop).
    """
    locked = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)
    if not mailbox.is_active or locked.status == Status.CLOSED or is_acknowledged(locked):
        return None
    recipient = _acknowledgement_recipient(locked, in_reply_to)
    if recipient is None or Mailbox.objects.filter(address__iexact=recipient).exists():
        return None
    recent = OutboundDelivery.objects.filter(
        tenant_id=locked.tenant_id,
        recipient=recipient,
        created_at__gte=timezone.now() - dt.timedelta(hours=1),
        interaction__external_id__contains=_ACK_MARK,
    ).count()
    if recent >= ACKNOWLEDGEMENTS_PER_HOUR:
        logger.warning(
            "Not acknowledging %s to %s: %d acknowledgements within the hour",
            locked.reference,
            recipient,
            recent,
        )
        return None
    return _queue_outbound(
        ticket=locked,
        mailbox=mailbox,
        recipient=recipient,
        author=None,
        body_text=acknowledgement_text(locked),
        body_html="",
        attachments=(),
        acknowledgement=True,
    )


def acknowledgement_text(ticket: Ticket) -> str:
    """The acknowledgement's text in the ticket's language (English where no catalogue has it)."""
    with translation.override(ticket.language or ticket.tenant.default_language):
        paragraphs = [
            _("Hello,"),
            _("Thank you for your message, we have received it. Your reference is %(reference)s.")
            % {"reference": ticket.reference},
            _(
                "We will answer as soon as possible. If you write to us about this matter again, "
                "please reply to this email or keep the reference in the subject."
            ),
            _("This is an automatic message."),
        ]
    return "\n\n".join(paragraphs)


def is_acknowledged(ticket: Ticket) -> bool:
    return Interaction.objects.filter(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        external_id__contains=_ACK_MARK,
    ).exists()


def is_acknowledgement(interaction: Interaction) -> bool:
    return interaction.direction == Direction.OUTBOUND and _ACK_MARK in interaction.external_id


def reply_mailbox(ticket: Ticket) -> Mailbox:
    """The active mailbox the customer last wrote to on this ticket, else the tenant's first one."""
    last = (
        InboundMessage.objects.filter(
            tenant_id=ticket.tenant_id, ticket=ticket, provider=_EMAIL_PROVIDER, mailbox__is_active=True
        )
        .select_related("mailbox")
        .order_by("-received_at", "-pk")
        .first()
    )
    if last is not None and last.mailbox is not None:
        return last.mailbox
    mailbox = Mailbox.objects.filter(tenant_id=ticket.tenant_id, is_active=True).order_by("pk").first()
    if mailbox is None:
        raise BusinessRuleViolation(
            _("%(tenant)s has no active mailbox to send email from; an administrator must add one.")
            % {"tenant": ticket.tenant}
        )
    return mailbox


def _recipient(ticket: Ticket, to: str | None) -> str:
    if to is not None:
        address = to.strip().lower()
        try:
            validate_email(address)
        except ValidationError:
            raise BusinessRuleViolation(
                _("%(address)s is not a valid email address.") % {"address": to}
            ) from None
        return address
    customer_address = _customer_address(ticket)
    if customer_address is None:
        raise BusinessRuleViolation(
            _(
                "The customer of %(ticket)s has no email address; add one to the customer or reply "
                "through another channel."
            )
            % {"ticket": ticket.reference}
        )
    return customer_address


def _customer_address(ticket: Ticket) -> str | None:
    return (
        Identity.objects.filter(
            tenant_id=ticket.tenant_id, customer_id=ticket.customer_id, kind=IdentityKind.EMAIL
        )
        .order_by("-is_primary", "-created_at", "-pk")
        .values_list("value", flat=True)
        .first()
    )


def _acknowledgement_recipient(ticket: Ticket, in_reply_to: Interaction) -> str | None:
    identity = in_reply_to.author_identity
    if identity is not None and identity.kind == IdentityKind.EMAIL:
        return identity.value
    return _customer_address(ticket)


def _new_message_id(mailbox: Mailbox, *, acknowledgement: bool) -> str:
    """A Message-ID without <>, on the mailbox's domain (ASCII: an IDN domain is punycoded)."""
    domain = mailbox.address.rsplit("@", 1)[-1]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "care.invalid"
    return make_msgid(idstring=ACK_IDSTRING if acknowledgement else None, domain=domain)[1:-1]


def _queue_outbound(
    *,
    ticket: Ticket,
    mailbox: Mailbox,
    recipient: str,
    author: User | None,
    body_text: str,
    body_html: str,
    attachments: Sequence[tuple[str, bytes, str]],
    acknowledgement: bool,
) -> Interaction:
    """Store the interaction, its attachments and its delivery; send after commit."""
    from care.connectors.email.outbound_tasks import enqueue_delivery

    for _attempt in range(3):
        interaction, created = interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            body_text=body_text,
            body_html=body_html,
            full_text=text_body(body_text, mailbox.signature),
            author_user=author,
            external_id=_new_message_id(mailbox, acknowledgement=acknowledgement),
            counts_as_response=not acknowledgement,
        )
        # An id that is already stored would return that interaction: never reuse it.
        if created:
            break
    else:
        raise RuntimeError("Could not generate an unused Message-ID.")
    for filename, content, content_type in attachments:
        attachment_store(
            interaction=interaction,
            filename=filename,
            content=content,
            content_type=content_type or "application/octet-stream",
        )
    delivery = OutboundDelivery.objects.create(
        tenant_id=ticket.tenant_id,
        interaction=interaction,
        channel=Channel.EMAIL,
        mailbox=mailbox,
        recipient=recipient,
    )
    enqueue_delivery(delivery.pk)
    return interaction


# --- building -----------------------------------------------------------------------------------


def build_message(delivery: OutboundDelivery) -> EmailMultiAlternatives:
    """The email for ``delivery``: threading headers, signature, HTML alternative, attachments."""
    interaction = delivery.interaction
    ticket = interaction.ticket
    mailbox = delivery.mailbox
    if mailbox is None:
        raise BusinessRuleViolation(_("The delivery has no mailbox to send from."))
    in_reply_to, references = thread_ids(interaction)
    headers = {"Message-ID": f"<{interaction.external_id}>"}
    if in_reply_to:
        headers["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        headers["References"] = " ".join(f"<{message_id}>" for message_id in references)
    if is_acknowledgement(interaction):
        # RFC 3834, and Exchange's own header: automatic answers must not be answered automatically.
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"
    message = EmailMultiAlternatives(
        subject=reply_subject(ticket),
        body=text_body(interaction.body_text, mailbox.signature),
        from_email=formataddr((mailbox.sender_name or ticket.tenant.name, mailbox.address)),
        to=[delivery.recipient],
        reply_to=[mailbox.address],
        headers=headers,
    )
    message.attach_alternative(
        html_body(interaction.body_html, interaction.body_text, mailbox.signature), "text/html"
    )
    for attachment in interaction.attachments.all():
        with attachment.file.open("rb") as handle:
            content = handle.read()
        content_type = (
            attachment.content_type if "/" in attachment.content_type else "application/octet-stream"
        )
        if content_type.startswith("text/"):
            message.attach(_exact_attachment(attachment.filename, content, content_type))
        else:
            message.attach(attachment.filename, content, content_type)
    return message


def _exact_attachment(filename: str, content: bytes, content_type: str) -> MIMEBase:
    """A text file in base64, so that it arrives byte for byte (Django would send it as 8-bit text,
    whose line ends SMTP turns into CRLF, and re-type it when it is not UTF-8)."""
    maintype, _slash, subtype = content_type.partition("/")
    part = MIMEBase(maintype, subtype.split(";", 1)[0].strip() or "plain")
    part.set_payload(content)
    encoders.encode_base64(part)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass  # an unknown charset: better none than a wrong one
    else:
        part.set_param("charset", "utf-8")
    name: str | tuple[str, str, str] = filename if filename.isascii() else ("utf-8", "", filename)
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def reply_subject(ticket: Ticket) -> str:
    """``Re: <subject> [SWN-12]``: one Re:, the reference exactly once (at the end)."""
    reference = ticket.reference
    subject = re.sub(rf"\[?\b{re.escape(reference)}\b\]?", " ", ticket.subject, flags=re.IGNORECASE)
    subject = " ".join(_REPLY_PREFIXES.sub("", subject).split())
    return f"Re: {subject} [{reference}]" if subject else f"Re: [{reference}]"


def thread_ids(interaction: Interaction) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) for an outbound email: the customer's latest message before this
    one, and the ticket's email Message-IDs oldest first, capped to the first and the newest ones."""
    earlier = [
        (message_id, direction)
        for message_id, direction in Interaction.objects.filter(
            ticket_id=interaction.ticket_id, channel=Channel.EMAIL, pk__lt=interaction.pk
        )
        .exclude(external_id="")
        .order_by("occurred_at", "pk")
        .values_list("external_id", "direction")
        if _MESSAGE_ID.match(message_id)
    ]
    inbound = [message_id for message_id, direction in earlier if direction == Direction.INBOUND]
    in_reply_to = inbound[-1] if inbound else None
    references = list(dict.fromkeys(message_id for message_id, _direction in earlier))
    if len(references) > MAX_REFERENCES:
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
    if in_reply_to is not None and in_reply_to not in references:
        references = [*references[: MAX_REFERENCES - 1], in_reply_to]
    return in_reply_to, references


def text_body(text: str, signature: str) -> str:
    text = text.replace("\r\n", "\n").rstrip()
    signature = signature.replace("\r\n", "\n").strip("\n")
    if signature.strip():
        return f"{text}\n\n{_SIGNATURE_DELIMITER}{signature}\n"
    return f"{text}\n"


def html_body(body_html: str, body_text: str, signature: str) -> str:
    """The HTML alternative: the (sanitised) HTML reply, else the text escaped, and the signature."""
    content = body_html if body_html.strip() else f"<div>{_text_to_html(body_text.strip())}</div>"
    signature = signature.replace("\r\n", "\n").strip("\n")
    if signature.strip():
        content += f'<div class="signature"><br>-- <br>{_text_to_html(signature)}</div>'
    return f"<!DOCTYPE html>\n<html><body>{content}</body></html>\n"


def _text_to_html(text: str) -> str:
    return html.escape(text.replace("\r\n", "\n")).replace("\n", "<br>\n")


# --- sending ------------------------------------------------------------------------------------


def delivery_send(*, delivery_id: int) -> OutboundDelivery:
    """Send one queued delivery. Safe to call again: a sent or failed delivery is returned as it is,
    and one being sent by another worker right now (row locked) is returned without waiting.

    Raises the transport's ``SMTPException``/``OSError`` when this attempt failed and may be retried
    (the error is recorded), ``DeliveryFailed`` when the delivery failed for good (now marked failed:
    a permanent 5xx answer, an unbuildable message, or the last of ``MAX_SEND_ATTEMPTS``).
    """
    failure: Exception | None = None
    with transaction.atomic():
        delivery = (
            OutboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("interaction__ticket__tenant", "mailbox")
            .filter(pk=delivery_id, status=DeliveryStatus.QUEUED)
            .first()
        )
        if delivery is None:
            return OutboundDelivery.objects.get(pk=delivery_id)
        delivery.attempts += 1
        # The row stays locked while the mail server talks, so that no second worker sends it too.
        try:
            message = build_message(delivery)
            get_connection(fail_silently=False).send_messages([message])
        except (SMTPException, OSError) as exc:
            failure = exc
            _record_failure(delivery, exc, permanent=_is_permanent(exc))
        except (ValidationError, ValueError) as exc:  # BadHeaderError is a ValueError
            failure = exc
            _record_failure(delivery, exc, permanent=True)
        else:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = timezone.now()
            delivery.message_id = delivery.interaction.external_id
            delivery.last_error = ""
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "last_error",
                "sent_at",
                "failed_at",
                "message_id",
                "updated_at",
            ]
        )
    if failure is None:
        return delivery
    if delivery.status == DeliveryStatus.FAILED:
        raise DeliveryFailed(delivery.last_error) from failure
    raise failure


def delivery_fail(*, delivery_id: int, error: str) -> int:
    """Mark a still-queued delivery failed (the task's retries are used up). Returns rows changed."""
    return OutboundDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.FAILED,
        last_error=error[:5000],
        failed_at=timezone.now(),
        updated_at=timezone.now(),
    )


def _record_failure(delivery: OutboundDelivery, exc: Exception, *, permanent: bool) -> None:
    delivery.last_error = describe_error(exc)
    logger.warning(
        "Sending delivery %s failed (attempt %d): %s", delivery.pk, delivery.attempts, delivery.last_error
    )
    if permanent or delivery.attempts >= MAX_SEND_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        delivery.failed_at = timezone.now()


def describe_error(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:5000]


def _is_permanent(exc: Exception) -> bool:
    """A 5xx answer about this message (not our credentials) will not change on a retry."""
    if isinstance(exc, SMTPAuthenticationError):
        return False  # our configuration, which an administrator can fix while we retry
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False
