"""Reads of tickets, always through the user's tenant scope."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import Case, Count, F, Prefetch, Q, QuerySet, Value, When, Window
from django.http import Http404

from care.tenants.models import Guideline, Tenant
from care.tickets.models import Interaction, Ticket, TicketEvent
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


# --- the ticket page's panels (issue 9) ------------------------------------------------------------


def ticket_events(*, ticket: Ticket, after_id: int | None = None) -> QuerySet[TicketEvent]:
    """The ticket's audit trail as the timeline shows it: every change but the creation (the first
    message says that), oldest first, with the actor. One query; ``after_id`` for the newer ones."""
    events = (
        TicketEvent.objects.filter(ticket=ticket)
        .exclude(kind=TicketEvent.Kind.CREATED)
        .select_related("actor")
        .order_by("created_at", "id")
    )
    if after_id is not None:
        events = events.filter(pk__gt=after_id)
    return events


def customer_other_tickets(*, ticket: Ticket, limit: int = 10) -> tuple[list[Ticket], int]:
    """The customer's other tickets of the ticket's tenant, newest first (at most ``limit``), and how
    many there are in all. One query: the total is a window count over the same rows."""
    rows: list[Any] = list(
        Ticket.objects.filter(tenant_id=ticket.tenant_id, customer_id=ticket.customer_id)
        .exclude(pk=ticket.pk)
        .annotate(total=Window(Count("id")))
        .only("id", "tenant_id", "number", "subject", "status", "channel", "created_at")
        .order_by("-created_at", "-id")[:limit]
    )
    for row in rows:
        row.tenant = ticket.tenant  # the same tenant: its reference needs no query
    return rows, (int(rows[0].total) if rows else 0)


def ticket_guidelines(*, ticket: Ticket) -> list[Guideline]:
    """The tenant's guidelines for agents that apply to the ticket's language: those for its language
    and those for all languages (blank), greetings first, then by position. Where a guideline of the
    same kind and title exists for the ticket's language, it replaces the all-languages one. One query."""
    rows = list(
        Guideline.objects.filter(tenant_id=ticket.tenant_id)
        .filter(Q(language="") | Q(language=ticket.language))
        .annotate(greeting_first=Case(When(kind=Guideline.Kind.GREETING, then=Value(0)), default=Value(1)))
        .order_by("greeting_first", "position", "title", "id")
    )
    specific = {(row.kind, row.title.casefold()) for row in rows if row.language}
    return [row for row in rows if row.language or (row.kind, row.title.casefold()) not in specific]
