"""What the SLA engine does when tickets change (signals of the tickets app), inside their transaction."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from care.sla import services
from care.tickets.models import TicketEvent
from care.tickets.signals import interaction_added, ticket_changed


@receiver(ticket_changed, dispatch_uid="sla_follow_ticket")
def follow_ticket(sender: Any, *, ticket: Any, event: TicketEvent, **_: Any) -> None:
    changes = event.changes or {}
    if event.kind == TicketEvent.Kind.CREATED:
        services.sla_ticket_created(ticket=ticket)
    elif event.kind == TicketEvent.Kind.STATUS:
        before, after = changes.get("status", [None, None])
        services.sla_status_changed(ticket=ticket, before=before, after=after, at=event.created_at)
    elif event.kind == TicketEvent.Kind.UPDATED and "priority" in changes:
        services.sla_priority_changed(ticket=ticket, at=event.created_at)


@receiver(interaction_added, dispatch_uid="sla_follow_interactions")
def follow_interactions(
    sender: Any, *, interaction: Any, ticket: Any, counts_as_response: bool, **_: Any
) -> None:
    services.sla_interaction_added(
        ticket=ticket, interaction=interaction, counts_as_response=counts_as_response
    )
