"""Writes on tickets. Every change goes through here so that rules are checked and audited once."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from care.contacts.models import Customer
from care.core.errors import BusinessRuleViolation
from care.tickets import live
from care.tickets.html import sanitise_html
from care.tickets.models import Attachment, Direction, Interaction, Priority, Ticket, TicketEvent, TicketLink
from care.tickets.signals import interaction_added, ticket_changed
from care.tickets.status import Status, check_transition

if TYPE_CHECKING:
    from care.accounts.models import Agent, Team, User
    from care.contacts.models import Identity
    from care.tenants.models import Tenant


def _record(
    ticket: Ticket, actor: User | None, kind: str, changes: dict[str, Any] | None = None
) -> TicketEvent:
    event = TicketEvent.objects.create(
        tenant_id=ticket.tenant_id, ticket=ticket, actor=actor, kind=kind, changes=changes or {}
    )
    ticket_changed.send(sender=Ticket, ticket=ticket, event=event, actor=actor)
    live.publish_ticket_change(ticket=ticket, event=event, actor=actor)
    return event


def _next_ticket_number(tenant_id: int) -> int:
    """Hand out the tenant's next ticket number. One upsert: concurrent creators queue on the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tickets_ticketcounter (tenant_id, last_number) VALUES (%s, 1)
            ON CONFLICT (tenant_id) DO UPDATE SET last_number = tickets_ticketcounter.last_number + 1
            RETURNING last_number
            """,
            [tenant_id],
        )
        row = cursor.fetchone()
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return int(row[0])


def _normalise_tags(tags: Iterable[str]) -> list[str]:
    return sorted({tag.strip().lower() for tag in tags if tag.strip()})


@transaction.atomic
def ticket_create(
    *,
    tenant: Tenant,
    customer: Customer,
    channel: str,
    subject: str,
    language: str = "",
    priority: int = Priority.NORMAL,
    team: Team | None = None,
    tags: Iterable[str] = (),
    actor: User | None = None,
    sla_due_at: dt.datetime | None = None,
) -> Ticket:
    if customer.tenant_id != tenant.pk:
        raise BusinessRuleViolation(_("The customer belongs to another tenant."))
    # Read the merge state from the database, not the caller's object (which may predate a merge),
    # under a row lock: a merge running now either commits first (and we refuse) or waits for this
    # ticket to exist and moves it with the others.
    merged_into_id = (
        Customer.objects.select_for_update(no_key=True)
        .values_list("merged_into_id", flat=True)
        .get(pk=customer.pk)
    )
    if merged_into_id is not None:
        raise BusinessRuleViolation(_("This customer was merged into another one; use that customer."))
    _check_team_serves(team, tenant.pk)
    ticket = Ticket(
        tenant=tenant,
        customer=customer,
        channel=channel,
        subject=subject.strip()[:500] or _("(no subject)"),
        language=language or customer.preferred_language or tenant.default_language,
        priority=priority,
        team=team,
        tags=_normalise_tags(tags),
        sla_due_at=sla_due_at,
    )
    # Foreign keys are objects in hand (checked above); validating them would cost a query each.
    ticket.full_clean(exclude=["number", "tenant", "customer", "team", "assignee"])
    ticket.number = _next_ticket_number(tenant.pk)
    ticket.save()
    _record(ticket, actor, TicketEvent.Kind.CREATED, {"status": [None, ticket.status]})
    return ticket


def _check_team_serves(team: Team | None, tenant_id: int) -> None:
    """Provider teams serve every tenant; an in-house team only its own company."""
    if team is not None and team.tenant_id not in (None, tenant_id):
        raise BusinessRuleViolation(_("That in-house team belongs to another tenant."))


def _lock(ticket: Ticket) -> Ticket:
    # of=("self",): lock the ticket only, not its tenant's row (which every change of every ticket of
    # the tenant would otherwise queue on).
    return Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)


@transaction.atomic
def ticket_change_status(*, ticket: Ticket, status: str, actor: User | None) -> Ticket:
    locked = _lock(ticket)
    if locked.status == status:
        return locked
    check_transition(locked.status, status)
    now = timezone.now()
    before = locked.status
    locked.status = status
    locked.status_changed_at = now
    if status == Status.SOLVED:
        locked.solved_at = now
    elif status == Status.CLOSED:
        locked.closed_at = now
        locked.solved_at = locked.solved_at or now
    elif before == Status.SOLVED:  # reopened
        locked.solved_at = None
    locked.save(update_fields=["status", "status_changed_at", "solved_at", "closed_at", "updated_at"])
    _record(locked, actor, TicketEvent.Kind.STATUS, {"status": [before, status]})
    return locked


@transaction.atomic
def ticket_assign(*, ticket: Ticket, agent: Agent | None, actor: User | None) -> Ticket:
    """Assign to ``agent`` (or unassign with None). The agent must be authorised for the tenant."""
    locked = _lock(ticket)
    if agent is not None and not agent.authorisations.filter(tenant_id=locked.tenant_id).exists():
        raise BusinessRuleViolation(
            _("%(agent)s is not authorised for %(tenant)s.") % {"agent": agent, "tenant": locked.tenant}
        )
    if locked.status == Status.CLOSED:
        raise BusinessRuleViolation(_("A closed ticket cannot be assigned."))
    before = locked.assignee_id
    after = agent.pk if agent else None
    if before == after:
        return locked
    locked.assignee = agent
    fields = ["assignee", "updated_at"]
    opens = agent is not None and locked.status == Status.NEW
    if opens:
        locked.status, locked.status_changed_at = Status.OPEN, timezone.now()
        fields += ["status", "status_changed_at"]
    locked.save(update_fields=fields)
    _record(locked, actor, TicketEvent.Kind.ASSIGNED, {"assignee": [before, after]})
    if opens:
        # The status history must be complete in STATUS events, implicit changes included.
        _record(locked, actor, TicketEvent.Kind.STATUS, {"status": [Status.NEW, Status.OPEN]})
    return locked


_EDITABLE = ("subject", "language", "priority", "team", "tags")


def _attname(name: str) -> str:
    return "team_id" if name == "team" else name


@transaction.atomic
def ticket_update(*, ticket: Ticket, actor: User | None, **fields: Any) -> Ticket:
    """Change plain fields (subject, language, priority, team, tags); records one audit event."""
    unknown = set(fields) - set(_EDITABLE)
    if unknown:
        raise ValueError(f"ticket_update cannot change {sorted(unknown)}; use the dedicated service.")
    locked = _lock(ticket)
    if "tags" in fields:
        fields["tags"] = _normalise_tags(fields["tags"])
    changes: dict[str, list[Any]] = {}
    for name, value in fields.items():
        attname = _attname(name)
        before = getattr(locked, attname)
        setattr(locked, name, value)
        after = getattr(locked, attname)
        if before != after:
            changes[name] = [before, after]
    if not changes:
        return locked
    if "team" in fields:
        _check_team_serves(locked.team, locked.tenant_id)
    locked.full_clean(exclude=["number", "customer", "tenant"])
    locked.save(update_fields=[*changes, "updated_at"])
    _record(locked, actor, TicketEvent.Kind.UPDATED, changes)
    return locked


def _stored_interaction(tenant_id: int, channel: str, external_id: str) -> Interaction | None:
    return Interaction.objects.filter(tenant_id=tenant_id, channel=channel, external_id=external_id).first()


def interaction_add(
    *,
    ticket: Ticket,
    channel: str,
    direction: str,
    body_text: str = "",
    body_html: str = "",
    full_text: str = "",
    author_identity: Identity | None = None,
    author_user: User | None = None,
    external_id: str = "",
    occurred_at: dt.datetime | None = None,
    counts_as_response: bool = True,
) -> tuple[Interaction, bool]:
    """Append to the timeline. Idempotent per tenant on (channel, external_id): a retry returns the
    stored row. The same message sent to two tenants (one mail to both mailboxes) is stored for each.

    Returns (interaction, created).
    """
    if author_identity is not None and author_identity.tenant_id != ticket.tenant_id:
        raise BusinessRuleViolation(_("The customer identity belongs to another tenant."))
    if direction == Direction.NOTE and author_identity is not None:
        raise BusinessRuleViolation(_("Internal notes are written by agents, not customers."))
    if occurred_at is not None and timezone.is_naive(occurred_at):
        raise ValidationError(_("Interaction times must carry a time zone."))
    if external_id:
        existing = _stored_interaction(ticket.tenant_id, channel, external_id)
        if existing is not None:
            return existing, False
    interaction = Interaction(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        channel=channel,
        direction=direction,
        body_text=body_text,
        body_html=sanitise_html(body_html),
        full_text=full_text,
        author_identity=author_identity,
        author_user=author_user,
        external_id=external_id,
        occurred_at=occurred_at or timezone.now(),
    )
    interaction.full_clean(
        exclude=["tenant", "ticket", "author_identity", "author_user"],  # objects in hand: no query each
        validate_unique=False,
        validate_constraints=False,
    )
    try:
        with transaction.atomic():
            interaction.save()
            # An automatic message (an acknowledgement) is outbound but is not a response by a person.
            if direction == Direction.OUTBOUND and counts_as_response and ticket.first_response_at is None:
                Ticket.objects.filter(pk=ticket.pk, first_response_at__isnull=True).update(
                    first_response_at=interaction.occurred_at
                )
    except IntegrityError:
        # A concurrent delivery of the same message won the insert.
        existing = _stored_interaction(ticket.tenant_id, channel, external_id) if external_id else None
        if existing is None:
            raise
        return existing, False
    interaction_added.send(
        sender=Interaction, interaction=interaction, ticket=ticket, counts_as_response=counts_as_response
    )
    live.publish_interaction_added(ticket=ticket, interaction=interaction)
    return interaction, True


def attachment_store(
    *,
    interaction: Interaction,
    filename: str,
    content: bytes,
    content_type: str = "application/octet-stream",
    content_id: str = "",
    is_inline: bool = False,
) -> Attachment:
    """Store a file beside an interaction, addressed by its SHA-256."""
    digest = hashlib.sha256(content).hexdigest()
    attachment = Attachment(
        tenant_id=interaction.tenant_id,
        interaction=interaction,
        filename=filename[:255] or digest,
        content_type=content_type[:255] or "application/octet-stream",
        size=len(content),
        sha256=digest,
        content_id=content_id[:255],
        is_inline=is_inline,
    )
    name = attachment.file.field.generate_filename(attachment, digest)
    if attachment.file.storage.exists(name):
        # Same content, same path: saving again would make the storage invent a suffixed name.
        attachment.file.name = name
    else:
        attachment.file.save(digest, ContentFile(content), save=False)
    attachment.save()
    return attachment


def tickets_move_to_customer(*, source: Customer, target: Customer, actor: User | None) -> int:
    """Re-point the tickets of a merged-away customer to the survivor; one audit event per ticket."""
    moved = list(Ticket.objects.filter(customer=source).select_for_update().order_by("pk"))
    now = timezone.now()
    Ticket.objects.filter(pk__in=[t.pk for t in moved]).update(customer=target, updated_at=now)
    events = TicketEvent.objects.bulk_create(
        TicketEvent(
            tenant_id=t.tenant_id,
            ticket=t,
            actor=actor,
            kind=TicketEvent.Kind.CUSTOMER_MERGED,
            changes={"customer": [source.pk, target.pk]},
        )
        for t in moved
    )
    live.publish_customer_merged(tickets=moved, events=events, actor=actor, updated_at=now)
    return len(moved)


def ticket_link(*, source: Ticket, target: Ticket, kind: str, actor: User | None) -> TicketLink:
    """Link ``source`` to ``target`` (same tenant); idempotent. Recorded on the source's audit trail."""
    if source.tenant_id != target.tenant_id:
        raise BusinessRuleViolation(_("Tickets of different clients cannot be linked."))
    if source.pk == target.pk:
        raise BusinessRuleViolation(_("A ticket cannot be linked to itself."))
    link, created = TicketLink.objects.get_or_create(
        tenant_id=source.tenant_id, source=source, target=target, kind=kind
    )
    if created:
        _record(source, actor, TicketEvent.Kind.LINKED, {"link": [None, {"kind": kind, "ticket": target.pk}]})
    return link


