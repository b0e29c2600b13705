"""Agents' replies on social tickets: written now, sent by a task through the platform's HTTP API.

``social_reply`` checks the platform's rules before anything is stored (WhatsApp, Messenger and
Instagram allow a free-form reply only within 24 hours of the customer's last message; outside it
WhatsApp takes an approved template, Messenger and Instagram a reply tagged ``HUMAN_AGENT`` for up
to 7 days), then stores the outbound interaction and an ``OutboundDelivery`` addressed to the
customer's handle in one transaction, and enqueues ``send_social_delivery`` once it commits.

``social_delivery_send``, run by that task, sends one delivery: it takes a turn from the account's
rate limit (``ratelimit``), locks the row so that no second worker sends it too, calls the
adapter's ``send`` and records the answer: sent with the platform's message id (which status
updates and the platform's echo of our own message refer to), or the platform's error. What the
task should do next (nothing, retry after a backoff, wait for the rate limit) is its return value.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from care.accounts.models import Role
from care.connectors.models import DeliveryStatus, OutboundDelivery, SocialAccount, SocialConversation
from care.connectors.social import ratelimit, registry
from care.connectors.social.base import Adapter, OutboundMessage, SendError
from care.connectors.social.ingest import interaction_external_id
from care.contacts.identities import SocialPlatform
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction, Interaction, Ticket
from care.tickets.services import interaction_add
from care.tickets.status import Status

if TYPE_CHECKING:
    from care.accounts.models import User

logger = logging.getLogger(__name__)

# One first attempt and five retries; then the delivery is failed. Rate-limit waits do not count.
MAX_SEND_ATTEMPTS = 6
# Exponential backoff between attempts: 15 s, 30 s, 60 s, 120 s, 240 s (each jittered into its
# upper half so that deliveries failed together by one outage do not all come back at once).
BACKOFF_BASE_SECONDS = 15.0
BACKOFF_MAX_SECONDS = 900.0
# A platform asking for more than this (a daily quota) is obeyed only this far: the next attempt
# then gets its own answer, and the attempts counter still bounds the whole.
RETRY_AFTER_MAX_SECONDS = 3600.0
# Meta's message tag that lets a person answer up to 7 days after the customer's last message.
HUMAN_AGENT_TAG = "HUMAN_AGENT"
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)
_TAGGED_PLATFORMS = frozenset({SocialPlatform.MESSENGER, SocialPlatform.INSTAGRAM})
_MEDIA_KINDS = ("image", "video", "audio")


def adapter_for_platform(platform: str) -> Adapter | None:
    """The adapter sending for ``platform`` (a ``SocialAccount.platform`` value), or None when Care
    has none (SMS, or a platform module not installed)."""
    return registry.adapter_for(registry.slug_for(platform))


def _platform_label(platform: str) -> str:
    return str(SocialPlatform(platform).label) if platform in SocialPlatform.values else platform


# --- writing ------------------------------------------------------------------------------------


@transaction.atomic
def social_reply(
    *,
    ticket: Ticket,
    author: User,
    text: str,
    template_name: str = "",
    template_language: str = "",
    template_parameters: tuple[str, ...] | list[str] = (),
    media_url: str = "",
    media_kind: str = "",
) -> Interaction:
    """Store an agent's reply on a social ticket and queue it for sending after commit.

    Raises ``PermissionDenied`` when ``author`` may not work on the ticket's tenant, and
    ``BusinessRuleViolation`` (nothing stored) when the ticket is closed, has no social
    conversation, the reply is empty, or the platform's reply window forbids it.
    """
    _check_author(author, ticket)
    locked = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)
    if locked.status == Status.CLOSED:
        raise BusinessRuleViolation(
            _("%(ticket)s is closed; a closed ticket takes no replies. Open a follow-up ticket instead.")
            % {"ticket": locked.reference}
        )
    text = text.replace("\r\n", "\n").strip()
    template_name = template_name.strip()
    parameters = tuple(str(value).strip() for value in template_parameters)
    media_url = media_url.strip()
    conversation = reply_conversation(locked)
    account = conversation.account
    adapter = adapter_for_platform(account.platform)
    if adapter is None:
        raise BusinessRuleViolation(
            _("Care cannot send messages on %(platform)s; reply through another channel.")
            % {"platform": _platform_label(account.platform)}
        )
    check_reply_window(
        adapter=adapter,
        platform=account.platform,
        last_inbound_at=conversation.last_inbound_at,
        template_name=template_name,
        time_zone=locked.tenant.time_zone,
    )
    # On Messenger and Instagram a "template" is a message tag on a text reply, not a template.
    tagged = account.platform in _TAGGED_PLATFORMS or hasattr(adapter, "tagged_reply_window")
    is_template = bool(template_name) and template_name != HUMAN_AGENT_TAG and not tagged
    if not is_template and not text and not media_url:
        raise BusinessRuleViolation(_("The reply is empty: write a text first."))
    max_text: int | None = getattr(adapter, "max_text", None)
    if max_text and len(text) > max_text:
        raise BusinessRuleViolation(
            _("The reply is longer than %(limit)d characters, the most %(platform)s accepts.")
            % {"limit": max_text, "platform": _platform_label(account.platform)}
        )
    if media_url:
        try:
            URLValidator(schemes=["https"])(media_url)
        except ValidationError:
            raise BusinessRuleViolation(
                _("%(url)s is not an https address the platform can fetch the file from.")
                % {"url": media_url}
            ) from None
    language = template_language.strip() or (locked.language or locked.tenant.default_language)
    payload = {
        "text": text,
        "conversation_id": conversation.conversation_id,
        "template_name": template_name,
        "template_language": language if is_template else "",
        "template_parameters": list(parameters),
        "media_url": media_url,
        "media_kind": (media_kind or _guess_media_kind(media_url)) if media_url else "",
    }
    interaction, _created = interaction_add(
        ticket=locked,
        channel=Channel.SOCIAL,
        direction=Direction.OUTBOUND,
        body_text=_timeline_text(text, payload, is_template=is_template),
        author_user=author,
    )
    delivery = OutboundDelivery.objects.create(
        tenant_id=locked.tenant_id,
        interaction=interaction,
        channel=Channel.SOCIAL,
        social_account=account,
        recipient=conversation.sender_id,
        payload=payload,
    )
    from care.connectors.social.outbound_tasks import enqueue_social_delivery

    enqueue_social_delivery(delivery.pk)
    return interaction


def _check_author(author: Any, ticket: Ticket) -> None:
    """The desk's rule (``access_ticket``, ``desk_user_required``): staff of the service center who
    may see the ticket's tenant."""
    if (
        getattr(author, "role", None) == Role.PORTAL
        or not Ticket.objects.visible_to(author).filter(pk=ticket.pk).exists()
    ):
        raise PermissionDenied(_("You are not authorised to reply to this client's customers."))


