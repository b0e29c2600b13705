"""Social in: store the raw webhook body first, then parse it and apply it to tickets and deliveries.

``social_receive`` stores the bytes a verified webhook brought (channel social, provider
``social-<slug>``, the account in the summary). ``social_apply`` is the processing, run by
``care.connectors.services.inbound_process`` (one transaction, the stored row locked), so that a
failed body can be replayed with ``inbound_retry`` once its cause is fixed (docs/social.md):

- each message becomes an interaction (channel social), threaded on the sender's conversation with
  that account: its ticket while unresolved, else a new ticket (linked as a follow-up of the last);
- an echo (a message the account itself sent from the platform's own app) is recorded as outbound
  on the open ticket, and opens none;
- each status moves the ``OutboundDelivery`` it names forward;
- attachments are downloaded afterwards by a task (``care.connectors.social.media``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from care.connectors.models import (
    DeliveryStatus,
    InboundMessage,
    InboundSource,
    InboundStatus,
    OutboundDelivery,
    SocialAccount,
    SocialConversation,
)
from care.connectors.services import inbound_store
from care.connectors.social.base import (
    Adapter,
    DeliveryState,
    InboundSocialMessage,
    ParseError,
    StatusUpdate,
)
from care.connectors.social.registry import (
    PROVIDERS,
    adapter_for,
    provider_for,
    slug_for,
    slug_of_provider,
)
from care.contacts.identities import IdentityKind, SocialPlatform
from care.contacts.models import Customer, Identity
from care.contacts.services import customer_get_or_create_by_identity
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.core.langdetect import detect_language
from care.tickets.models import Direction, Interaction, Ticket, TicketLink
from care.tickets.services import interaction_add, ticket_change_status, ticket_create, ticket_link
from care.tickets.status import UNRESOLVED, Status

__all__ = [
    "PROVIDERS",
    "SocialInputError",
    "UnknownAccountError",
    "interaction_external_id",
    "social_apply",
    "social_receive",
]

SUBJECT_CHARS = 40
MAX_LISTED = 50  # ids listed per kind in the summary (unknown statuses, skipped messages, errors)

# Delivery states in the order they happen; a status never moves a delivery backwards.
_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}


class SocialInputError(ParseError):
    """A stored body that cannot be applied; ``str()`` is user-facing, ``status`` the HTTP status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UnknownAccountError(SocialInputError):
    status = 404


def interaction_external_id(*, account: SocialAccount, platform: str, message_id: str) -> str:
    """``Interaction.external_id`` of a social message: ``<platform>:<platform's message id>``.

    Ids of the generic adapter come from whatever system posts them (often counters), so they are
    namespaced by account as well (``other:<account pk>:<id>``): two such systems of one tenant
    must not take each other's "1" for a duplicate.
    """
    if platform == SocialPlatform.OTHER:
        return f"{platform}:{account.pk}:{message_id}"[:500]
    return f"{platform}:{message_id}"[:500]


def social_receive(
    *,
    account: SocialAccount,
    raw: bytes,
    slug: str = "",
    source: str = InboundSource.WEBHOOK,
    source_ref: str = "",
) -> tuple[InboundMessage, bool]:
    """Store ``raw`` for ``account`` (idempotent on its bytes per tenant and provider).

    ``slug`` is the URL slug the body arrived on (default: the account's platform's). The account
    goes into the summary, which ``social_apply`` reads. Returns (message, created).
    """
    message, created = inbound_store(
        tenant=account.tenant,
        channel=Channel.SOCIAL,
        provider=provider_for(slug or slug_for(account.platform)),
        source=source,
        raw=raw,
        source_ref=source_ref,
    )
    if created:
        message.summary = {"account": account.pk}
        InboundMessage.objects.filter(pk=message.pk).update(summary=message.summary)
    elif (message.summary or {}).get("account") != account.pk:
        # Stored bytes are unique per tenant and provider: the very same body already came in for
        # another account of the tenant. Refuse loudly rather than take it for a replay.
        raise SocialInputError(
            _(
                "This exact body was already received for another %(platform)s account of this client "
                "(stored message %(id)d); it is not applied twice."
            )
            % {"platform": account.get_platform_display(), "id": message.pk},
            status=409,
        )
    return message, created


