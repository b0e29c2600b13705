"""Reading macros: the ones an agent may insert on a ticket, and one of them rendered."""

from __future__ import annotations

from django.db.models import Q

from care.accounts.models import User
from care.macros.models import Macro
from care.macros.placeholders import Values, render
from care.tickets.models import Ticket

# More macros than this for one tenant and language is a library, not a picker; the rest are cut.
MAX_MACROS = 500


def macros_for_ticket(*, ticket: Ticket) -> list[Macro]:
    """The active macros of the ticket's tenant in its language or for every language, by position
    then title; one query. Never another tenant's: the tenant is the ticket's."""
    return list(
        Macro.objects.filter(tenant_id=ticket.tenant_id, is_active=True)
        .filter(Q(language="") | Q(language=ticket.language))
        .order_by("position", "title", "pk")[:MAX_MACROS]
    )


def macro_for_ticket(*, ticket: Ticket, macro_id: int) -> Macro | None:
    """One macro the agent may insert on ``ticket`` (same tenant, active, fitting language), or None."""
    return (
        Macro.objects.filter(tenant_id=ticket.tenant_id, is_active=True, pk=macro_id)
        .filter(Q(language="") | Q(language=ticket.language))
        .first()
    )


def macro_text(*, macro: Macro, ticket: Ticket, agent: User | None) -> str:
    """The macro's text with the placeholders filled in for ``ticket`` (tenant and customer loaded)."""
    return render(macro.body, Values(ticket=ticket, agent=agent))