def reply_conversation(ticket: Ticket) -> SocialConversation:
    """The conversation a reply on ``ticket`` goes to: the one whose current ticket it is, else the
    customer's most recent conversation on an active account of the tenant."""
    conversations = SocialConversation.objects.filter(tenant_id=ticket.tenant_id).select_related("account")
    current = conversations.filter(ticket=ticket).order_by("-last_inbound_at", "-pk").first()
    if current is not None and current.account.is_active:
        return current
    latest = (
        conversations.filter(identity__customer_id=ticket.customer_id, account__is_active=True)
        .order_by("-last_inbound_at", "-pk")
        .first()
    )
    if latest is not None:
        return latest
    if current is not None:
        raise BusinessRuleViolation(
            _("The social account %(account)s is deactivated; an administrator must activate it first.")
            % {"account": current.account}
        )
    raise BusinessRuleViolation(
        _(
            "The customer of %(ticket)s has no conversation on any of the client's active social "
            "accounts; reply through another channel."
        )
        % {"ticket": ticket.reference}
    )


def check_reply_window(
    *,
    adapter: Adapter,
    platform: str,
    last_inbound_at: dt.datetime | None,
    template_name: str,
    time_zone: str,
    now: dt.datetime | None = None,
) -> None:
    """Refuse, with the reason, a reply the platform would refuse for being late.

    Within ``adapter.reply_window`` of the customer's last message anything goes. Outside it
    WhatsApp (and any platform with a window but no tags) takes a template only; Messenger and
    Instagram take a reply tagged ``HUMAN_AGENT`` up to 7 days after the customer's last message.
    """
    window = adapter.reply_window
    if window is None:
        return
    now = now or timezone.now()
    age = now - last_inbound_at if last_inbound_at is not None else None
    if age is not None and age <= window:
        return
    tagged_window: dt.timedelta | None = getattr(adapter, "tagged_reply_window", None)
    if tagged_window is None and platform in _TAGGED_PLATFORMS:
        tagged_window = HUMAN_AGENT_WINDOW
    values = {
        "platform": _platform_label(platform),
        "hours": round(window.total_seconds() / 3600),
        "days": round(tagged_window.total_seconds() / 86400) if tagged_window else 0,
        "when": _format_time(last_inbound_at, time_zone) if last_inbound_at is not None else "",
        "tag": HUMAN_AGENT_TAG,
    }
    if tagged_window is not None:
        if template_name == HUMAN_AGENT_TAG and age is not None and age <= tagged_window:
            return
        if age is None:
            message = _(
                "The customer has not written to this account yet; %(platform)s allows a reply only "
                "within %(hours)d hours of the customer's last message, or one tagged %(tag)s within "
                "%(days)d days."
            )
        elif age <= tagged_window:
            message = _(
                "The customer last wrote on %(when)s; outside %(platform)s's %(hours)d-hour window "
                "only a reply tagged %(tag)s may be sent (a person answering, within %(days)d days)."
            )
        else:
            message = _(
                "The customer last wrote on %(when)s, more than %(days)d days ago; %(platform)s "
                "accepts no reply until the customer writes again."
            )
        raise BusinessRuleViolation(message % values)
    if template_name and template_name != HUMAN_AGENT_TAG:
        return
    if age is None:
        message = _(
            "The customer has not written to this account yet; outside %(platform)s's %(hours)d-hour "
            "window only an approved template may be sent."
        )
    else:
        message = _(
            "The customer last wrote on %(when)s; outside %(platform)s's %(hours)d-hour window only "
            "an approved template may be sent."
        )
    raise BusinessRuleViolation(message % values)


