"""The live wallboard and queue statistics (docs/realtime.md, "Wallboard"): exact figures for a hand-built
situation, a fixed number of queries, publishing, and at most one refresh a second per tenant."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
import redis

from care.accounts.models import Agent, AgentChannel, Presence
from care.accounts.services import agent_set_presence
from care.realtime import log, streams
from care.realtime.schema import timestamp
from care.reporting.selectors import queue_stats, wallboard
from care.reporting.tasks import refresh_wallboard, refresh_wallboards
from care.routing.models import QueuedItem, RoutingQueue, RoutingStep
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_event_apply_actions, sla_fire
from care.tickets.services import ticket_assign, ticket_change_status
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

# 11:00 in Berlin (tenant A's zone): its day began at 23:00 UTC the day before.
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
BERLIN_MIDNIGHT = dt.datetime(2026, 11, 26, 23, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def agent_with(tenants, *, presence, capacity=8, email=None):
    agent = make_agent(tenants=tenants, channels=("email",), email=email)
    AgentChannel.objects.filter(agent=agent).update(capacity=capacity)
    if presence != Presence.OFFLINE:
        agent_set_presence(agent=agent, presence=presence)
    return Agent.objects.get(pk=agent.pk)


def first_response(ticket, **fields):
    SlaClock.objects.filter(ticket=ticket, target=Target.FIRST_RESPONSE).update(**fields)


@pytest.fixture
def situation(tenant_a, tenant_b):
    """Tenant A at NOW: three waiting items (one offered), five agents who are not offline, SLA clocks
    and events on both sides of the tenant's midnight; tenant B's work, which A must not count."""
    billing = RoutingQueue.objects.create(tenant=tenant_a, name="Billing", position=0, tags=["billing"])
    first_line = RoutingQueue.objects.create(tenant=tenant_a, name="First line", position=1)
    night = RoutingQueue.objects.create(tenant=tenant_a, name="Night", position=2, languages=["fr"])
    RoutingQueue.objects.create(tenant=tenant_a, name="Retired", position=3, is_active=False)
    for queue in (billing, first_line, night):
        RoutingStep.objects.create(queue=queue)
    policy = SlaPolicy.objects.create(
        tenant=tenant_a,
        name="Standard",
        first_response_minutes=60,
        resolution_minutes=480,
        business_hours=False,
    )

    alice = agent_with([tenant_a], presence=Presence.ONLINE, email="alice@care.test")  # free
    bob = agent_with([tenant_a, tenant_b], presence=Presence.ONLINE, capacity=1)  # holds a ticket
    carol = agent_with([tenant_a], presence=Presence.ONLINE, capacity=1)  # holds an offer
    agent_with([tenant_a], presence=Presence.AWAY)
    agent_with([tenant_a], presence=Presence.ON_CALL)
    agent_with([tenant_a], presence=Presence.OFFLINE)
    gone = agent_with([tenant_a], presence=Presence.ONLINE)
    gone.user.is_active = False
    gone.user.save(update_fields=["is_active"])
    agent_with([tenant_b], presence=Presence.ONLINE)  # B's: not on A's board

    waiting_long = make_ticket(tenant=tenant_a, subject="w1")
    waiting_short = make_ticket(tenant=tenant_a, subject="w2")
    offered = make_ticket(tenant=tenant_a, subject="w3", tags=["billing"])
    held = make_ticket(tenant=tenant_a, subject="held")
    ticket_assign(ticket=held, agent=bob, actor=None)
    earlier = make_ticket(tenant=tenant_a, subject="yesterday's")
    ticket_change_status(ticket=earlier, status="solved", actor=None)
    make_ticket(tenant=tenant_b)  # B's waiting item

    QueuedItem.objects.filter(ticket=waiting_long).update(enqueued_at=NOW - 10 * MINUTE)
    QueuedItem.objects.filter(ticket=waiting_short).update(enqueued_at=NOW - 4 * MINUTE)
    QueuedItem.objects.filter(ticket=offered).update(
        enqueued_at=NOW - 7 * MINUTE, state="offered", offered_to=carol, offer_expires_at=NOW + MINUTE
    )

    # First-response clocks that started today: one running (undecided), two met in time, one breached.
    first_response(waiting_long, started_at=NOW - 10 * MINUTE)
    first_response(
        waiting_short,
        started_at=NOW - 4 * MINUTE,
        state=ClockState.MET,
        met_at=NOW - MINUTE,
        elapsed_seconds=180,
    )
    first_response(held, started_at=NOW - 120 * MINUTE, state=ClockState.MET, met_at=NOW, elapsed_seconds=300)
    first_response(
        offered, started_at=BERLIN_MIDNIGHT + 30 * MINUTE, breached_at=BERLIN_MIDNIGHT + 90 * MINUTE
    )
    # Met, but it started before the tenant's midnight (at 22:30 UTC the day before): yesterday's.
    first_response(
        earlier, started_at=BERLIN_MIDNIGHT - 30 * MINUTE, state=ClockState.MET, elapsed_seconds=60
    )

    def sla_event(ticket, kind, at):
        clock = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
        event = SlaEvent.objects.create(
            tenant=ticket.tenant, ticket=ticket, clock=clock, target=clock.target, kind=kind, due_at=at
        )
        SlaEvent.objects.filter(pk=event.pk).update(created_at=at)

    sla_event(offered, SlaEvent.Kind.BREACH, BERLIN_MIDNIGHT + 30 * MINUTE)  # 00:30 in Berlin: today
    sla_event(earlier, SlaEvent.Kind.BREACH, BERLIN_MIDNIGHT - 30 * MINUTE)  # 23:30 in Berlin: yesterday
    sla_event(held, SlaEvent.Kind.WARNING, NOW - MINUTE)  # a warning is not a breach
    return {"billing": billing, "first_line": first_line, "night": night, "alice": alice, "policy": policy}


def test_the_wallboard_counts_exactly_what_the_definitions_say(
    situation, tenant_a, django_assert_num_queries
):
    with django_assert_num_queries(5):  # tenant, waiting items, agents, attainment, breaches
        board = wallboard(tenant_id=tenant_a.pk, now=NOW)
    assert board == {
        "tenant": {"id": tenant_a.pk, "code": "ENN", "name": "Energie Nord", "colour": tenant_a.colour},
        "waiting": 3,
        "oldest_waiting_since": timestamp(NOW - 10 * MINUTE),
        "agents": {"available": 1, "busy": 2, "away": 1, "on_call": 1},
        "service_level_today": 0.6667,
        "sla_breaches_today": 1,
        "computed_at": "2026-11-27T10:00:00+00:00",
    }


def test_the_query_count_does_not_grow_with_the_work(situation, tenant_a, django_assert_num_queries):
    for _ in range(5):
        make_ticket(tenant=tenant_a)
        agent_with([tenant_a], presence=Presence.ONLINE)
    with django_assert_num_queries(5):
        board = wallboard(tenant_id=tenant_a.pk, now=NOW)
    assert (board["waiting"], board["agents"]["available"]) == (8, 6)
    with django_assert_num_queries(2):
        queue_stats(tenant_id=tenant_a.pk)


def test_a_quiet_day_has_no_service_level_yet(tenant_a):
    board = wallboard(tenant_id=tenant_a.pk, now=NOW)
    assert board["service_level_today"] is None
    assert (board["waiting"], board["oldest_waiting_since"], board["sla_breaches_today"]) == (0, None, 0)
    assert board["agents"] == {"available": 0, "busy": 0, "away": 0, "on_call": 0}


def test_queue_stats_per_queue_in_routing_order(situation, tenant_a, django_assert_num_queries):
    with django_assert_num_queries(2):
        stats = queue_stats(tenant_id=tenant_a.pk)
    assert stats == {
        "waiting": 3,
        "oldest_waiting_since": timestamp(NOW - 10 * MINUTE),
        "queues": [
            {
                "id": situation["billing"].pk,
                "name": "Billing",
                "waiting": 1,
                "oldest_waiting_since": timestamp(NOW - 7 * MINUTE),
            },
            {
                "id": situation["first_line"].pk,
                "name": "First line",
                "waiting": 2,
                "oldest_waiting_since": timestamp(NOW - 10 * MINUTE),
            },
            {"id": situation["night"].pk, "name": "Night", "waiting": 0, "oldest_waiting_since": None},
        ],
    }


def test_work_routed_without_a_queue_is_one_last_entry(tenant_b):
    ticket = make_ticket(tenant=tenant_b)  # B has no queues: the default routing
    item = QueuedItem.objects.get(ticket=ticket)
    assert queue_stats(tenant_id=tenant_b.pk) == {
        "waiting": 1,
        "oldest_waiting_since": timestamp(item.enqueued_at),
        "queues": [
            {"id": None, "name": "", "waiting": 1, "oldest_waiting_since": timestamp(item.enqueued_at)}
        ],
    }


# --- Publishing ----------------------------------------------------------------------------------


def test_a_refresh_publishes_the_board_and_the_queue_stats(
    situation, tenant_a, tenant_b, django_assert_num_queries
):
    with django_assert_num_queries(6):  # the tenant, then the five figures
        assert refresh_wallboard(tenant_a.pk) is True
    assert refresh_wallboard(tenant_a.pk) is True

    board_stream, tenant_stream = streams.wallboard_stream(tenant_a.pk), streams.tenant_stream(tenant_a.pk)
    # The wallboard stream keeps only its newest snapshot: subscribing always sends the current board.
    [snapshot] = log.latest(board_stream, 10)
    assert (snapshot["type"], snapshot["seq"], snapshot["tenant"]) == ("wallboard.snapshot", 2, tenant_a.pk)
    expected = wallboard(tenant_id=tenant_a.pk)
    assert {k: v for k, v in snapshot["data"].items() if k != "computed_at"} == {
        k: v for k, v in expected.items() if k != "computed_at"
    }
    stats = [event for event in log.since(tenant_stream, 0).events if event["type"] == "queue.stats"]
    assert [event["data"] for event in stats] == [queue_stats(tenant_id=tenant_a.pk)] * 2
    # Nothing of A on B's streams.
    assert log.since(streams.wallboard_stream(tenant_b.pk), 0).events == []
    assert log.since(streams.tenant_stream(tenant_b.pk), 0).events == []


def test_the_periodic_refresh_covers_every_active_tenant(tenant_a, tenant_b):
    tenant_b.is_active = False
    tenant_b.save(update_fields=["is_active"])
    assert refresh_wallboards() == 1
    assert [e["type"] for e in log.latest(streams.wallboard_stream(tenant_a.pk), 1)] == ["wallboard.snapshot"]
    assert log.latest(streams.wallboard_stream(tenant_b.pk), 1) == []
    assert refresh_wallboard(tenant_b.pk) is False


# --- At most one refresh a second per tenant -----------------------------------------------------


@pytest.fixture
def enqueued(broker):
    """The refresh tasks enqueued so far, as (tenant id, eta) from this test's own broker queue."""
    url, queue = broker
    client = redis.Redis.from_url(url)

    def read() -> list[tuple[int, str]]:
        found = []
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            if message["headers"]["task"] == "care.reporting.tasks.refresh_wallboard":
                args = json.loads(base64.b64decode(message["body"]))[0]
                found.append((args[0], message["headers"]["eta"]))
        return found

    yield read
    client.close()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_changes_in_a_row_enqueue_one_delayed_refresh(tenant_a, tenant_b, enqueued, commit):
    ticket = make_ticket(tenant=tenant_a)
    before = dt.datetime.now(dt.UTC)
    with commit():
        ticket = ticket_change_status(ticket=ticket, status="open", actor=None)
    with commit():
        ticket_change_status(ticket=ticket, status="pending", actor=None)
    with commit():
        make_ticket(tenant=tenant_b)

    refreshes = enqueued()
    assert sorted(tenant_id for tenant_id, _ in refreshes) == [tenant_a.pk, tenant_b.pk]
    for _, eta in refreshes:  # run a second later: after every change it stands in for
        assert dt.datetime.fromisoformat(eta) >= before + dt.timedelta(seconds=1)

    time.sleep(1.1)  # the window closed: the next change is refreshed again
    with commit():
        ticket_change_status(ticket=ticket, status="open", actor=None)
    assert sorted(tenant_id for tenant_id, _ in enqueued()) == [tenant_a.pk, tenant_a.pk, tenant_b.pk]


