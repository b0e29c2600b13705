"""SLA clock rules: start, meet, pause, resume, restore, and the once-only firing of warnings and breaches."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.routing.models import QueuedItem
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_event_apply_actions, sla_fire, sla_sweep
from care.tickets.models import Direction, Priority, Ticket
from care.tickets.services import interaction_add, ticket_change_status, ticket_update
from tests.factories.tickets import make_ticket

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def policy(tenant_a):
    """Round the clock, so that due times are plain arithmetic: 60 min first response, 4 h resolution."""
    return SlaPolicy.objects.create(
        tenant=tenant_a,
        name="Standard",
        position=1,
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=240,
        business_hours=False,
        warning_percent=75,
    )


def clock(ticket, target) -> SlaClock:
    return SlaClock.objects.filter(ticket=ticket, target=target).order_by("-pk").first()


def reply(ticket, direction=Direction.OUTBOUND, at=None):
    return interaction_add(ticket=ticket, channel="email", direction=direction, body_text="…", occurred_at=at)


def test_a_new_ticket_starts_first_response_and_resolution_clocks(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    first, resolution = clock(ticket, Target.FIRST_RESPONSE), clock(ticket, Target.RESOLUTION)
    assert first.due_at == ticket.created_at + 60 * MINUTE
    assert first.warn_at == ticket.created_at + 45 * MINUTE
    assert resolution.due_at == ticket.created_at + 240 * MINUTE
    assert Ticket.objects.get(pk=ticket.pk).sla_due_at == first.due_at
    assert QueuedItem.objects.get(ticket=ticket).sla_due_at == first.due_at  # queues sort on it


def test_without_a_matching_policy_no_clock_runs(policy, tenant_a):
    policy.priority = Priority.URGENT
    policy.save()
    ticket = make_ticket(tenant=tenant_a, priority=Priority.NORMAL)
    assert not SlaClock.objects.filter(ticket=ticket).exists()


def test_an_agent_reply_meets_the_first_response_and_a_customer_reply_starts_next_response(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    reply(ticket, Direction.INBOUND)  # the opening message: no next-response clock
    assert not SlaClock.objects.filter(ticket=ticket, target=Target.NEXT_RESPONSE).exists()
    reply(ticket)
    first = clock(ticket, Target.FIRST_RESPONSE)
    assert first.state == ClockState.MET
    assert Ticket.objects.get(pk=ticket.pk).sla_due_at == clock(ticket, Target.RESOLUTION).due_at
    customer_at = timezone.now()
    reply(ticket, Direction.INBOUND, at=customer_at)
    nxt = clock(ticket, Target.NEXT_RESPONSE)
    assert (nxt.state, nxt.due_at) == (ClockState.RUNNING, customer_at + 30 * MINUTE)
    reply(ticket)
    assert clock(ticket, Target.NEXT_RESPONSE).state == ClockState.MET


def test_an_automatic_acknowledgement_is_not_a_response(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    interaction_add(ticket=ticket, channel="email", direction=Direction.OUTBOUND, counts_as_response=False)
    assert clock(ticket, Target.FIRST_RESPONSE).state == ClockState.RUNNING


def test_pending_pauses_and_the_customer_reply_resumes_with_the_time_used(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    reply(ticket)
    t0 = clock(ticket, Target.RESOLUTION).started_at
    SlaClock.objects.filter(ticket=ticket).update(started_at=t0 - 100 * MINUTE, resumed_at=t0 - 100 * MINUTE)
    ticket_change_status(ticket=ticket, status="pending", actor=None)
    paused = clock(ticket, Target.RESOLUTION)
    assert paused.state == ClockState.PAUSED
    assert paused.due_at is None
    assert paused.elapsed_seconds == pytest.approx(100 * 60, abs=5)
    assert Ticket.objects.get(pk=ticket.pk).sla_due_at is None
    ticket_change_status(ticket=ticket, status="open", actor=None)
    resumed = clock(ticket, Target.RESOLUTION)
    assert resumed.state == ClockState.RUNNING
    assert resumed.due_at == pytest.approx(resumed.resumed_at + 140 * MINUTE, abs=dt.timedelta(seconds=5))


def test_solving_meets_resolution_and_reopening_restores_it(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    reply(ticket)
    ticket_change_status(ticket=ticket, status="solved", actor=None)
    resolution = clock(ticket, Target.RESOLUTION)
    assert resolution.state == ClockState.MET
    ticket_change_status(ticket=ticket, status="open", actor=None)
    restored = clock(ticket, Target.RESOLUTION)
    assert restored.pk == resolution.pk
    assert restored.state == ClockState.RUNNING
    assert restored.met_at is None


def test_a_breach_is_recorded_once_whatever_fires_it(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    first = clock(ticket, Target.FIRST_RESPONSE)
    later = first.due_at + MINUTE
    assert sla_fire(clock_ids=[first.pk], now=later) == {"warning": 1, "breach": 1}
    assert sla_fire(clock_ids=[first.pk], now=later) == {"warning": 0, "breach": 0}
    assert sla_sweep(now=later + MINUTE)["breach"] == 0
    events = SlaEvent.objects.filter(ticket=ticket).order_by("kind")
    assert [(e.kind, e.target) for e in events] == [
        ("breach", "first_response"),
        ("warning", "first_response"),
    ]
    assert clock(ticket, Target.FIRST_RESPONSE).state == ClockState.RUNNING  # runs until met


def test_the_uniqueness_guard_holds_even_if_the_flag_was_lost(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    first = clock(ticket, Target.FIRST_RESPONSE)
    later = first.due_at + MINUTE
    sla_fire(clock_ids=[first.pk], now=later)
    SlaClock.objects.filter(pk=first.pk).update(breached_at=None)  # as if a crash lost the flag
    sla_fire(clock_ids=[first.pk], now=later)
    assert SlaEvent.objects.filter(ticket=ticket, kind="breach").count() == 1


def test_a_late_reply_still_counts_as_a_breach(policy, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    first = clock(ticket, Target.FIRST_RESPONSE)
    reply(ticket, at=first.due_at + MINUTE)
    first.refresh_from_db()
    assert first.state == ClockState.MET
    assert first.breached_at is not None
    assert SlaEvent.objects.filter(clock=first, kind="breach").count() == 1


def test_breach_actions_raise_the_priority_once(policy, tenant_a):
    policy.raise_priority_on_breach = True
    policy.save()
    ticket = make_ticket(tenant=tenant_a, priority=Priority.NORMAL)
    first = clock(ticket, Target.FIRST_RESPONSE)
    sla_fire(clock_ids=[first.pk], now=first.due_at + MINUTE)
    breach = SlaEvent.objects.get(ticket=ticket, kind="breach")
    actions = sla_event_apply_actions(event_id=breach.pk)
    assert sla_event_apply_actions(event_id=breach.pk) == []  # once
    assert Ticket.objects.get(pk=ticket.pk).priority == Priority.HIGH
    assert any("priority" in a for a in actions)


def test_a_priority_change_applies_the_matching_policy_keeping_the_time_used(policy, tenant_a):
    SlaPolicy.objects.create(
        tenant=tenant_a,
        name="Urgent",
        position=0,
        priority=Priority.URGENT,
        first_response_minutes=15,
        resolution_minutes=60,
        business_hours=False,
    )
    ticket = make_ticket(tenant=tenant_a)
    ticket_update(ticket=ticket, actor=None, priority=Priority.URGENT)
    first = clock(ticket, Target.FIRST_RESPONSE)
    assert first.policy.name == "Urgent"
    assert first.due_at == pytest.approx(ticket.created_at + 15 * MINUTE, abs=dt.timedelta(seconds=5))


def test_business_hours_policies_count_only_the_tenants_service_hours(tenant_a):
    from zoneinfo import ZoneInfo

    from care.sla.services import sla_ticket_created
    from care.tenants.models import ServiceHours

    berlin = ZoneInfo("Europe/Berlin")
    for day in range(5):
        ServiceHours.objects.create(tenant=tenant_a, weekday=day, opens_at=dt.time(8), closes_at=dt.time(18))
    SlaPolicy.objects.create(
        tenant=tenant_a, name="Office", first_response_minutes=120, resolution_minutes=600
    )
    ticket = make_ticket(tenant=tenant_a)
    SlaClock.objects.filter(ticket=ticket).delete()
    friday_five_pm = dt.datetime(2026, 11, 27, 17, 0, tzinfo=berlin)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=friday_five_pm)
    ticket.refresh_from_db()
    sla_ticket_created(ticket=ticket)
    # One hour on Friday, the second on Monday from 08:00; resolution: 1 h Friday + 9 h Monday.
    assert clock(ticket, Target.FIRST_RESPONSE).due_at == dt.datetime(2026, 11, 30, 9, 0, tzinfo=berlin)
    assert clock(ticket, Target.FIRST_RESPONSE).warn_at == dt.datetime(2026, 11, 30, 8, 30, tzinfo=berlin)
    assert clock(ticket, Target.RESOLUTION).due_at == dt.datetime(2026, 11, 30, 17, 0, tzinfo=berlin)


def test_only_timers_within_reach_are_sent_and_the_rest_are_armed_later(policy, tenant_a):
    from care.sla.services import ARM_EVERY, ARM_WINDOW, sla_arm_upcoming

    ticket = make_ticket(tenant=tenant_a)
    resolution = clock(ticket, Target.RESOLUTION)  # due in 4 h: beyond the window, not armed yet
    assert resolution.due_at > timezone.now() + ARM_WINDOW
    before_due = resolution.due_at - ARM_WINDOW + ARM_EVERY / 2  # the run whose window reaches it
    assert sla_arm_upcoming(now=before_due) == 1
    assert sla_arm_upcoming(now=before_due - ARM_EVERY) == 0  # the previous run: not yet in reach
