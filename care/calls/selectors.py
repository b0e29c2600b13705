"""Reads of the phone channel, scoped to what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from care.calls.models import Call
from care.tickets.models import Ticket


def access_call(user: Any, pk: int) -> Call:
    """The call ``pk`` if ``user`` may see its tenant; 404 otherwise (as if it did not exist)."""
    call = (
        Call.objects.visible_to(user)
        .select_related(
            "tenant", "line", "agent__user", "customer", "ticket", "reason", "outcome_code", "campaign"
        )
        .filter(pk=pk)
        .first()
    )
    if call is None:
        raise Http404
    return call


def calls_of_ticket(ticket: Ticket) -> QuerySet[Call]:
    """The calls recorded on ``ticket``, oldest first (the caller has checked access to the ticket)."""
    return (
        Call.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
        .select_related("agent__user", "reason", "outcome_code")
        .order_by("offered_at", "pk")
    )
