"""Agent presence kept by websocket heartbeats: idle agents go away, silent agents go offline (and
routing takes back their unstarted work), what the automatic rules set they undo, a presence chosen
by hand stays; every change is published as ``agent.presence`` after the commit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from care.accounts.models import Agent, Presence, PresenceSource, TenantAuthorisation
from care.accounts.services import agent_heartbeat, agent_presence_sweep, agent_set_presence
from care.accounts.tasks import presence_sweep
from care.realtime import log
from care.realtime.schema import timestamp
from care.realtime.streams import agent_stream, tenant_stream
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.services import route_item
from care.tickets.models import Ticket
from config.celery import app as celery_app
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

TIMEOUT = dt.timedelta(seconds=90)


@pytest.fixture(autouse=True)
def eager_celery(monkeypatch):
    """Routing's after-commit tasks (route the agent who came online) run here, not in a broker."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def state(agent: Agent) -> tuple[str, str]:
    fresh = Agent.objects.get(pk=agent.pk)
    return fresh.presence, fresh.presence_source


def online(agent: Agent) -> Agent:
    """Online by the agent's choice (the desk's button), then one heartbeat: kept by heartbeats."""
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    agent_heartbeat(agent_id=agent.pk, idle=False)
    return Agent.objects.get(pk=agent.pk)


def later() -> dt.datetime:
    """A moment at which every heartbeat and presence change so far is past the timeout."""
    return timezone.now() + TIMEOUT + dt.timedelta(seconds=1)


def events(stream: str) -> list[dict]:
    """The ``agent.presence`` events logged on ``stream`` (other apps publish there too)."""
    return [dict(event) for event in log.since(stream, 0).events if event["type"] == "agent.presence"]


# --- Heartbeats ------------------------------------------------------------------------------------


def test_heartbeats_keep_an_online_agent_online_without_a_change(agent):
    before = online(agent)
    assert before.heartbeat_at is not None

    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.ONLINE

    after = Agent.objects.get(pk=agent.pk)
    assert (after.presence, after.presence_source) == (Presence.ONLINE, PresenceSource.MANUAL)
    assert after.presence_changed_at == before.presence_changed_at
    assert after.heartbeat_at > before.heartbeat_at
    assert after.last_seen_at == after.heartbeat_at


def test_idle_sets_an_online_agent_away_and_activity_brings_them_back(agent):
    online(agent)

    assert agent_heartbeat(agent_id=agent.pk, idle=True) == Presence.AWAY
    assert state(agent) == (Presence.AWAY, PresenceSource.IDLE)
    away_since = Agent.objects.get(pk=agent.pk).presence_changed_at
    assert agent_heartbeat(agent_id=agent.pk, idle=True) == Presence.AWAY  # still idle: no new change
    assert Agent.objects.get(pk=agent.pk).presence_changed_at == away_since

    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.ONLINE
    assert state(agent) == (Presence.ONLINE, PresenceSource.MANUAL)


@pytest.mark.parametrize("chosen", [Presence.AWAY, Presence.ON_CALL, Presence.OFFLINE])
def test_a_presence_chosen_by_hand_is_never_overridden_by_heartbeats(agent, chosen):
    online(agent)
    agent_set_presence(agent=agent, presence=chosen)
    before = Agent.objects.get(pk=agent.pk)

    for idle in (False, True, False):
        assert agent_heartbeat(agent_id=agent.pk, idle=idle) == chosen

    after = Agent.objects.get(pk=agent.pk)
    assert (after.presence, after.presence_source) == (chosen, PresenceSource.MANUAL)
    # Only the heartbeat is recorded: the presence, its time and the row's own timestamp stay.
    assert (after.presence_changed_at, after.updated_at) == (before.presence_changed_at, before.updated_at)
    assert after.heartbeat_at > before.heartbeat_at


def test_choosing_away_while_idle_makes_it_the_agents_own_choice(agent):
    online(agent)
    agent_heartbeat(agent_id=agent.pk, idle=True)
    away_since = Agent.objects.get(pk=agent.pk).presence_changed_at

    agent_set_presence(agent=agent, presence=Presence.AWAY)  # the desk's "away" button

    assert state(agent) == (Presence.AWAY, PresenceSource.MANUAL)
    assert Agent.objects.get(pk=agent.pk).presence_changed_at == away_since  # the state did not change
    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.AWAY


def test_a_steady_heartbeat_is_one_query(agent, django_assert_num_queries):
    online(agent)
    with django_assert_num_queries(1):
        assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.ONLINE
    agent_set_presence(agent=agent, presence=Presence.OFFLINE)
    with django_assert_num_queries(1):
        assert agent_heartbeat(agent_id=agent.pk, idle=True) == Presence.OFFLINE