def ticket_unlink(*, source: Ticket, target: Ticket, kind: str, actor: User | None) -> bool:
    """Remove the link ``source → target`` of ``kind``; True if there was one. A merge cannot be
    undone this way (its interactions moved). Recorded on the source's audit trail."""
    if kind == TicketLink.Kind.MERGED:
        raise BusinessRuleViolation(_("A merge cannot be undone by removing its link."))
    deleted, _rows = TicketLink.objects.filter(source=source, target=target, kind=kind).delete()
    if deleted:
        _record(source, actor, TicketEvent.Kind.LINKED, {"link": [{"kind": kind, "ticket": target.pk}, None]})
    return bool(deleted)


def _follows_ticket(relation: Any) -> bool:
    """Whether rows of a higher app that point at a ticket follow it when it is merged away: those
    that name it as "the ticket this belongs to" (nullable, SET NULL: a call, an inbound message's
    record, a social conversation's current ticket) and those that also point at one of its
    interactions (which move), e.g. a mention. History of the ticket itself (SLA clocks and events,
    routing decisions, the queue entry) stays with it."""
    from django.db.models import SET_NULL

    model = relation.related_model
    if model._meta.app_label == Ticket._meta.app_label or relation.one_to_one:
        return False
    if relation.on_delete is SET_NULL:
        return True
    return any(
        getattr(field, "related_model", None) is Interaction
        for field in model._meta.get_fields()
        if field.concrete
    )


