"""SLA attainment, counted by hand: which clocks are decided in a period, which were met in time.

Clocks come from the SLA services: tickets through ``make_ticket`` (which starts their clocks at
creation), replies through ``interaction_add`` with chosen ``occurred_at``, statuses through
``ticket_change_status``, and the timers through ``sla_fire(now=…)``. Policies run round the clock,
so that due times are plain arithmetic. Only the start of a clock is moved by hand (tickets cannot
be created in the past): ``shift_start`` says so where it is used.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.selectors import Attainment, attainment
from care.sla.services import sla_fire
from care.tickets.models import Direction
from care.tickets.services import interaction_add, ticket_change_status
from tests.factories.tickets import make_ticket

MINUTE = dt.timedelta(minutes=1)


def make_policy(tenant, **targets) -> SlaPolicy:
    targets = targets or {
        "first_response_minutes": 60,
        "next_response_minutes": 30,
        "resolution_minutes": 240,
    }
    return SlaPolicy.objects.create(tenant=tenant, name="Standard", business_hours=False, **targets)


@pytest.fixture
def policies(tenant_a, tenant_b):
    return make_policy(tenant_a), make_policy(tenant_b)


def clock(ticket, target=Target.FIRST_RESPONSE) -> SlaClock:
    return SlaClock.objects.filter(ticket=ticket, target=target).order_by("-pk").first()


def reply(ticket, at, direction=Direction.OUTBOUND):
    interaction_add(ticket=ticket, channel="email", direction=direction, body_text="…", occurred_at=at)


def answered_after(tenant, minutes: float):
    """A ticket whose first response came ``minutes`` after it was opened."""
    ticket = make_ticket(tenant=tenant)
    reply(ticket, ticket.created_at + minutes * MINUTE)
    return ticket


def shift_start(ticket, by: dt.timedelta) -> None:
    """By hand: move the ticket's clocks in time, as if it had been opened ``by`` earlier or later."""
    SlaClock.objects.filter(ticket=ticket).update(started_at=ticket.created_at + by)


def period() -> tuple[dt.datetime, dt.datetime]:
    """A period around now: every ticket made by a test falls into it unless it is moved out."""
    now = timezone.now()
    return now - dt.timedelta(days=1), now + dt.timedelta(days=1)


def counted(tenant, target=Target.FIRST_RESPONSE, start=None, end=None) -> tuple[int, int, int, float | None]:
    default_start, default_end = period()
    rows = [
        row
        for row in attainment(tenant_ids=[tenant.pk], start=start or default_start, end=end or default_end)
        if row.target == target
    ]
    if not rows:
        return (0, 0, 0, None)
    [row] = rows
    return (row.finished, row.met, row.breached, row.share)


def test_met_in_time_breached_running_and_outside_the_period(policies, tenant_a, tenant_b):
    # Tenant A: three answered in time (60 minutes allowed), at 10, 30 and 59 minutes.
    for minutes in (10, 30, 59):
        answered_after(tenant_a, minutes)
    # One breached (its timer fired), answered five minutes after it was due: breached, not met.
    late = make_ticket(tenant=tenant_a)
    first = clock(late)
    assert sla_fire(clock_ids=[first.pk], now=first.due_at + MINUTE)["breach"] == 1
    reply(late, first.due_at + 5 * MINUTE)
    assert (clock(late).state, clock(late).breached_at is not None) == (ClockState.MET, True)
    # Two still running, not yet due: not decided, not counted.
    for _ in range(2):
        make_ticket(tenant=tenant_a)
    # Two answered in time, but opened before and after the period: not counted.
    start, end = period()
    shift_start(answered_after(tenant_a, 5), -dt.timedelta(days=40))
    shift_start(answered_after(tenant_a, 5), dt.timedelta(days=40))
    # Tenant B: one answered in time, one breached and still unanswered (decided: breached).
    answered_after(tenant_b, 20)
    unanswered = make_ticket(tenant=tenant_b)
    sla_fire(clock_ids=[clock(unanswered).pk], now=clock(unanswered).due_at + MINUTE)

    assert counted(tenant_a) == (4, 3, 1, 0.75)
    assert counted(tenant_b) == (2, 1, 1, 0.5)
    # Per tenant and target, in one query; nothing about resolution was decided yet.
    rows = attainment(tenant_ids=[tenant_a.pk, tenant_b.pk], start=start, end=end)
    assert rows == [
        Attainment(tenant_id=tenant_a.pk, target=Target.FIRST_RESPONSE, finished=4, met=3, breached=1),
        Attainment(tenant_id=tenant_b.pk, target=Target.FIRST_RESPONSE, finished=2, met=1, breached=1),
    ]
    # Asked for one tenant, the other's clocks are not counted.
    assert attainment(tenant_ids=[tenant_b.pk], start=start, end=end) == rows[1:]


def test_the_period_includes_its_start_and_excludes_its_end(policies, tenant_a):
    at_start, at_end = answered_after(tenant_a, 5), answered_after(tenant_a, 5)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=3)
    end = start + dt.timedelta(days=1)
    SlaClock.objects.filter(ticket=at_start).update(started_at=start)  # by hand: at the very start
    SlaClock.objects.filter(ticket=at_end).update(started_at=end)  # by hand: at the very end
    assert counted(tenant_a, start=start, end=end) == (1, 1, 0, 1.0)
    assert counted(tenant_a, start=end, end=end + dt.timedelta(days=1)) == (1, 1, 0, 1.0)


