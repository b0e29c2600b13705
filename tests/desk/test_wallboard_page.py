"""The wallboard page: who may see which tenant's board, the figures it shows, its live streams, and
its query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.accounts.models import Presence, Role
from care.accounts.services import agent_set_presence
from care.desk.wallboard_page import share_text, wait_text
from care.routing.models import QueuedItem, RoutingQueue, RoutingStep
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

URL = "/desk/wallboard/"


@pytest.fixture
def queue_a(tenant_a):
    queue = RoutingQueue.objects.create(tenant=tenant_a, name="ENN first line", languages=["de"])
    RoutingStep.objects.create(queue=queue, after_seconds=0)
    return queue


def waiting_tickets(tenant, count, *, minutes_ago=7):
    tickets = [make_ticket(tenant=tenant, subject=f"wait {n}") for n in range(count)]
    QueuedItem.objects.filter(tenant=tenant).update(
        enqueued_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )
    return tickets


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_portal_user_gets_403(client, portal_user):
    client.force_login(portal_user)
    assert client.get(URL, {"tenant": "ENN"}).status_code == 403


def test_agent_gets_403_with_a_clear_message(client, agent, tenant_a):
    client.force_login(agent.user)
    response = client.get(URL, {"tenant": tenant_a.code})
    assert response.status_code == 403
    assert "This page is for supervisors and administrators." in response.text
    assert "board" not in response.context


def test_another_tenants_code_is_404_like_an_unknown_one(client, supervisor, tenant_a, tenant_b):
    client.force_login(supervisor.user)
    assert client.get(URL, {"tenant": tenant_b.code}).status_code == 404
    assert client.get(URL, {"tenant": "NOPE"}).status_code == 404
    assert client.get(URL, {"tenant": "'; select 1 --"}).status_code == 404
    response = client.get(URL, {"tenant": tenant_a.code.lower()})
    assert response.status_code == 200
    assert "Telco Sur" not in response.text


def test_a_supervisor_of_one_tenant_sees_its_board_at_once(client, supervisor, agent, tenant_a, queue_a):
    waiting_tickets(tenant_a, 3)
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    client.force_login(supervisor.user)
    response = client.get(URL)
    assert response.status_code == 200
    board = response.context["board"]
    assert board["tenant"]["code"] == "ENN"
    assert board["waiting"] == 3
    assert board["agents"] == {"available": 1, "busy": 0, "away": 0, "on_call": 0}
    assert response.context["longest_wait"].startswith("7:0")
    text = response.text
    for label in ("Waiting", "Longest wait", "Agents available", "Agents busy", "SLA breaches today"):
        assert label in text
    assert 'data-figure="waiting" aria-labelledby="wb-l-waiting">3<' in text
    assert "ENN first line" in text
    config = response.context["live_config"]
    assert (config["wallboard"], config["tenant"]) == (f"wallboard:{tenant_a.pk}", f"tenant:{tenant_a.pk}")


def test_a_supervisor_of_several_tenants_picks_one(client, tenant_a, tenant_b):
    boss = make_agent(tenants=[tenant_a, tenant_b], email="boss@care.test", role=Role.SUPERVISOR)
    client.force_login(boss.user)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["tenant"] is None
    assert "Choose the client whose wallboard to show." in response.text
    assert [t.code for t in response.context["tenants"]] == ["ENN", "TSU"]
    response = client.get(URL, {"tenant": "TSU"})
    assert response.context["board"]["tenant"]["code"] == "TSU"


def test_admin_sees_any_tenant(client, admin_user, tenant_a, tenant_b):
    client.force_login(admin_user)
    assert client.get(URL, {"tenant": "TSU"}).status_code == 200


def test_figures_in_words():
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    assert wait_text(None, now) == "–"
    assert wait_text("2026-11-27T11:58:05+00:00", now) == "1:55"
    assert wait_text("2026-11-27T10:00:00+00:00", now) == "2:00:00"
    assert wait_text("2026-11-27T12:00:05+00:00", now) == "0:00"  # clocks a little apart
    assert share_text(None) == "–"
    assert share_text(0.9234) == "92 %"


@pytest.mark.parametrize(("who", "queries"), [("supervisor", 9), ("admin", 8)])
def test_queries_do_not_grow_with_the_items(
    client, supervisor, admin_user, agent, tenant_a, queue_a, django_assert_num_queries, who, queries
):
    user = supervisor.user if who == "supervisor" else admin_user
    waiting_tickets(tenant_a, 1)
    client.force_login(user)
    with django_assert_num_queries(queries):
        response = client.get(URL, {"tenant": "ENN"})
    assert response.context["board"]["waiting"] == 1
    waiting_tickets(tenant_a, 29)
    for n in range(10):
        agent_set_presence(
            agent=make_agent(tenants=[tenant_a], email=f"a{n}@care.test"), presence=Presence.ONLINE
        )
    with django_assert_num_queries(queries):
        response = client.get(URL, {"tenant": "ENN"})
    assert response.context["board"]["waiting"] == 30