def merge_followers() -> list[tuple[type[Any], str]]:
    """(model, field name) of every row outside this app re-pointed by ``ticket_merge`` (see
    ``_follows_ticket``). Read from the model graph, so this app imports none of those apps."""
    from django.db.models import ForeignObjectRel

    followers: list[tuple[type[Any], str]] = []
    for relation in Ticket._meta.get_fields(include_hidden=True):
        if isinstance(relation, ForeignObjectRel) and _follows_ticket(relation):
            followers.append((relation.related_model, relation.field.name))  # type: ignore[arg-type]
    return followers


def _merge_link(source_id: int) -> TicketLink | None:
    return (
        TicketLink.objects.filter(source_id=source_id, kind=TicketLink.Kind.MERGED)
        .select_related("target__tenant")
        .first()
    )


def ticket_merge_check(*, source: Ticket, target: Ticket) -> None:
    """The rules a merge of ``source`` into ``target`` must pass, on the rows as given: one tenant,
    two tickets, neither closed. A confirmation step states them before asking; ``ticket_merge``
    applies them again to the locked rows."""
    if source.tenant_id != target.tenant_id:
        raise BusinessRuleViolation(_("Tickets of different clients cannot be merged."))
    if source.pk == target.pk:
        raise BusinessRuleViolation(_("A ticket cannot be merged into itself."))
    if target.status == Status.CLOSED:
        raise BusinessRuleViolation(
            _("%(ticket)s is closed; a ticket cannot be merged into a closed one.")
            % {"ticket": target.reference}
        )
    if source.status == Status.CLOSED:
        raise BusinessRuleViolation(_("A closed ticket cannot be merged."))


