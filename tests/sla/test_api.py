"""The SLA REST API: a ticket's clocks and attainment, their contracts, bad input, tenant isolation and
query counts.

Clocks are real: tickets through ``make_ticket`` (which starts them), replies through
``interaction_add``, breaches through ``sla_fire``. Policies run round the clock.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from care.accounts.models import Role
from care.sla.models import SlaClock, SlaPolicy, Target
from care.sla.services import sla_fire
from care.tickets.models import Direction
from care.tickets.services import interaction_add
from tests.factories.accounts import UserFactory, make_agent
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

ATTAINMENT = "/api/sla/attainment"
MINUTE = dt.timedelta(minutes=1)


def clocks_url(reference) -> str:
    return f"/api/sla/tickets/{reference}"


def client_for(user) -> Client:
    client = Client()
    client.force_login(getattr(user, "user", user))  # agent fixtures are Agent profiles
    return client


def iso(instant: dt.datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


@pytest.fixture
def policies(tenant_a, tenant_b):
    return [
        SlaPolicy.objects.create(
            tenant=tenant,
            name="Standard",
            first_response_minutes=60,
            next_response_minutes=30,
            resolution_minutes=240,
            business_hours=False,
        )
        for tenant in (tenant_a, tenant_b)
    ]


@pytest.fixture
def supervisor_b(tenant_b):
    return make_agent(tenants=[tenant_b], email="sue@care.test", role=Role.SUPERVISOR, languages=(("es", 7),))


@pytest.fixture
def portal_user_b(tenant_b):
    return UserFactory(email="portal@telco-sur.test", role=Role.PORTAL, portal_tenant=tenant_b)


def reply(ticket, at, direction=Direction.OUTBOUND):
    interaction_add(ticket=ticket, channel="email", direction=direction, body_text="…", occurred_at=at)


# --- Anyone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [clocks_url("ENN-1"), f"{ATTAINMENT}?from=2025-05-01&to=2025-05-31"])
def test_anonymous_is_refused(db, path):
    response = Client().get(path)
    assert response.status_code == 403
    assert response.json()["detail"] == "Authentication credentials were not provided."


# --- A ticket's clocks ----------------------------------------------------------------------------


def test_a_tickets_clocks_most_urgent_first(policies, tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    resolution = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
    sla_fire(clock_ids=[first.pk], now=first.warn_at + MINUTE)  # warned, not breached
    before = timezone.now()
    response = client_for(agent).get(clocks_url(ticket.reference))
    after = timezone.now()

    assert response.status_code == 200
    body = response.json()
    assert [(c["target"], c["state"], c["warned"], c["breached"]) for c in body] == [
        ("first_response", "running", True, False),
        ("resolution", "running", False, False),
    ]
    assert body[0]["due_at"] == iso(first.due_at)
    assert body[1]["due_at"] == iso(resolution.due_at)
    # Seconds left are counted when asked: between the two instants around the request.
    for row, clock in zip(body, (first, resolution), strict=True):
        assert (clock.due_at - after).total_seconds() - 1 <= row["seconds_left"]
        assert row["seconds_left"] <= (clock.due_at - before).total_seconds()


def test_met_and_breached_clocks_have_no_seconds_left(policies, tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    sla_fire(clock_ids=[first.pk], now=first.due_at + MINUTE)
    reply(ticket, first.due_at + 2 * MINUTE)  # answered late
    body = client_for(agent).get(clocks_url(ticket.reference.lower())).json()
    assert [(c["target"], c["state"], c["seconds_left"], c["breached"]) for c in body] == [
        ("resolution", "running", body[0]["seconds_left"], False),
        ("first_response", "met", None, True),
    ]
    assert body[0]["seconds_left"] > 0


def test_a_ticket_without_a_policy_has_no_clocks(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    response = client_for(agent).get(clocks_url(ticket.pk))  # the id works as well
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("actor", ["agent", "supervisor", "portal_user", "admin_user"])
def test_whoever_may_see_the_ticket_reads_its_clocks(request, policies, tenant_a, actor):
    ticket = make_ticket(tenant=tenant_a)
    response = client_for(request.getfixturevalue(actor)).get(clocks_url(ticket.reference))
    assert response.status_code == 200
    assert {c["target"] for c in response.json()} == {"first_response", "resolution"}


@pytest.mark.parametrize("actor", ["outsider", "supervisor_b", "portal_user_b"])
def test_tenant_b_cannot_find_tenant_a_clocks(request, policies, tenant_a, actor):
    ticket = make_ticket(tenant=tenant_a)
    client = client_for(request.getfixturevalue(actor))
    for key in (ticket.reference, ticket.pk, "ENN-999", "nonsense"):
        response = client.get(clocks_url(key))
        assert (response.status_code, response.json()) == (404, {"detail": "No such ticket."}), key


@pytest.mark.parametrize(("actor", "queries"), [("agent", 5), ("portal_user", 5), ("admin_user", 4)])
@pytest.mark.parametrize("replies", [1, 8])
def test_clock_queries_do_not_grow_with_clocks(
    request, policies, tenant_a, actor, queries, replies, django_assert_num_queries
):
    """Session, user, the caller's tenants (not for admins), the ticket, its clocks."""
    ticket = make_ticket(tenant=tenant_a)
    reply(ticket, timezone.now())
    for n in range(replies):  # each customer message starts a next-response clock; the answer meets it
        reply(ticket, timezone.now() + n * MINUTE, Direction.INBOUND)
        reply(ticket, timezone.now() + n * MINUTE)
    client = client_for(request.getfixturevalue(actor))
    with django_assert_num_queries(queries):
        response = client.get(clocks_url(ticket.reference))
    assert len(response.json()) == 3  # the last clock of each target