def _account_of(message: InboundMessage) -> tuple[SocialAccount, Adapter]:
    account_id = (message.summary or {}).get("account")
    if not isinstance(account_id, int):
        raise UnknownAccountError(_("The stored social message does not name its account."))
    account = (
        SocialAccount.objects.select_related("tenant", "default_team")
        .filter(pk=account_id, tenant_id=message.tenant_id, is_active=True)
        .first()
    )
    if account is None:
        raise UnknownAccountError(
            _("The social account this message arrived on no longer exists or is inactive.")
        )
    adapter = adapter_for(slug_of_provider(message.provider))
    if adapter is None:
        raise UnknownAccountError(
            _("No adapter for %(provider)s is installed.") % {"provider": message.provider}
        )
    if adapter.platform != account.platform:
        raise UnknownAccountError(
            _("The message arrived for %(provider)s but the account is a %(platform)s account.")
            % {"provider": message.provider, "platform": account.get_platform_display()}
        )
    return account, adapter


def social_apply(message: InboundMessage) -> None:
    """Parse a stored social webhook body and apply it (the handler of ``inbound_process``).

    Precondition: the message row is locked and a transaction is open. Raises ``ParseError``
    (rolled back, message marked failed) for a body the adapter cannot read, an account that is
    gone, or when every message of the body was refused.
    """
    account, adapter = _account_of(message)
    parsed = adapter.parse(bytes(message.raw))
    run = _Run(message, account, adapter)
    for item in parsed.messages:
        run.message(item)
    for update in parsed.statuses:
        run.status(update)
    run.ignored_events.extend(parsed.ignored)
    run.finish()