@transaction.atomic
def ticket_merge(*, source: Ticket, target: Ticket, actor: User | None) -> Ticket:
    """Merge ``source`` into ``target`` (one tenant): the source's timeline (interactions, with their
    attachments) moves to the target, rows that point at the source as their current ticket (calls,
    social conversations, inbound records) follow, both audit trails record it, a ``merged`` link
    says where it went and the source is closed (its SLA clocks stop and it leaves the queue through
    the status change's receivers). Both rows are locked in id order, so two merges of the same pair
    in opposite directions cannot deadlock: the second waits and is refused. Repeating a merge that
    is done returns the target and changes nothing.
    """
    if source.tenant_id != target.tenant_id or source.pk == target.pk:
        ticket_merge_check(source=source, target=target)  # refuses before anything is locked
    rows = {
        ticket.pk: ticket
        for ticket in Ticket.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk__in=[source.pk, target.pk])
        .order_by("pk")
    }
    locked_source, locked_target = rows[source.pk], rows[target.pk]
    done = _merge_link(locked_source.pk)
    if done is not None:
        if done.target_id == locked_target.pk:
            return locked_target  # a repeat: already merged
        raise BusinessRuleViolation(
            _("%(ticket)s was already merged into %(other)s.")
            % {"ticket": locked_source.reference, "other": done.target.reference}
        )
    if _merge_link(locked_target.pk) is not None:
        raise BusinessRuleViolation(
            _("%(ticket)s was merged into another ticket; merge into that one.")
            % {"ticket": locked_target.reference}
        )
    ticket_merge_check(source=locked_source, target=locked_target)
    now = timezone.now()
    moved = Interaction.objects.filter(ticket_id=locked_source.pk).update(ticket_id=locked_target.pk)
    for model, field_name in merge_followers():
        model._default_manager.filter(**{f"{field_name}_id": locked_source.pk}).update(
            **{f"{field_name}_id": locked_target.pk}
        )
    TicketLink.objects.create(
        tenant_id=locked_source.tenant_id,
        source=locked_source,
        target=locked_target,
        kind=TicketLink.Kind.MERGED,
    )
    Ticket.objects.filter(pk=locked_target.pk).update(updated_at=now)
    locked_target.updated_at = now
    _record(
        locked_source,
        actor,
        TicketEvent.Kind.MERGED,
        {"merged_into": [None, {"id": locked_target.pk, "reference": locked_target.reference}]},
    )
    _record(
        locked_target,
        actor,
        TicketEvent.Kind.MERGED,
        {
            "merged_from": [None, {"id": locked_source.pk, "reference": locked_source.reference}],
            "interactions": [0, moved],
        },
    )
    ticket_change_status(ticket=locked_source, status=Status.CLOSED, actor=actor)
    return locked_target
