"""Read-only figures of a tenant's service right now: the wallboard and the queue statistics.

Definitions (docs/realtime.md, "Wallboard"):
- waiting: the tenant's queued items (``QueuedItem``), offered ones included: the customer still
  waits until an agent accepts. ``oldest_waiting_since`` is the earliest ``enqueued_at`` (the start of
  the whole wait, not of the current queue).
- agents: the active agents authorised for the tenant, by presence; offline ones are not counted.
  ``on_call`` and ``away`` are those presences; an online agent is ``available`` with spare capacity
  in at least one channel they work (routing's load: actionable tickets assigned plus pending offers,
  of every tenant) and ``busy`` without.
- service_level_today: of the first-response clocks that started today (the tenant's local day) and
  are decided (met, or breached), the share met in time, as in the SLA attainment report; None when
  none is decided yet.
- sla_breaches_today: breaches (every target) recorded since the tenant's local midnight.

Each function costs a fixed number of queries, whatever the number of items, agents or clocks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, IntegerField, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from care.accounts.models import Agent, AgentChannel, Presence
from care.realtime.schema import timestamp
from care.routing.models import QueuedItem, RoutingQueue
from care.sla.models import SlaEvent, Target
from care.sla.selectors import attainment
from care.tenants.models import Tenant
from care.tickets.models import Ticket
from care.tickets.status import ACTIONABLE


def tenant_shape(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.pk, "code": tenant.code, "name": tenant.name, "colour": tenant.colour}


def queue_stats(*, tenant_id: int) -> dict[str, Any]:
    """The ``queue.stats`` data: what waits, in total and per queue. Two queries.

    Queues listed: the tenant's active queues (idle ones with 0) and any inactive queue still holding
    items, in routing order; items routed without a queue (the tenant's default routing) are one last
    entry with ``id`` null and an empty name, present only when there are such items.
    """
    rows = {
        row["queue_id"]: row
        for row in QueuedItem.objects.filter(tenant_id=tenant_id)
        .order_by()
        .values("queue_id")
        .annotate(waiting=Count("pk"), oldest=Min("enqueued_at"))
    }
    queues = RoutingQueue.objects.filter(tenant_id=tenant_id).filter(
        Q(is_active=True) | Q(pk__in=[queue_id for queue_id in rows if queue_id is not None])
    )
    listed: list[dict[str, Any]] = []
    for queue_id, name in queues.order_by("position", "name", "pk").values_list("pk", "name"):
        row = rows.get(queue_id)
        listed.append(_queue_entry(queue_id, name, row))
    if None in rows:
        listed.append(_queue_entry(None, "", rows[None]))
    oldest = [row["oldest"] for row in rows.values()]
    return {
        "waiting": sum(row["waiting"] for row in rows.values()),
        "oldest_waiting_since": timestamp(min(oldest)) if oldest else None,
        "queues": listed,
    }


def _queue_entry(queue_id: int | None, name: str, row: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": queue_id,
        "name": name,
        "waiting": row["waiting"] if row else 0,
        "oldest_waiting_since": timestamp(row["oldest"]) if row else None,
    }


def _count_of(queryset: Any) -> Coalesce:
    """A correlated ``COUNT(*)`` of ``queryset`` as an integer subquery (0 when nothing matches)."""
    counted = queryset.order_by().annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def agent_counts(*, tenant_id: int) -> dict[str, int]:
    """``{"available", "busy", "away", "on_call"}`` of the tenant's agents (see the module). One query."""
    assigned = Ticket.objects.filter(
        assignee=OuterRef(OuterRef("pk")), channel=OuterRef("channel"), status__in=ACTIONABLE
    ).values("assignee")
    offered = QueuedItem.objects.filter(
        offered_to=OuterRef(OuterRef("pk")), channel=OuterRef("channel"), state=QueuedItem.State.OFFERED
    ).values("offered_to")
    spare = Exists(
        AgentChannel.objects.filter(agent=OuterRef("pk"))
        .annotate(load=_count_of(assigned) + _count_of(offered))
        .filter(capacity__gt=F("load"))
    )
    rows = (
        Agent.objects.filter(authorisations__tenant_id=tenant_id, user__is_active=True)
        .exclude(presence=Presence.OFFLINE)
        .annotate(spare=spare)
        .order_by()
        .values_list("presence", "spare")
        .annotate(n=Count("pk"))
    )
    counts = {"available": 0, "busy": 0, "away": 0, "on_call": 0}
    for presence, has_spare, n in rows:
        if presence == Presence.ONLINE:
            counts["available" if has_spare else "busy"] += n
        elif presence in counts:
            counts[presence] += n
    return counts


def local_day(tenant: Tenant, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The tenant's local day around ``now``: [midnight, next midnight), as aware datetimes."""
    zone = ZoneInfo(tenant.time_zone)
    today = now.astimezone(zone).date()
    start = dt.datetime.combine(today, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def _service_level(tenant: Tenant, start: dt.datetime, end: dt.datetime) -> float | None:
    for row in attainment(tenant_ids=[tenant.pk], start=start, end=end):
        if row.target == Target.FIRST_RESPONSE:
            share = row.share
            return round(share, 4) if share is not None else None
    return None


def _board(
    tenant: Tenant, *, now: dt.datetime, waiting: int, oldest_waiting_since: str | None
) -> dict[str, Any]:
    start, end = local_day(tenant, now)
    return {
        "tenant": tenant_shape(tenant),
        "waiting": waiting,
        "oldest_waiting_since": oldest_waiting_since,
        "agents": agent_counts(tenant_id=tenant.pk),
        "service_level_today": _service_level(tenant, start, end),
        "sla_breaches_today": SlaEvent.objects.filter(
            tenant_id=tenant.pk, kind=SlaEvent.Kind.BREACH, created_at__gte=start, created_at__lt=end
        ).count(),
        "computed_at": timestamp(now),
    }


def wallboard(*, tenant_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """The ``wallboard.snapshot`` data of an existing tenant (Tenant.DoesNotExist otherwise). Five
    queries: the tenant, the waiting items, the agents, the first-response attainment, the breaches."""
    return wallboard_of(Tenant.objects.get(pk=tenant_id), now=now)


def wallboard_of(tenant: Tenant, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """``wallboard`` of a tenant in hand: four queries."""
    now = now or timezone.now()
    waiting = QueuedItem.objects.filter(tenant_id=tenant.pk).aggregate(
        n=Count("pk"), oldest=Min("enqueued_at")
    )
    return _board(tenant, now=now, waiting=waiting["n"], oldest_waiting_since=timestamp(waiting["oldest"]))


def live_figures(*, tenant: Tenant, now: dt.datetime | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The wallboard and the queue statistics of a loaded tenant together: five queries (the
    wallboard's totals are the queue statistics' own)."""
    now = now or timezone.now()
    stats = queue_stats(tenant_id=tenant.pk)
    board = _board(
        tenant, now=now, waiting=stats["waiting"], oldest_waiting_since=stats["oldest_waiting_since"]
    )
    return board, stats