@dataclasses.dataclass
class _Run:
    """Applying one stored body: the counts and lists that end up in its summary."""

    inbound: InboundMessage
    account: SocialAccount
    adapter: Adapter
    created: int = 0
    appended: int = 0
    duplicates: int = 0
    echoes: int = 0
    statuses: int = 0
    ignored_events: list[str] = dataclasses.field(default_factory=list)
    unknown_statuses: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[str] = dataclasses.field(default_factory=list)
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    media: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_inbound_at: dt.datetime | None = None
    ticket: Ticket | None = None
    interaction: Interaction | None = None

    # --- messages ----------------------------------------------------------------------------

    def _external_id(self, item: InboundSocialMessage) -> str:
        return interaction_external_id(
            account=self.account, platform=self.adapter.platform, message_id=item.external_id
        )

    def message(self, item: InboundSocialMessage) -> None:
        if item.account_id and item.account_id != self.account.account_id:
            # Another account's message at this account's URL: never applied here (docs/social.md).
            _listed(self.mismatched, item.external_id)
            return
        external_id = self._external_id(item)
        stored = (
            Interaction.objects.select_related("ticket")
            .filter(tenant_id=self.account.tenant_id, channel=Channel.SOCIAL, external_id=external_id)
            .first()
        )
        if stored is not None or (
            item.from_account
            and OutboundDelivery.objects.filter(
                social_account=self.account, message_id=item.external_id
            ).exists()  # the echo of a reply Care sent itself
        ):
            self.duplicates += 1
            self._record(item, "duplicate", stored)
            return
        if not item.from_account and not item.sender_id.strip().removeprefix("@"):
            self._refuse(item, _("The message names no sender."))
            return
        try:
            with transaction.atomic():  # a savepoint: one message refused does not lose the others
                if item.from_account:
                    self._echo(item, external_id)
                else:
                    self._inbound(item, external_id)
        except (ValidationError, BusinessRuleViolation) as error:
            self._refuse(
                item, "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            )

    def _refuse(self, item: InboundSocialMessage, reason: str) -> None:
        if len(self.errors) < MAX_LISTED:
            self.errors.append({"id": item.external_id, "error": reason})

    def _inbound(self, item: InboundSocialMessage, external_id: str) -> None:
        tenant = self.account.tenant
        language = detect_language(item.text, tenant.languages) if item.text else None
        customer, identity, _created = customer_get_or_create_by_identity(
            tenant=tenant,
            kind=IdentityKind.SOCIAL,
            platform=self.adapter.platform,
            value=item.sender_id,
            display_name=item.sender_name,
            preferred_language=language or "",
        )
        conversation = self._conversation(item, identity)
        ticket = conversation.ticket
        if ticket is not None:
            ticket.tenant = tenant  # the same row: spares the receivers a query for it
        outcome = "appended"
        if ticket is None or ticket.status not in UNRESOLVED:
            previous = ticket
            ticket = self._new_ticket(item, customer, language)
            if previous is not None:
                ticket_link(source=ticket, target=previous, kind=TicketLink.Kind.FOLLOW_UP, actor=None)
            outcome = "created"
        elif ticket.status == Status.PENDING:
            # The customer answered: a ticket waiting on them is back with the agents.
            ticket = ticket_change_status(ticket=ticket, status=Status.OPEN, actor=None)
        interaction = self._add(item, external_id, ticket, Direction.INBOUND, identity)
        if interaction is None:
            return
        occurred_at = interaction.occurred_at
        conversation.ticket = ticket
        conversation.identity = identity
        conversation.conversation_id = (item.conversation_id or conversation.conversation_id)[:200]
        if conversation.last_inbound_at is None or occurred_at > conversation.last_inbound_at:
            conversation.last_inbound_at = occurred_at
        conversation.save(
            update_fields=["ticket", "identity", "conversation_id", "last_inbound_at", "updated_at"]
        )
        if self.last_inbound_at is None or occurred_at > self.last_inbound_at:
            self.last_inbound_at = occurred_at
        if outcome == "created":
            self.created += 1
        else:
            self.appended += 1
        self._record(item, outcome, interaction)

    def _conversation(self, item: InboundSocialMessage, identity: Identity) -> SocialConversation:
        """The sender's conversation with the account, locked (messages of one sender queue here)."""
        sender_id = item.sender_id[:200]
        found = (
            SocialConversation.objects.select_for_update(of=("self",))
            .select_related("ticket")
            .filter(account=self.account, sender_id=sender_id)
            .first()
        )
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return SocialConversation.objects.create(
                    tenant_id=self.account.tenant_id,
                    account=self.account,
                    identity=identity,
                    sender_id=sender_id,
                    conversation_id=item.conversation_id[:200],
                )
        except IntegrityError:
            # The sender's first two messages arrived at once; the other request created it.
            return (
                SocialConversation.objects.select_for_update(of=("self",))
                .select_related("ticket")
                .get(account=self.account, sender_id=sender_id)
            )

    def _new_ticket(self, item: InboundSocialMessage, customer: Customer, language: str | None) -> Ticket:
        text = " ".join(item.text.split())
        if text:
            subject = text if len(text) <= SUBJECT_CHARS else text[:SUBJECT_CHARS].rstrip() + "…"
        else:
            subject = _("Message from %(name)s") % {"name": item.sender_name or item.sender_id}
        return ticket_create(
            tenant=self.account.tenant,
            customer=customer,
            channel=Channel.SOCIAL,
            subject=subject,
            language=language or self.account.default_language or "",
            priority=self.account.default_priority,
            team=self.account.default_team,
        )

    def _echo(self, item: InboundSocialMessage, external_id: str) -> None:
        """A message the account sent from the platform's own app: outbound on the open ticket."""
        handles = {handle[:200] for handle in (item.conversation_id, item.sender_id) if handle}
        handles.discard(self.account.account_id)
        conversation = (
            SocialConversation.objects.select_for_update(of=("self",))
            .select_related("ticket")
            .filter(account=self.account)
            .filter(Q(sender_id__in=handles) | Q(conversation_id__in=handles))
            .order_by("-last_inbound_at")
            .first()
        )
        ticket = conversation.ticket if conversation is not None else None
        if ticket is None or ticket.status not in UNRESOLVED:
            _listed(self.ignored_events, f"echo without an open ticket: {item.external_id}")
            return
        interaction = self._add(item, external_id, ticket, Direction.OUTBOUND, None)
        if interaction is not None:
            self.echoes += 1
            self._record(item, "echo", interaction)

    def _add(
        self,
        item: InboundSocialMessage,
        external_id: str,
        ticket: Ticket,
        direction: str,
        identity: Identity | None,
    ) -> Interaction | None:
        now = timezone.now()
        interaction, added = interaction_add(
            ticket=ticket,
            channel=Channel.SOCIAL,
            direction=direction,
            body_text=item.text,
            author_identity=identity,
            external_id=external_id,
            occurred_at=min(item.occurred_at, now),  # a sender's clock ahead of ours is not the future
        )
        if not added:  # a concurrent delivery of the same message won
            self.duplicates += 1
            self._record(item, "duplicate", interaction)
            return None
        self.ticket, self.interaction = ticket, interaction
        for index, ref in enumerate(item.attachments):
            key = f"{item.external_id}#{index}"
            self.media.append(
                {
                    "key": key,
                    "interaction": interaction.pk,
                    "ref": dataclasses.asdict(ref),
                    "status": "pending",
                    "attempts": 0,
                    "error": "",
                }
            )
            _enqueue_media(self.inbound.pk, key)
        return interaction

    def _record(self, item: InboundSocialMessage, outcome: str, interaction: Interaction | None) -> None:
        if len(self.messages) >= MAX_LISTED:
            return
        entry: dict[str, Any] = {
            "id": item.external_id,
            "outcome": outcome,
            "kind": item.kind,
            "sender": item.sender_id,
            "interaction": interaction.pk if interaction is not None else None,
            # The reference from the account's tenant: no query for the ticket's tenant.
            "ticket": (
                f"{self.account.tenant.code}-{interaction.ticket.number}" if interaction is not None else None
            ),
        }
        if item.data:
            entry["data"] = _jsonable(item.data)
        self.messages.append(entry)

    # --- statuses ----------------------------------------------------------------------------

    def status(self, update: StatusUpdate) -> None:
        if update.account_id and update.account_id != self.account.account_id:
            _listed(self.mismatched, update.external_id or f"watermark:{update.recipient_id}")
            return
        if update.external_id:
            deliveries = list(
                OutboundDelivery.objects.select_for_update()
                .filter(social_account=self.account, message_id=update.external_id)
                .order_by("pk")
            )
            for delivery in deliveries:
                _advance(delivery, update)
            if deliveries:
                self.statuses += 1
            else:
                _listed(self.unknown_statuses, update.external_id)
        elif update.watermark is not None and update.recipient_id:
            if _advance_to_watermark(self.account, update):
                self.statuses += 1
            else:
                _listed(self.unknown_statuses, f"watermark:{update.recipient_id}")
        else:
            _listed(self.ignored_events, f"status without a message id: {update.state}")

    # --- the result --------------------------------------------------------------------------

    def finish(self) -> None:
        message = self.inbound
        if self.errors and not (self.created or self.appended or self.duplicates or self.echoes):
            raise SocialInputError(
                _("No message could be applied: %(errors)s")
                % {"errors": "; ".join(f"{e['id']}: {e['error']}" for e in self.errors)}
            )
        if self.last_inbound_at is not None:
            SocialAccount.objects.filter(pk=self.account.pk).filter(
                Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=self.last_inbound_at)
            ).update(last_inbound_at=self.last_inbound_at)
        message.summary = {
            **(message.summary or {}),
            "account": self.account.pk,
            "platform": self.adapter.platform,
            "created": self.created,
            "appended": self.appended,
            "duplicates": self.duplicates,
            "echoes": self.echoes,
            "statuses": self.statuses,
            "ignored": len(self.ignored_events) + len(self.mismatched) + len(self.unknown_statuses),
            "ignored_events": self.ignored_events,
            "unknown_statuses": self.unknown_statuses,
            "mismatched_account": self.mismatched,
            "errors": self.errors,
            "messages": self.messages,
            "media": self.media,
        }
        if self.messages:
            message.external_id = str(self.messages[0]["id"])[:500]
        message.ticket = self.ticket
        message.interaction = self.interaction
        if self.created:
            message.outcome = "created"
        elif self.appended or self.echoes:
            message.outcome = "appended"
        elif self.duplicates:
            message.outcome = "duplicate"
        elif self.statuses:
            message.outcome = "status"
        else:
            message.outcome = "ignored"
            message.status = InboundStatus.IGNORED


