"""GET /api/reporting/wallboard/<tenant code>: the wallboard now, for supervisors and administrators
of the tenant; everyone else is refused, and another company's code is answered like an unknown one."""

from __future__ import annotations

import pytest
from django.test import Client

from care.accounts.models import Presence, Role
from care.accounts.services import agent_set_presence
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(getattr(user, "user", user))  # agent fixtures are Agent profiles
    return client


def url(code: str) -> str:
    return f"/api/reporting/wallboard/{code}"


@pytest.fixture
def busy_day(tenant_a, tenant_b, agent, outsider):
    make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_b)
    make_ticket(tenant=tenant_b)
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    agent_set_presence(agent=outsider, presence=Presence.AWAY)


def test_a_supervisor_sees_the_board_of_their_tenant(busy_day, supervisor, tenant_a):
    response = client_for(supervisor).get(url("enn"))  # codes are matched case-insensitively
    assert response.status_code == 200
    board = response.json()
    assert board["tenant"] == {
        "id": tenant_a.pk,
        "code": "ENN",
        "name": "Energie Nord",
        "colour": tenant_a.colour,
    }
    assert (board["waiting"], board["agents"]) == (1, {"available": 1, "busy": 0, "away": 0, "on_call": 0})
    assert set(board) == {
        "tenant",
        "waiting",
        "oldest_waiting_since",
        "agents",
        "service_level_today",
        "sla_breaches_today",
        "computed_at",
    }


def test_another_companys_board_is_answered_like_an_unknown_one(busy_day, supervisor, tenant_b):
    client = client_for(supervisor)
    theirs, unknown = client.get(url("TSU")), client.get(url("NOPE"))
    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert theirs.json() == unknown.json()


def test_an_inactive_tenant_has_no_board(supervisor, tenant_a):
    tenant_a.is_active = False
    tenant_a.save(update_fields=["is_active"])
    assert client_for(supervisor).get(url("ENN")).status_code == 404


def test_an_administrator_sees_every_board(busy_day, admin_user):
    client = client_for(admin_user)
    assert [client.get(url(code)).json()["waiting"] for code in ("ENN", "TSU")] == [1, 2]


@pytest.mark.parametrize("who", ["agent", "outsider", "portal_user"])
def test_agents_and_portal_users_are_refused(busy_day, request, who):
    assert client_for(request.getfixturevalue(who)).get(url("ENN")).status_code == 403


def test_anonymous_callers_are_refused(busy_day):
    assert Client().get(url("ENN")).status_code == 403


def test_a_supervisor_of_the_other_tenant_sees_only_theirs(busy_day, tenant_b):
    theirs = make_agent(tenants=[tenant_b], email="sue@care.test", role=Role.SUPERVISOR)
    client = client_for(theirs)
    assert client.get(url("ENN")).status_code == 404
    assert client.get(url("TSU")).json()["waiting"] == 2


def test_the_board_costs_a_fixed_number_of_queries(busy_day, supervisor, tenant_a, django_assert_num_queries):
    client = client_for(supervisor)
    for _ in range(3):
        make_ticket(tenant=tenant_a)
    # Session, user, the supervisor's tenants, the tenant, then the board's four figures.
    with django_assert_num_queries(8):
        assert client.get(url("ENN")).json()["waiting"] == 4