def test_a_heartbeat_of_an_agent_that_is_gone_raises(db):
    with pytest.raises(Agent.DoesNotExist):
        agent_heartbeat(agent_id=987654, idle=False)


# --- The sweep -------------------------------------------------------------------------------------


def test_the_sweep_sets_a_silent_agent_offline_and_routing_takes_back_their_unstarted_work(tenant_a, agent):
    online(agent)
    ticket = make_ticket(tenant=tenant_a)
    assert route_item(item_id=ticket.queued_item.pk).agent_id == agent.pk

    assert agent_presence_sweep(now=timezone.now() + dt.timedelta(seconds=30)) == 0  # not silent long enough
    assert agent_presence_sweep(now=later()) == 1

    assert state(agent) == (Presence.OFFLINE, PresenceSource.TIMEOUT)
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    assert QueuedItem.objects.filter(ticket=ticket, state=QueuedItem.State.WAITING).exists()
    returned = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.RETURNED)
    assert (returned.agent_id, returned.reason) == (agent.pk, "the agent went offline")


def test_an_agent_without_heartbeats_is_never_timed_out(agent):
    agent_set_presence(agent=agent, presence=Presence.ONLINE)  # API, admin or demo: no websocket
    assert Agent.objects.get(pk=agent.pk).heartbeat_at is None

    assert agent_presence_sweep(now=timezone.now() + dt.timedelta(days=2)) == 0
    assert state(agent) == (Presence.ONLINE, PresenceSource.MANUAL)


def test_agents_offline_already_are_left_alone(agent):
    online(agent)
    agent_set_presence(agent=agent, presence=Presence.OFFLINE)
    assert agent_presence_sweep(now=later()) == 0
    assert state(agent) == (Presence.OFFLINE, PresenceSource.MANUAL)


def test_choosing_online_before_the_first_heartbeat_of_the_day_is_not_undone_at_once(agent):
    online(agent)
    agent_set_presence(agent=agent, presence=Presence.OFFLINE)
    Agent.objects.filter(pk=agent.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=14))

    agent_set_presence(agent=agent, presence=Presence.ONLINE)  # the heartbeat follows within seconds

    assert agent_presence_sweep() == 0
    assert state(agent) == (Presence.ONLINE, PresenceSource.MANUAL)
    assert agent_presence_sweep(now=later()) == 1  # but it has to come


def test_a_timed_out_agent_comes_back_online_with_the_next_active_heartbeat(agent):
    online(agent)
    agent_presence_sweep(now=later())
    assert state(agent) == (Presence.OFFLINE, PresenceSource.TIMEOUT)

    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.ONLINE
    assert state(agent) == (Presence.ONLINE, PresenceSource.MANUAL)


def test_a_timed_out_agent_whose_connection_is_back_but_idle_is_away_until_active(agent):
    online(agent)
    agent_presence_sweep(now=later())

    assert agent_heartbeat(agent_id=agent.pk, idle=True) == Presence.AWAY
    assert state(agent) == (Presence.AWAY, PresenceSource.IDLE)
    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.ONLINE


def test_sweeping_twice_changes_nothing_more(agent):
    online(agent)
    moment = later()
    assert agent_presence_sweep(now=moment) == 1
    offline_since = Agent.objects.get(pk=agent.pk).presence_changed_at

    assert agent_presence_sweep(now=moment) == 0
    assert agent_presence_sweep(now=moment + TIMEOUT) == 0
    assert Agent.objects.get(pk=agent.pk).presence_changed_at == offline_since


def test_the_task_sweeps(agent):
    online(agent)
    Agent.objects.filter(pk=agent.pk).update(
        heartbeat_at=timezone.now() - 2 * TIMEOUT, presence_changed_at=timezone.now() - 2 * TIMEOUT
    )
    assert presence_sweep.name == "care.accounts.tasks.presence_sweep"
    assert presence_sweep.apply().get() == 1
    assert state(agent) == (Presence.OFFLINE, PresenceSource.TIMEOUT)


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_set_each_agent_offline_once(tenant_a):
    agents = [make_agent(tenants=[tenant_a]) for _ in range(6)]
    for agent in agents:
        online(agent)
    moment = later()
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            counts.append(agent_presence_sweep(now=moment))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(counts) == len(agents)
    assert {state(agent) for agent in agents} == {(Presence.OFFLINE, PresenceSource.TIMEOUT)}
    # One change each: one event per agent on its tenant's stream (published after each commit).
    offline_events = [e for e in events(tenant_stream(tenant_a.pk)) if e["data"]["presence"] == "offline"]
    assert sorted(e["data"]["agent"]["id"] for e in offline_events) == sorted(a.pk for a in agents)


# --- Live events -----------------------------------------------------------------------------------