def _advance(delivery: OutboundDelivery, update: StatusUpdate) -> None:
    """Move one delivery forward: queued < sent < delivered < read; never back.

    ``failed`` only fails a delivery not yet known to have arrived (queued or sent): a platform
    that later reports it delivered or read is believed over the failure, which stays recorded in
    ``failed_at`` and ``last_error``. ``sent`` never undoes a failure.
    """
    at = update.occurred_at
    current = delivery.status
    changed: set[str] = set()
    if update.state == DeliveryState.FAILED:
        if current in (DeliveryStatus.QUEUED, DeliveryStatus.SENT):
            delivery.status = DeliveryStatus.FAILED
            delivery.failed_at = at
            delivery.last_error = update.error or _("The platform reported the message as not delivered.")
            changed |= {"status", "failed_at", "last_error"}
    elif update.state in _RANK:
        target = DeliveryStatus(update.state)
        if current == DeliveryStatus.FAILED:
            moves_on = target in (DeliveryStatus.DELIVERED, DeliveryStatus.READ)
        else:
            moves_on = _RANK[target] > _RANK[DeliveryStatus(current)]
        if moves_on:
            delivery.status = target
            changed.add("status")
        if delivery.sent_at is None:
            delivery.sent_at = at
            changed.add("sent_at")
        if target in (DeliveryStatus.DELIVERED, DeliveryStatus.READ) and delivery.delivered_at is None:
            delivery.delivered_at = at  # read implies delivered, whichever report came first
            changed.add("delivered_at")
        if target == DeliveryStatus.READ and delivery.read_at is None:
            delivery.read_at = at
            changed.add("read_at")
    if changed:
        delivery.save(update_fields=[*sorted(changed), "updated_at"])


