"""The SLA engine's part of the live layer (docs/realtime.md): ``sla.warning`` and ``sla.breach``.

Published when ``sla_event_recorded`` is sent (once per event, after its actions, inside the task's
transaction), so a warning or breach reaches the clients after its commit and only once.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from care.realtime import streams
from care.realtime.publish import publish_on_commit
from care.realtime.schema import timestamp
from care.sla.models import SlaEvent
from care.sla.signals import sla_event_recorded
from care.tickets.live import ticket_ref

EVENT_TYPES = {SlaEvent.Kind.WARNING: "sla.warning", SlaEvent.Kind.BREACH: "sla.breach"}


def publish_sla_event(event: SlaEvent) -> None:
    """To the ticket's stream, its assignee's and its tenant's. Needs ``event.ticket`` with its tenant
    loaded (``sla_event_apply_actions`` selects them): no query."""
    ticket = event.ticket
    names = [streams.ticket_stream(ticket.pk), streams.tenant_stream(event.tenant_id)]
    if ticket.assignee_id is not None:
        names.append(streams.agent_stream(ticket.assignee_id))
    publish_on_commit(
        event_type=EVENT_TYPES[SlaEvent.Kind(event.kind)],
        tenant_id=event.tenant_id,
        data={"ticket": ticket_ref(ticket), "target": str(event.target), "due_at": timestamp(event.due_at)},
        streams=names,
    )


@receiver(sla_event_recorded, dispatch_uid="sla_live_events")
def on_sla_event_recorded(sender: Any, *, event: SlaEvent, **_: Any) -> None:
    publish_sla_event(event)