def test_presence_and_sla_events_refresh_the_boards_they_move(tenant_a, tenant_b, enqueued, commit):
    both = make_agent(tenants=[tenant_a, tenant_b])
    with commit():
        agent_set_presence(agent=both, presence=Presence.ONLINE)
    assert sorted(tenant_id for tenant_id, _ in enqueued()) == [tenant_a.pk, tenant_b.pk]

    time.sleep(1.1)
    SlaPolicy.objects.create(tenant=tenant_b, name="Fast", first_response_minutes=5, business_hours=False)
    ticket = make_ticket(tenant=tenant_b)
    clock = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    sla_fire(clock_ids=[clock.pk], now=clock.due_at + MINUTE)
    with commit():
        sla_event_apply_actions(event_id=SlaEvent.objects.get(ticket=ticket, kind="breach").pk)
    assert sorted(tenant_id for tenant_id, _ in enqueued()) == [tenant_a.pk, tenant_b.pk, tenant_b.pk]


def test_a_rolled_back_change_enqueues_nothing(tenant_a, enqueued, django_capture_on_commit_callbacks):
    from django.db import transaction

    ticket = make_ticket(tenant=tenant_a)

    def change_then_fail():
        with transaction.atomic():
            ticket_change_status(ticket=ticket, status="open", actor=None)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        change_then_fail()
    assert enqueued() == []
