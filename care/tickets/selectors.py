"""Reads of tickets, always through the user's tenant scope."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import F, Prefetch, QuerySet
from django.http import Http404

from care.tickets.models import Interaction, Ticket
from care.tickets.status import ACTIONABLE

_REFERENCE = re.compile(r"^(?P<code>[A-Z][A-Z0-9]{1,9})-(?P<number>\d{1,9})$")

# Most urgent first: the nearest SLA due time, then priority, then the oldest; tickets without a
# running SLA come last. The queue indexes in models.Ticket.Meta follow exactly this order.
QUEUE_ORDER = (F("sla_due_at").asc(nulls_last=True), F("priority").desc(), "created_at", "id")


def ticket_queue(
    *,
    user: Any,
    tenant_ids: Collection[int] | None = None,
    statuses: Sequence[str] = ACTIONABLE,
    limit: int = 50,
) -> list[Ticket]:
    """The first page of a work queue, most urgent first. One query whatever the page size.

    ``tenant_ids`` narrows the user's visible tenants further; it can never widen them.
    """
    queryset = Ticket.objects.visible_to(user).filter(status__in=list(statuses))
    if tenant_ids is not None:
        queryset = queryset.filter(tenant_id__in=list(tenant_ids))
    return list(
        queryset.select_related("tenant", "customer", "assignee__user").order_by(*QUEUE_ORDER)[:limit]
    )


def parse_reference(reference: str) -> tuple[str, int] | None:
    match = _REFERENCE.match(reference.strip().upper())
    if match is None:
        return None
    return match["code"], int(match["number"])


def _is_ascii_number(text: str) -> bool:
    # str.isdigit() alone also accepts "²" (int() then fails) and other scripts' digits.
    return text.isascii() and text.isdigit()


def access_ticket(user: Any, reference: str | int) -> Ticket:
    """The ticket behind an id or a reference like ``ACME-1042``, if ``user`` may see it; else 404."""
    queryset = Ticket.objects.visible_to(user).select_related("tenant", "customer", "assignee__user", "team")
    if isinstance(reference, int) or _is_ascii_number(str(reference)):
        ticket = queryset.filter(pk=int(reference)).first()
    else:
        parsed = parse_reference(str(reference))
        ticket = queryset.filter(tenant__code=parsed[0], number=parsed[1]).first() if parsed else None
    if ticket is None:
        raise Http404("No such ticket.")
    return ticket


def ticket_timeline(*, ticket: Ticket) -> QuerySet[Interaction]:
    """The ticket's interactions in order, with authors and attachments loaded in fixed queries."""
    return (
        Interaction.objects.filter(ticket=ticket)
        .select_related("author_identity", "author_user")
        .prefetch_related(Prefetch("attachments"))
        .order_by("occurred_at", "id")
    )