# --- Attainment -----------------------------------------------------------------------------------


def local_today(tenant) -> dt.date:
    return timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date()


def around_today(of, **extra) -> dict[str, str]:
    """From yesterday to tomorrow in the time zone of tenant ``of``, so that a test run at midnight
    still counts today's clocks."""
    today = local_today(of)
    return {"from": str(today - dt.timedelta(days=1)), "to": str(today + dt.timedelta(days=1)), **extra}


@pytest.fixture
def decided(policies, tenant_a, tenant_b):
    """First responses decided in both tenants: A 2 met and 1 breached, B 1 met and 1 breached."""

    def answered(tenant, minutes):
        ticket = make_ticket(tenant=tenant)
        reply(ticket, ticket.created_at + minutes * MINUTE)
        return ticket

    for tenant, in_time, late in ((tenant_a, (5, 50), (61,)), (tenant_b, (30,), (90,))):
        for minutes in in_time + late:
            answered(tenant, minutes)  # an answer after 60 minutes records its breach


A_ROW = {"tenant": "ENN", "target": "first_response", "finished": 3, "met": 2, "breached": 1, "share": 0.6667}
B_ROW = {"tenant": "TSU", "target": "first_response", "finished": 2, "met": 1, "breached": 1, "share": 0.5}


def test_supervisor_sees_attainment_of_their_tenants(supervisor, decided, tenant_a):
    response = client_for(supervisor).get(ATTAINMENT, around_today(tenant_a))
    assert (response.status_code, response.json()) == (200, [A_ROW])


def test_admin_sees_every_tenant_and_may_pick_one(admin_user, decided, tenant_a):
    client = client_for(admin_user)
    assert client.get(ATTAINMENT, around_today(tenant_a)).json() == [A_ROW, B_ROW]
    assert client.get(ATTAINMENT, around_today(tenant_a, tenant="tsu")).json() == [B_ROW]


def test_portal_user_sees_their_own_tenant_only(portal_user, decided, tenant_a):
    client = client_for(portal_user)
    assert client.get(ATTAINMENT, around_today(tenant_a)).json() == [A_ROW]
    assert client.get(ATTAINMENT, around_today(tenant_a, tenant="ENN")).json() == [A_ROW]


@pytest.mark.parametrize("actor", ["supervisor_b", "portal_user_b"])
def test_tenant_b_never_sees_tenant_a(request, decided, tenant_a, actor):
    client = client_for(request.getfixturevalue(actor))
    assert client.get(ATTAINMENT, around_today(tenant_a)).json() == [B_ROW]
    response = client.get(ATTAINMENT, around_today(tenant_a, tenant="ENN"))
    assert (response.status_code, response.json()) == (404, {"detail": "No such tenant."})


