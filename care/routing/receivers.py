"""What routing does when tickets change or agents come and go (signals of lower apps).

Receivers run inside the sender's transaction, so a ticket and its queue entry change together; they
touch queued items only with ``SKIP LOCKED`` (see services) and schedule routing after the commit.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from care.accounts.models import Presence
from care.accounts.signals import agent_presence_changed
from care.routing.services import (
    _after_commit,
    agent_released,
    assignment_logged_elsewhere,
    return_unstarted_work,
    routing_dequeue,
    routing_enqueue,
    routing_refresh,
)
from care.tickets.models import TicketEvent
from care.tickets.signals import ticket_changed
from care.tickets.status import ACTIONABLE

_QUEUE_FIELDS = {"priority", "language", "tags", "sla_due_at"}


@receiver(ticket_changed, dispatch_uid="routing_follow_ticket")
def follow_ticket(sender: Any, *, ticket: Any, event: TicketEvent, **_: Any) -> None:
    changes = event.changes or {}
    if event.kind == TicketEvent.Kind.CREATED:
        routing_enqueue(ticket=ticket)
    elif event.kind == TicketEvent.Kind.STATUS:
        before, after = changes.get("status", [None, None])
        if after in ACTIONABLE:
            routing_enqueue(ticket=ticket)
        else:
            routing_dequeue(ticket=ticket)
            if ticket.assignee_id is not None and before in ACTIONABLE:
                agent_released(agent_id=ticket.assignee_id)
    elif event.kind == TicketEvent.Kind.ASSIGNED:
        before, after = changes.get("assignee", [None, None])
        if after is None:
            routing_enqueue(ticket=ticket)
        else:
            routing_dequeue(ticket=ticket)
        if before is not None:
            agent_released(agent_id=before)
        assignment_logged_elsewhere(ticket=ticket, event=event)
    elif event.kind == TicketEvent.Kind.UPDATED and _QUEUE_FIELDS & set(changes):
        routing_refresh(ticket=ticket)


@receiver(agent_presence_changed, dispatch_uid="routing_follow_presence")
def follow_presence(sender: Any, *, agent: Any, presence: str, **_: Any) -> None:
    if presence == Presence.OFFLINE:
        return_unstarted_work(agent=agent)
    elif presence == Presence.ONLINE:
        _after_commit("route_for_agent", agent.pk)
