"""The tickets app's part of the live layer (docs/realtime.md): the ``ticket:<id>`` stream kind and
the payloads of ticket and interaction events, published after the commit."""

from __future__ import annotations

from care.realtime import streams
from care.tickets.models import Ticket


def ticket_tenant(ticket_id: int) -> int | None:
    """The tenant of a ticket, for authorising ``ticket:<id>`` subscriptions (None: no such ticket)."""
    return Ticket.objects.filter(pk=ticket_id).values_list("tenant_id", flat=True).first()


def register_stream_kind() -> None:
    streams.register_kind(streams.TICKET, tenant_of=ticket_tenant)
