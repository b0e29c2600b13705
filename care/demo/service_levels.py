"""The demo's service levels: the SLA policies and closing days of the demo tenants, and the replay
of every demo ticket's history through the SLA services, so that clocks, warnings and breaches are
what they would be had the tickets arrived live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _

from care.demo.data import (
    CLOSING_DAYS,
    SLA_POLICIES,
)
from care.routing.models import RoutingQueue
from care.routing.services import routing_refresh
from care.sla import services as sla
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy
from care.tenants.models import Tenant, TenantHoliday
from care.tickets.models import Direction, Interaction, Ticket, TicketEvent
from care.tickets.status import Status


def ensure_service_levels(tenants: dict[str, Tenant], now: dt.datetime) -> list[SlaPolicy]:
    """The policies of ``SLA_POLICIES`` and the closing days of ``CLOSING_DAYS`` (this year's and the
    next), checked by the rules the admin applies (``full_clean``).

    Policies are found by tenant and name, closing days by tenant and date; every run sets them as
    the tables say. Run after the routing configuration: policies escalate to its queues.
    """
    queues = {
        (queue.tenant_id, queue.name): queue
        for queue in RoutingQueue.objects.filter(tenant__in=tenants.values())
    }
    positions: dict[str, int] = {}
    policies = []
    for spec in SLA_POLICIES:
        tenant = tenants[spec.tenant]
        policy = SlaPolicy.objects.filter(tenant=tenant, name=spec.name).first() or SlaPolicy(
            tenant=tenant, name=spec.name
        )
        policy.position = positions[spec.tenant] = positions.get(spec.tenant, -1) + 1
        policy.priority, policy.channel = spec.priority, ""
        policy.first_response_minutes = spec.first_response
        policy.next_response_minutes = spec.next_response
        policy.resolution_minutes = spec.resolution
        policy.business_hours = spec.business_hours
        policy.warning_percent = spec.warning_percent
        policy.raise_priority_on_breach = spec.raise_priority
        policy.escalate_to_queue = queues[tenant.pk, spec.escalate_to] if spec.escalate_to else None
        policy.is_active = True
        policy.full_clean()
        policy.save()
        policies.append(policy)
    for code, month, day, name in CLOSING_DAYS:
        for year in (now.year, now.year + 1):
            date = dt.date(year, month, day)
            closing = TenantHoliday.objects.filter(tenant=tenants[code], date=date).first() or TenantHoliday(
                tenant=tenants[code], date=date
            )
            closing.name = name
            closing.full_clean()
            closing.save()
    return policies


def replay_service_levels(tickets: Sequence[Ticket], now: dt.datetime) -> None:
    """Run the SLA engine over the demo tickets' history, now that it is back-dated.

    The tickets were made through the services at the present and then moved into the past
    (``_backdate``), so clocks the services started while seeding (when the policies existed already,
    on a run that completes the demo) mean nothing: each ticket's clocks and events are deleted, and
    its recorded history is played through the SLA services in order, each step at its recorded
    moment. The creation starts the clocks at ``created_at``; the customer's messages and the agents'
    replies (``occurred_at``) start next-response clocks and meet them; the status changes (audit
    events, back-dated) pause, resume and meet. Before each step that may end or re-plan a running
    clock, and at ``now``, the warnings and breaches that were due fire at their own instants, as the
    clocks' timers would have.

    Their actions (notify, raise the priority, escalate through routing) are not taken: they belong
    to the past, and a month of them at once would reshuffle the demo's work. The events are marked
    done, so neither the tasks queued after the commit nor the sweep act on them.
    Only for demo tickets: every outbound demo message is an agent's reply (counts as a response).
    """
    ids = [ticket.pk for ticket in tickets]
    if not ids:
        return
    SlaEvent.objects.filter(ticket_id__in=ids).delete()
    SlaClock.objects.filter(ticket_id__in=ids).delete()
    history: dict[int, list[tuple[dt.datetime, int, TicketEvent | Interaction]]] = {pk: [] for pk in ids}
    for event in TicketEvent.objects.filter(
        ticket_id__in=ids,
        kind__in=(TicketEvent.Kind.CREATED, TicketEvent.Kind.STATUS, TicketEvent.Kind.UPDATED),
    ).order_by("created_at", "id"):
        rank = 0 if event.kind == TicketEvent.Kind.CREATED else 2
        history[event.ticket_id].append((event.created_at, rank, event))
    for interaction in (
        Interaction.objects.filter(ticket_id__in=ids)
        .exclude(direction=Direction.NOTE)  # notes touch no clock
        .order_by("occurred_at", "id")
    ):
        history[interaction.ticket_id].append((interaction.occurred_at, 1, interaction))
    # The creation first (the opening message shares its moment), then in order of time; stable.
    for ticket in Ticket.objects.filter(pk__in=ids).select_related("tenant").order_by("pk"):
        _replay_ticket(ticket, sorted(history[ticket.pk], key=lambda step: step[:2]), now)
    # The events' moments are when they fired: the clocks' flags.
    for kind, flag in ((SlaEvent.Kind.WARNING, "warned_at"), (SlaEvent.Kind.BREACH, "breached_at")):
        fired = SlaClock.objects.filter(pk=OuterRef("clock_id")).values(flag)[:1]
        SlaEvent.objects.filter(ticket_id__in=ids, kind=kind).update(
            created_at=Subquery(fired),
            updated_at=Subquery(fired),
            actions_done_at=Subquery(fired),
            actions=[_("none: recorded when the demo history was seeded")],
        )


def _replay_ticket(
    ticket: Ticket, steps: list[tuple[dt.datetime, int, TicketEvent | Interaction]], now: dt.datetime
) -> None:
    """One ticket's history through the SLA services; ``ticket`` plays its past state on the way."""
    final = ticket.status, ticket.priority, ticket.first_response_at
    ticket.status, ticket.first_response_at = Status.NEW, None
    ticket.priority = next(
        (
            step.changes["priority"][0]
            for _at, _rank, step in steps
            if isinstance(step, TicketEvent) and "priority" in step.changes
        ),
        ticket.priority,
    )
    for at, _rank, step in steps:
        if (isinstance(step, TicketEvent) and step.kind != TicketEvent.Kind.CREATED) or (
            isinstance(step, Interaction) and step.direction == Direction.OUTBOUND
        ):
            # Before a step that may meet, stop, pause or re-plan running clocks: what they had
            # reached by then is fired first. (A customer's message only starts a clock.)
            _fire_timers(ticket, at)
        if isinstance(step, Interaction):
            sla.sla_interaction_added(ticket=ticket, interaction=step, counts_as_response=True)
            if step.direction == Direction.OUTBOUND and ticket.first_response_at is None:
                ticket.first_response_at = step.occurred_at
        elif step.kind == TicketEvent.Kind.CREATED:  # at ticket.created_at, back-dated like the event
            sla.sla_ticket_created(ticket=ticket)
        elif step.kind == TicketEvent.Kind.STATUS:
            before, ticket.status = step.changes["status"]
            sla.sla_status_changed(ticket=ticket, before=before, after=ticket.status, at=at)
        elif "priority" in step.changes:
            ticket.priority = step.changes["priority"][1]
            sla.sla_priority_changed(ticket=ticket, at=at)
    _fire_timers(ticket, now)
    if ticket.priority != final[1]:
        ticket.priority = final[1]
        routing_refresh(ticket=ticket)  # queues sort on the priority: put the present one back
    ticket.status, ticket.priority, ticket.first_response_at = final


def _fire_timers(ticket: Ticket, until: dt.datetime) -> None:
    """Record the ticket's warnings and breaches due by ``until``, each at its own instant."""
    rows = list(
        SlaClock.objects.filter(ticket=ticket, state=ClockState.RUNNING).values_list(
            "pk", "warn_at", "warned_at", "due_at", "breached_at"
        )
    )
    instants = sorted(
        {
            instant
            for _pk, warn_at, warned_at, due_at, breached_at in rows
            for instant, fired in ((warn_at, warned_at), (due_at, breached_at))
            if instant is not None and fired is None and instant <= until
        }
    )
    for instant in instants:  # firing only flags: the instants of the others stay as they are
        sla.sla_fire(clock_ids=[row[0] for row in rows], now=instant)
