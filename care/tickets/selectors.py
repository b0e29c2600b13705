"""Reads of tickets, always through the user's tenant scope."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.http import Http404

from care.tenants.models import Tenant
from care.tickets.models import Interaction, Ticket
from care.tickets.status import ACTIONABLE, UNRESOLVED

_REFERENCE = re.compile(r"^(?P<code>[A-Z][A-Z0-9]{1,9})-(?P<number>\d{1,9})$")

# Most urgent first: the nearest SLA due time, then priority, then the oldest; tickets without a
# running SLA come last. The queue indexes in models.Ticket.Meta follow exactly this order.
QUEUE_ORDER = (F("sla_due_at").asc(nulls_last=True), F("priority").desc(), "created_at", "id")


# Up to this many tenants, a queue across tenants reads each tenant's first page through its own
# index and merges them (see ticket_queue); beyond it one plain scan is cheaper to plan.
MERGE_TENANTS_MAX = 64


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
    scope = Ticket.objects.visible_to(user).filter(status__in=list(statuses))
    if tenant_ids is not None:
        scope = scope.filter(tenant_id__in=list(tenant_ids))
    queue = scope
    tenants = _queue_tenants(user, tenant_ids)
    if tenants is not None and 1 < len(tenants) <= MERGE_TENANTS_MAX:
        # The queue indexes are ordered within one tenant. Across several, PostgreSQL would read
        # every matching ticket and sort them; instead take each tenant's first page from its index
        # (UNION ALL of small index scans) and order only those. Measured in docs/performance.md.
        pages = [
            scope.filter(tenant_id=tenant_id).order_by(*QUEUE_ORDER).values("id")[:limit]
            for tenant_id in sorted(tenants)
        ]
        queue = scope.filter(pk__in=pages[0].union(*pages[1:], all=True))
    return list(queue.select_related("tenant", "customer", "assignee__user").order_by(*QUEUE_ORDER)[:limit])


def _queue_tenants(user: Any, tenant_ids: Collection[int] | None) -> set[int] | None:
    """The tenants a queue spans when that is known without a query; None for "every tenant"."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "sees_all_tenants", False):
        return set(tenant_ids) if tenant_ids is not None else None
    visible = set(user.visible_tenant_ids())
    return visible & set(tenant_ids) if tenant_ids is not None else visible


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


def open_ticket_counts_by_tenant(*, user: Any) -> list[Tenant]:
    """The tenants ``user`` sees, each with ``waiting`` (new or open) and ``unresolved`` counts.

    One query: the counts are aggregated in PostgreSQL, whatever the number of tenants.
    """
    return list(
        Tenant.objects.visible_to(user)
        .filter(is_active=True)
        .annotate(
            waiting=Count("ticket", filter=Q(ticket__status__in=list(ACTIONABLE))),
            unresolved=Count("ticket", filter=Q(ticket__status__in=list(UNRESOLVED))),
        )
        .order_by("name")
    )