def test_an_unknown_tenant_answers_like_a_foreign_one(supervisor, decided, tenant_a):
    response = client_for(supervisor).get(ATTAINMENT, around_today(tenant_a, tenant="XYZ"))
    assert (response.status_code, response.json()) == (404, {"detail": "No such tenant."})


@pytest.mark.parametrize("actor", ["agent", "outsider"])
def test_plain_agents_may_not_see_attainment(request, decided, tenant_a, actor):
    response = client_for(request.getfixturevalue(actor)).get(ATTAINMENT, around_today(tenant_a))
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only supervisors, administrators and the tenant's portal users may see attainment."
    }


def test_days_are_the_tenants_own(admin_user, policies, tenant_a):
    """A ticket opened at 23:30 UTC on 1 May is a 2 May ticket in Berlin (UTC+2)."""
    ticket = make_ticket(tenant=tenant_a)
    reply(ticket, ticket.created_at + 5 * MINUTE)
    late_evening = dt.datetime(2025, 5, 1, 23, 30, tzinfo=dt.UTC)
    SlaClock.objects.filter(ticket=ticket).update(started_at=late_evening)  # by hand: opened back then
    client = client_for(admin_user)
    assert client.get(ATTAINMENT, {"from": "2025-05-01", "to": "2025-05-01"}).json() == []
    [row] = client.get(ATTAINMENT, {"from": "2025-05-02", "to": "2025-05-02"}).json()
    assert (row["tenant"], row["finished"], row["met"]) == ("ENN", 1, 1)


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"to": "2025-05-31"}, {"from": ["This field is required."]}),
        ({"from": "2025-05-01"}, {"to": ["This field is required."]}),
        (
            {"from": "1.5.2025", "to": "2025-05-31"},
            {"from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        (
            {"from": "2025-02-30", "to": "2025-05-31"},
            {"from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        ({"from": "2025-06-01", "to": "2025-05-31"}, {"to": ["The period ends before it starts."]}),
        ({"from": "2024-01-01", "to": "2025-05-31"}, {"to": ["A period is at most 366 days long."]}),
        (
            {"from": "0001-01-01", "to": "0001-01-02"},
            {"from": ["Enter a date between 2000-01-01 and 2999-12-31."]},
        ),
        (
            {"from": "9999-12-30", "to": "9999-12-31"},
            {"from": ["Enter a date between 2000-01-01 and 2999-12-31."]},
        ),
    ],
)
def test_bad_periods_are_400_with_a_message(supervisor, params, errors):
    response = client_for(supervisor).get(ATTAINMENT, params)
    assert (response.status_code, response.json()) == (400, errors)


def test_an_empty_tenant_code_means_every_tenant_of_the_caller(supervisor, decided, tenant_a):
    response = client_for(supervisor).get(ATTAINMENT, around_today(tenant_a, tenant=""))
    assert (response.status_code, response.json()) == (200, [A_ROW])


def test_a_period_of_a_whole_leap_year_is_fine(supervisor):
    response = client_for(supervisor).get(ATTAINMENT, {"from": "2024-01-01", "to": "2024-12-31"})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("more_tenants", [0, 5])
def test_attainment_queries_per_time_zone_not_per_tenant(
    admin_user, decided, tenant_a, more_tenants, django_assert_num_queries
):
    """Session, user, tenants, then one attainment query per time zone (Berlin and Madrid)."""
    for n in range(more_tenants):
        TenantFactory(name=f"Berlin {n}", slug=f"berlin-{n}", code=f"BE{n}", time_zone="Europe/Berlin")
    client = client_for(admin_user)
    with django_assert_num_queries(5):
        response = client.get(ATTAINMENT, around_today(tenant_a))
    assert response.json() == [A_ROW, B_ROW]


def test_supervisor_attainment_costs_one_more_query(supervisor, decided, tenant_a, django_assert_num_queries):
    """Session, user, the supervisor's tenants, tenants, one attainment query."""
    client = client_for(supervisor)
    with django_assert_num_queries(5):
        client.get(ATTAINMENT, around_today(tenant_a))