def _advance_to_watermark(account: SocialAccount, update: StatusUpdate) -> int:
    """Messenger's delivery and read reports: every message sent to the recipient up to the
    watermark is delivered (or read). Failed and not yet sent deliveries are left alone."""
    assert update.watermark is not None  # noqa: S101 - checked by the caller
    target = DeliveryStatus.READ if update.state == DeliveryState.READ else DeliveryStatus.DELIVERED
    if update.state not in (DeliveryState.DELIVERED, DeliveryState.READ):
        return 0
    lower = [state for state, rank in _RANK.items() if 0 < rank < _RANK[target]]
    rows = OutboundDelivery.objects.filter(
        social_account=account,
        recipient=update.recipient_id,
        sent_at__isnull=False,
        sent_at__lte=update.watermark,
    )
    at = Value(update.occurred_at)
    fields: dict[str, Any] = {"delivered_at": Coalesce(F("delivered_at"), at), "updated_at": timezone.now()}
    if target == DeliveryStatus.READ:
        fields["read_at"] = Coalesce(F("read_at"), at)
    moved = rows.filter(status__in=lower).update(status=target, **fields)
    if moved:
        return moved
    # Nothing left to move: a repeated report still counts as matched when it found its messages.
    return int(rows.filter(status__in=[target, DeliveryStatus.READ]).exists())


def _enqueue_media(inbound_id: int, key: str) -> None:
    """Download once the processing transaction has committed (the interaction must be visible).
    With the broker down the entry stays pending for ``sweep_social_media``."""
    from care.connectors.social.tasks import social_media_fetch

    transaction.on_commit(lambda: social_media_fetch.delay(inbound_id, key), robust=True)


def _listed(items: list[str], value: str) -> None:
    if len(items) < MAX_LISTED:
        items.append(value)


def _jsonable(value: Any) -> Any:
    """``InboundSocialMessage.data`` as JSON (times as ISO strings, tuples as lists)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
