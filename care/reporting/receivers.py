"""What reporting does when lower apps announce a change: refresh the tenant's live wallboard soon.

Receivers run inside the sender's transaction; the refresh is scheduled after its commit and
debounced per tenant (``live.wallboard_refresh_soon``), so they cost no query, except a presence
change (the agent's tenants, read once per change for every receiver).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import receiver

from care.accounts.signals import agent_presence_changed
from care.reporting.live import wallboard_refresh_soon
from care.sla.signals import sla_event_recorded
from care.tickets.models import Direction
from care.tickets.signals import interaction_added, ticket_changed


@receiver(ticket_changed, dispatch_uid="reporting_follow_ticket")
def follow_ticket(sender: Any, *, ticket: Any, **_: Any) -> None:
    wallboard_refresh_soon(ticket.tenant_id)


@receiver(interaction_added, dispatch_uid="reporting_follow_responses")
def follow_responses(sender: Any, *, interaction: Any, counts_as_response: bool, **_: Any) -> None:
    # A reply meets the first-response clock: today's service level moves.
    if interaction.direction == Direction.OUTBOUND and counts_as_response:
        wallboard_refresh_soon(interaction.tenant_id)


@receiver(agent_presence_changed, dispatch_uid="reporting_follow_presence")
def follow_presence(sender: Any, *, tenant_ids: Callable[[], list[int]], **_: Any) -> None:
    for tenant_id in tenant_ids():
        wallboard_refresh_soon(tenant_id)


@receiver(sla_event_recorded, dispatch_uid="reporting_follow_sla_events")
def follow_sla_event(sender: Any, *, event: Any, **_: Any) -> None:
    wallboard_refresh_soon(event.tenant_id)
