"""The work queue: most urgent first, scoped, one query whatever the page size or tenant count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.tickets.models import Priority, Ticket
from care.tickets.selectors import QUEUE_ORDER, ticket_queue
from care.tickets.services import ticket_change_status
from tests.factories.accounts import make_agent
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _spread(tenant, count, now):
    """Tickets with a mix of due times (some none), priorities and statuses."""
    tickets = []
    for i in range(count):
        due = None if i % 4 == 0 else now + dt.timedelta(minutes=(i * 37) % 600 - 120)
        ticket = make_ticket(tenant=tenant, subject=f"{tenant.code} {i}", priority=Priority.values[i % 4])
        Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=due)
        if i % 5 == 0:
            ticket_change_status(ticket=ticket, status="pending", actor=None)
        tickets.append(ticket)
    return tickets


def test_queue_orders_by_sla_then_priority_then_age(tenant_a, agent):
    now = timezone.now()
    late = make_ticket(tenant=tenant_a, subject="late", priority=Priority.LOW)
    soon_urgent = make_ticket(tenant=tenant_a, subject="soon urgent", priority=Priority.URGENT)
    soon_low = make_ticket(tenant=tenant_a, subject="soon low", priority=Priority.LOW)
    make_ticket(tenant=tenant_a, subject="no sla", priority=Priority.URGENT)
    Ticket.objects.filter(pk=late.pk).update(sla_due_at=now - dt.timedelta(hours=1))
    Ticket.objects.filter(pk__in=[soon_urgent.pk, soon_low.pk]).update(sla_due_at=now + dt.timedelta(hours=1))

    subjects = [t.subject for t in ticket_queue(user=agent.user)]

    assert subjects == ["late", "soon urgent", "soon low", "no sla"]


def test_queue_across_several_tenants_matches_one_global_sort(tenant_a, tenant_b, django_assert_num_queries):
    tenant_c = TenantFactory(code="KOOP", slug="koop", name="Kooplust")
    now = timezone.now()
    for tenant in (tenant_a, tenant_b, tenant_c):
        _spread(tenant, 25, now)
    pooled = make_agent(tenants=[tenant_a, tenant_b, tenant_c])
    user = pooled.user
    user.visible_tenant_ids()  # a request loads its user and scope once

    expected = list(
        Ticket.objects.filter(status__in=["new", "open"])
        .order_by(*QUEUE_ORDER)
        .values_list("pk", flat=True)[:10]
    )
    with django_assert_num_queries(1):
        queue = ticket_queue(user=user, limit=10)
        assert [t.pk for t in queue] == expected
        assert {t.reference.split("-")[0] for t in queue} <= {"ENN", "TSU", "KOOP"}  # related rows loaded


def test_page_size_does_not_change_the_query_count(tenant_a, agent, django_assert_num_queries):
    _spread(tenant_a, 30, timezone.now())
    agent.user.visible_tenant_ids()
    for limit in (5, 25):
        with django_assert_num_queries(1):
            page = ticket_queue(user=agent.user, limit=limit)
            assert all(t.customer.tenant_id == tenant_a.pk and t.tenant.code for t in page)


def test_tenant_filter_narrows_but_never_widens(tenant_a, tenant_b, agent, outsider):
    mine = make_ticket(tenant=tenant_a)
    theirs = make_ticket(tenant=tenant_b)

    assert ticket_queue(user=agent.user, tenant_ids=[tenant_a.pk, tenant_b.pk]) == [mine]
    assert ticket_queue(user=agent.user, tenant_ids=[tenant_b.pk]) == []
    assert ticket_queue(user=outsider.user) == [theirs]


def test_statuses_select_the_queue(tenant_a, agent):
    waiting = make_ticket(tenant=tenant_a, subject="waiting")
    pending = make_ticket(tenant=tenant_a, subject="pending")
    ticket_change_status(ticket=pending, status="pending", actor=agent.user)

    assert ticket_queue(user=agent.user) == [waiting]
    assert [t.subject for t in ticket_queue(user=agent.user, statuses=["pending"])] == ["pending"]