def test_next_response_clocks_count_once_each(policies, tenant_a):
    """Each customer message after the first response starts a next-response clock (30 minutes)."""
    ticket = answered_after(tenant_a, 10)
    asked = ticket.created_at + 60 * MINUTE
    reply(ticket, asked, Direction.INBOUND)
    reply(ticket, asked + 29 * MINUTE)  # in time
    asked_again = asked + 120 * MINUTE
    reply(ticket, asked_again, Direction.INBOUND)
    reply(ticket, asked_again + 31 * MINUTE)  # late: its breach is recorded when it is met
    asked_once_more = asked + 240 * MINUTE
    reply(ticket, asked_once_more, Direction.INBOUND)  # not answered yet: running, not counted

    assert SlaClock.objects.filter(ticket=ticket, target=Target.NEXT_RESPONSE).count() == 3
    assert counted(tenant_a, Target.NEXT_RESPONSE) == (2, 1, 1, 0.5)
    assert counted(tenant_a, Target.FIRST_RESPONSE) == (1, 1, 0, 1.0)


def test_resolution_met_in_time_late_and_from_a_pause(policies, tenant_a):
    """Resolution within 240 minutes, paused while the ticket waits on the customer."""
    in_time = answered_after(tenant_a, 5)
    ticket_change_status(ticket=in_time, status="solved", actor=None)
    # Solved while pending (the customer's confirmation never came): met from the pause, in time.
    from_pause = answered_after(tenant_a, 5)
    ticket_change_status(ticket=from_pause, status="pending", actor=None)
    ticket_change_status(ticket=from_pause, status="solved", actor=None)
    assert clock(from_pause, Target.RESOLUTION).state == ClockState.MET
    assert clock(from_pause, Target.RESOLUTION).due_at is None
    # Solved after its breach was recorded.
    late = answered_after(tenant_a, 5)
    resolution = clock(late, Target.RESOLUTION)
    sla_fire(clock_ids=[resolution.pk], now=resolution.due_at + MINUTE)
    ticket_change_status(ticket=late, status="solved", actor=None)

    assert counted(tenant_a, Target.RESOLUTION) == (3, 2, 1, pytest.approx(2 / 3))


def test_a_clock_paused_after_it_was_due_counts_as_breached(policies, tenant_a):
    """Its timer had not fired yet when the ticket went pending: the breach is recorded at the pause
    (a paused clock has no due time the timer or the sweep could find later)."""
    ticket = answered_after(tenant_a, 5)
    resolution = clock(ticket, Target.RESOLUTION)
    # By hand: the ticket was opened 250 minutes ago, so the pause (now) is ten minutes overdue.
    opened = timezone.now() - 250 * MINUTE
    SlaClock.objects.filter(pk=resolution.pk).update(
        started_at=opened, resumed_at=opened, due_at=opened + 240 * MINUTE, warn_at=opened + 180 * MINUTE
    )
    ticket_change_status(ticket=ticket, status="pending", actor=None)
    paused = clock(ticket, Target.RESOLUTION)
    assert (paused.state, paused.breached_at is not None) == (ClockState.PAUSED, True)
    assert sorted(SlaEvent.objects.filter(clock=paused).values_list("kind", flat=True)) == [
        "breach",
        "warning",
    ]
    ticket_change_status(ticket=ticket, status="solved", actor=None)

    assert counted(tenant_a, Target.RESOLUTION) == (1, 0, 1, 0.0)


def test_a_clock_stopped_after_it_was_due_counts_as_breached(policies, tenant_a):
    """Solved without an answer after the first response was due, before its timer fired: the
    first-response clock stops, breached."""
    ticket = make_ticket(tenant=tenant_a)
    # By hand: opened 70 minutes ago, so the first response (60 minutes) is ten minutes overdue.
    hour_ago = timezone.now() - 70 * MINUTE
    SlaClock.objects.filter(ticket=ticket, target=Target.FIRST_RESPONSE).update(
        started_at=hour_ago, resumed_at=hour_ago, due_at=hour_ago + 60 * MINUTE, warn_at=hour_ago
    )
    ticket_change_status(ticket=ticket, status="solved", actor=None)
    first = clock(ticket)
    assert (first.state, first.breached_at is not None) == (ClockState.STOPPED, True)
    assert counted(tenant_a) == (1, 0, 1, 0.0)


def test_stopped_clocks_that_never_breached_are_not_counted(policies, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=ticket, status="solved", actor=None)  # no answer needed after all
    assert clock(ticket).state == ClockState.STOPPED
    assert counted(tenant_a) == (0, 0, 0, None)
    assert counted(tenant_a, Target.RESOLUTION) == (1, 1, 0, 1.0)


def test_attainment_is_one_query(policies, tenant_a, tenant_b, django_assert_num_queries):
    for tenant in (tenant_a, tenant_b):
        answered_after(tenant, 5)
    start, end = period()
    with django_assert_num_queries(1):
        rows = attainment(tenant_ids=[tenant_a.pk, tenant_b.pk], start=start, end=end)
    assert [(row.tenant_id, row.finished) for row in rows] == [(tenant_a.pk, 1), (tenant_b.pk, 1)]