def _format_time(value: dt.datetime, time_zone: str) -> str:
    try:
        zone = ZoneInfo(time_zone)
    except (ValueError, LookupError):
        zone = ZoneInfo("UTC")
    local = timezone.localtime(value, zone)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} ({time_zone})"


def _guess_media_kind(url: str) -> str:
    mime_type = mimetypes.guess_type(url.split("?", 1)[0])[0] or ""
    kind = mime_type.split("/", 1)[0]
    return kind if kind in _MEDIA_KINDS else "document"


def _timeline_text(text: str, payload: dict[str, Any], *, is_template: bool) -> str:
    """What the timeline shows: the text, else what was sent instead of one."""
    parts = [text] if text else []
    if is_template:
        parameters = ", ".join(payload["template_parameters"])
        described = _("Template %(name)s (%(language)s)") % {
            "name": payload["template_name"],
            "language": payload["template_language"],
        }
        parts.append(f"[{described}: {parameters}]" if parameters else f"[{described}]")
    if payload["media_url"]:
        parts.append(payload["media_url"])
    return "\n".join(parts)


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    """Where a delivery stands after one try, and what the task does next: nothing
    (``retry_in`` None), or try again in ``retry_in`` seconds. ``counted``: whether the try used
    up one of the attempts (a rate-limit wait does not)."""

    status: str
    retry_in: float | None = None
    counted: bool = True


def build_message(delivery: OutboundDelivery) -> OutboundMessage:
    """The message ``delivery`` sends, from what ``social_reply`` stored."""
    payload: dict[str, Any] = delivery.payload or {}
    return OutboundMessage(
        recipient_id=delivery.recipient,
        text=str(payload.get("text") or ""),
        conversation_id=str(payload.get("conversation_id") or ""),
        template_name=str(payload.get("template_name") or ""),
        template_language=str(payload.get("template_language") or ""),
        template_parameters=tuple(str(value) for value in payload.get("template_parameters") or ()),
        media_url=str(payload.get("media_url") or ""),
        media_kind=str(payload.get("media_kind") or ""),
        reply_to=str(payload.get("reply_to") or ""),
    )