def test_presence_changes_are_published_to_the_tenant_and_the_agent_after_commit(
    tenant_a, tenant_b, agent, django_capture_on_commit_callbacks
):
    online(agent)  # outside the capture: its events are never published in this test's transaction
    with django_capture_on_commit_callbacks(execute=True):
        agent_heartbeat(agent_id=agent.pk, idle=True)
        assert events(tenant_stream(tenant_a.pk)) == []  # not before the commit

    away = Agent.objects.get(pk=agent.pk)
    expected_data = {
        "agent": {"id": agent.pk, "name": agent.user.full_name},
        "presence": "away",
        "since": timestamp(away.presence_changed_at),
    }
    [on_tenant] = events(tenant_stream(tenant_a.pk))
    [own] = events(agent_stream(agent.pk))
    assert (on_tenant["tenant"], on_tenant["stream"], on_tenant["data"]) == (
        tenant_a.pk,
        tenant_stream(tenant_a.pk),
        expected_data,
    )
    assert (own["tenant"], own["data"], own["id"]) == (
        tenant_a.pk,
        expected_data,
        on_tenant["id"],
    )
    assert events(tenant_stream(tenant_b.pk)) == []  # the agent does not serve tenant B


def test_an_agent_of_several_tenants_is_published_to_each_active_one(
    tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    from tests.factories.tenants import TenantFactory

    closed = TenantFactory(name="Closed", slug="closed", code="CLO", is_active=False)
    unrelated = TenantFactory(name="Unrelated", slug="unrelated", code="UNR")
    both = make_agent(tenants=[tenant_a, tenant_b, closed], email="both@care.test")
    with django_capture_on_commit_callbacks(execute=True):
        agent_set_presence(agent=both, presence=Presence.ONLINE)

    for tenant in (tenant_a, tenant_b):
        [event] = events(tenant_stream(tenant.pk))
        assert (event["tenant"], event["data"]["presence"]) == (tenant.pk, "online")
    assert events(tenant_stream(closed.pk)) == []
    assert events(tenant_stream(unrelated.pk)) == []
    assert len(events(agent_stream(both.pk))) == 1  # once, not once per tenant


def test_an_agent_of_no_tenant_gets_the_event_on_their_own_stream_only(
    db, django_capture_on_commit_callbacks
):
    loner = make_agent(email="loner@care.test")
    with django_capture_on_commit_callbacks(execute=True):
        agent_set_presence(agent=loner, presence=Presence.ONLINE)
    [event] = events(agent_stream(loner.pk))
    assert (event["tenant"], event["data"]["agent"]) == (0, {"id": loner.pk, "name": loner.user.full_name})


def test_a_heartbeat_without_a_change_publishes_nothing(tenant_a, agent, django_capture_on_commit_callbacks):
    online(agent)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        agent_heartbeat(agent_id=agent.pk, idle=False)
    assert callbacks == []


def test_a_presence_change_reads_the_agents_tenants_once_for_all_receivers(
    tenant_a, tenant_b, agent, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # Live publishing and the wallboard refresh both need the agent's tenants: one query between
    # them, after the one UPDATE (the new values are not read back).
    TenantAuthorisation.objects.create(agent=agent, tenant=tenant_b)
    online(agent)
    agent = Agent.objects.select_related("user").get(pk=agent.pk)
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(2):
        agent_set_presence(agent=agent, presence=Presence.AWAY)
    assert (agent.presence, agent.presence_source) == (Presence.AWAY, PresenceSource.MANUAL)
    assert (
        agent.presence_changed_at == agent.last_seen_at == Agent.objects.get(pk=agent.pk).presence_changed_at
    )
    assert [events(tenant_stream(tenant.pk))[-1]["data"]["presence"] for tenant in (tenant_a, tenant_b)] == [
        Presence.AWAY,
        Presence.AWAY,
    ]


# --- Admin -----------------------------------------------------------------------------------------


def test_the_admin_shows_the_heartbeat_and_a_presence_set_there_is_manual(
    client, admin_user, admin_post_data, agent
):
    online(agent)
    agent_heartbeat(agent_id=agent.pk, idle=True)
    client.force_login(admin_user)
    url = reverse("admin:accounts_agent_change", args=[agent.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert {"presence_source", "heartbeat_at"} <= set(page.context["adminform"].readonly_fields)
    assert "Idle (no input)" in page.content.decode()

    response = client.post(url, admin_post_data(page, presence=Presence.OFFLINE))

    assert response.status_code == 302
    assert state(agent) == (Presence.OFFLINE, PresenceSource.MANUAL)
    assert agent_heartbeat(agent_id=agent.pk, idle=False) == Presence.OFFLINE  # not undone by heartbeats