def social_delivery_send(*, delivery_id: int, session: requests.Session) -> SendOutcome:
    """Try to send one queued social delivery once. Safe to call again: a delivery no longer queued
    is left as it is, and one being sent by another worker right now (row locked) is skipped."""
    delivery = (
        OutboundDelivery.objects.select_related("social_account")
        .filter(pk=delivery_id, channel=Channel.SOCIAL)
        .first()
    )
    if delivery is None:
        logger.warning("Social delivery %s does not exist; nothing to send.", delivery_id)
        return SendOutcome(status="")
    if delivery.status != DeliveryStatus.QUEUED:
        return SendOutcome(status=delivery.status)
    account = delivery.social_account
    if account is None or not account.is_active:
        delivery_fail(
            delivery_id=delivery_id,
            error=_("The social account is missing or deactivated; the reply was not sent."),
        )
        return SendOutcome(status=DeliveryStatus.FAILED)
    adapter = adapter_for_platform(account.platform)
    if adapter is None:
        delivery_fail(
            delivery_id=delivery_id,
            error=_("Care cannot send messages on %(platform)s.")
            % {"platform": _platform_label(account.platform)},
        )
        return SendOutcome(status=DeliveryStatus.FAILED)
    # Before the row lock: a worker waiting for its turn holds nothing.
    wait = ratelimit.acquire(account.pk, adapter.rate_per_second)
    if wait > 0:
        return SendOutcome(status=DeliveryStatus.QUEUED, retry_in=wait, counted=False)
    return _send_locked(delivery_id, account, adapter, session)


def _send_locked(
    delivery_id: int, account: SocialAccount, adapter: Adapter, session: requests.Session
) -> SendOutcome:
    retry_in: float | None = None
    with transaction.atomic():
        delivery = (
            OutboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=delivery_id, status=DeliveryStatus.QUEUED)
            .first()
        )
        if delivery is None:
            current = OutboundDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
            return SendOutcome(status=current or "")
        delivery.attempts += 1
        # The row stays locked while the platform answers, so that no second worker sends it too.
        try:
            result = adapter.send(session, account.credentials(), build_message(delivery))
        except SendError as exc:
            retry_in = _record_failure(delivery, str(exc), exc.retryable, exc.retry_after)
        except requests.RequestException as exc:  # an adapter that let the transport's error through
            retry_in = _record_failure(delivery, f"{exc.__class__.__name__}: {exc}", True, None)
        except Exception as exc:
            # A bug or an answer the adapter cannot read: the platform may have sent the message, so
            # sending again could send it twice. Failed, visible to the agent, logged for a developer.
            logger.exception("Sending social delivery %s failed unexpectedly", delivery_id)
            retry_in = _record_failure(delivery, f"{exc.__class__.__name__}: {exc}", False, None)
        else:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = timezone.now()
            delivery.message_id = result.external_id[:500]
            delivery.last_error = ""
            _remember_platform_id(delivery, account, result.external_id)
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
    return SendOutcome(status=delivery.status, retry_in=retry_in)


def _record_failure(
    delivery: OutboundDelivery, error: str, retryable: bool, retry_after: float | None
) -> float | None:
    """Record the error; the seconds until the next attempt, or None when the delivery failed."""
    delivery.last_error = error[:5000]
    logger.warning(
        "Sending social delivery %s failed (attempt %d): %s", delivery.pk, delivery.attempts, error
    )
    if retryable and delivery.attempts < MAX_SEND_ATTEMPTS:
        return retry_delay(delivery.attempts, retry_after)
    delivery.status = DeliveryStatus.FAILED
    delivery.failed_at = timezone.now()
    return None


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): what the platform asked
    for (``Retry-After``) plus up to a second, else exponential backoff jittered into its upper half."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, RETRY_AFTER_MAX_SECONDS) + random.uniform(0, 1)  # noqa: S311 - jitter
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))
    return backoff / 2 + random.uniform(0, backoff / 2)  # noqa: S311 - jitter, not a secret


def _remember_platform_id(delivery: OutboundDelivery, account: SocialAccount, message_id: str) -> None:
    """Give the interaction the platform's message id (namespaced as ingestion does), so that it is
    the same record when the platform shows us our own message again (an echo, a history import)."""
    if not message_id:
        return
    external_id = interaction_external_id(account=account, platform=account.platform, message_id=message_id)
    taken = Interaction.objects.filter(
        tenant_id=delivery.tenant_id, channel=Channel.SOCIAL, external_id=external_id
    ).exists()
    if taken:  # the echo came first and was stored on its own
        return
    try:
        with transaction.atomic():
            Interaction.objects.filter(pk=delivery.interaction_id, external_id="").update(
                external_id=external_id
            )
    except IntegrityError:
        logger.info("The echo of social delivery %s was stored first", delivery.pk)


def delivery_fail(*, delivery_id: int, error: str) -> int:
    """Mark a still-queued social delivery failed (the task gave up). Returns rows changed."""
    return OutboundDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.FAILED,
        last_error=error[:5000],
        failed_at=timezone.now(),
        updated_at=timezone.now(),
    )
