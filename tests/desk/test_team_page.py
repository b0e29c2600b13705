"""The supervisor's team view and reassignment: who may see it, whom it lists (tenant isolation), what
a row shows, moving tickets through routing, refusals, and query counts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from care.accounts.models import Presence, Role, TenantAuthorisation
from care.accounts.services import agent_set_presence
from care.calls.models import Call, CallStatus
from care.core.channels import Channel
from care.routing.models import QueuedItem, RoutingDecision
from care.tickets.models import Ticket
from care.tickets.services import ticket_assign, ticket_change_status
from tests.factories.accounts import TeamFactory, make_agent
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

URL = "/desk/team/"
JSON = {"HTTP_ACCEPT": "application/json"}


def agent_url(agent):
    return f"/desk/team/{agent.pk}/"


def listed(response):
    return [row["agent"].user.email for row in response.context["rows"]]


def row_of(response, agent):
    return next(row for row in response.context["rows"] if row["agent"].pk == agent.pk)


@pytest.fixture
def bob(tenant_a):
    return make_agent(tenants=[tenant_a], email="bob@care.test")


@pytest.fixture
def both(tenant_a, tenant_b):
    """An agent serving both tenants."""
    return make_agent(tenants=[tenant_a, tenant_b], email="betty@care.test")


@pytest.fixture
def boss(tenant_a, tenant_b):
    """A supervisor of both tenants."""
    return make_agent(tenants=[tenant_a, tenant_b], email="boss@care.test", role=Role.SUPERVISOR)


# --- access ----------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client, agent):
    for url in (URL, agent_url(agent)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_portal_user_gets_403(client, portal_user, agent):
    client.force_login(portal_user)
    assert client.get(URL).status_code == 403
    assert client.get(agent_url(agent)).status_code == 403
    assert client.post(agent_url(agent), {"ticket": "1", "to": "queue"}).status_code == 403


def test_agent_gets_403_with_a_clear_message(client, agent, bob, tenant_a):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a), agent=bob, actor=None)
    client.force_login(agent.user)
    response = client.get(URL)
    assert response.status_code == 403
    assert "This page is for supervisors and administrators." in response.text
    assert "bob@care.test" not in response.text
    assert client.get(agent_url(bob)).status_code == 403
    response = client.post(agent_url(bob), {"ticket": str(ticket.pk), "to": str(agent.pk)}, **JSON)
    assert response.status_code == 403
    assert response.json() == {"error": "This page is for supervisors and administrators."}
    ticket.refresh_from_db()
    assert ticket.assignee_id == bob.pk


def test_header_links_only_for_supervisors(client, agent, supervisor):
    client.force_login(agent.user)
    text = client.get("/desk/work/").text
    assert 'href="/desk/team/"' not in text
    assert 'href="/desk/wallboard/"' not in text
    client.force_login(supervisor.user)
    text = client.get("/desk/work/").text
    assert 'href="/desk/team/"' in text
    assert 'href="/desk/wallboard/"' in text


def test_supervisor_sees_only_agents_of_their_tenants(client, supervisor, agent, outsider, both, tenant_b):
    client.force_login(supervisor.user)
    response = client.get(URL)
    assert response.status_code == 200
    assert set(listed(response)) == {"alice@care.test", "sam@care.test", "betty@care.test"}
    assert "oscar@care.test" not in response.text
    # The agent serving both tenants is shown with A only: the supervisor does not see B.
    assert [tenant.code for tenant in row_of(response, both)["tenants"]] == ["ENN"]
    assert "TSU" not in response.text
    assert "Telco Sur" not in response.text
    # Asking for B's agents by filter shows nothing of B.
    response = client.get(URL, {"tenant": str(tenant_b.pk)})
    assert set(listed(response)) == {"alice@care.test", "sam@care.test", "betty@care.test"}
    assert response.context["filters"].notes == ["The client filter was ignored: no such client among yours."]


def test_admin_sees_every_tenants_agents(client, admin_user, agent, outsider, both):
    client.force_login(admin_user)
    response = client.get(URL)
    assert set(listed(response)) == {"alice@care.test", "oscar@care.test", "betty@care.test"}
    assert [tenant.code for tenant in row_of(response, both)["tenants"]] == ["ENN", "TSU"]


def test_deactivated_agents_and_inactive_tenants_are_left_out(client, supervisor, agent, bob, tenant_a):
    bob.user.is_active = False
    bob.user.save(update_fields=["is_active"])
    closed = TenantFactory(name="Closed Co", code="CLO", is_active=False)
    TenantAuthorisation.objects.create(agent=supervisor, tenant=closed)
    TenantAuthorisation.objects.create(agent=agent, tenant=closed)
    client.force_login(supervisor.user)
    response = client.get(URL)
    assert set(listed(response)) == {"alice@care.test", "sam@care.test"}
    assert [tenant.code for tenant in row_of(response, agent)["tenants"]] == ["ENN"]


# --- filters -------------------------------------------------------------------------------------


def test_filters_by_tenant_team_and_presence(client, boss, agent, outsider, tenant_a, tenant_b):
    night = TeamFactory(name="Night shift")
    owl = make_agent(tenants=[tenant_b], email="owl@care.test", team=night)
    agent_set_presence(agent=owl, presence=Presence.ONLINE)
    client.force_login(boss.user)

    assert set(listed(client.get(URL, {"tenant": str(tenant_b.pk)}))) == {
        "boss@care.test",
        "oscar@care.test",
        "owl@care.test",
    }
    assert set(listed(client.get(URL, {"tenant": "ENN"}))) == {"boss@care.test", "alice@care.test"}
    response = client.get(URL, {"team": str(night.pk)})
    assert listed(response) == ["owl@care.test"]
    assert "Night shift" in response.text
    assert listed(client.get(URL, {"presence": "online"})) == ["owl@care.test"]

    response = client.get(URL, {"team": "999999", "presence": "dancing", "tenant": "x'; drop"})
    assert response.status_code == 200
    assert len(response.context["filters"].notes) == 3
    assert len(listed(response)) == 4


# --- what a row shows ------------------------------------------------------------------------------


def test_row_shows_presence_load_open_tickets_languages_and_current_ticket(
    client, supervisor, agent, tenant_a, tenant_b
):
    TenantAuthorisation.objects.create(agent=agent, tenant=tenant_b)
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    later = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Later one"), agent=agent, actor=None)
    urgent = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Burning"), agent=agent, actor=None)
    now = timezone.now()
    Ticket.objects.filter(pk=urgent.pk).update(sla_due_at=now + timezone.timedelta(minutes=5))
    Ticket.objects.filter(pk=later.pk).update(sla_due_at=now + timezone.timedelta(hours=5))
    waiting = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Waiting"), agent=agent, actor=None)
    ticket_change_status(ticket=waiting, status="pending", actor=None)
    # B's work counts in the load (routing's, shared capacity), not in A's supervisor's open tickets.
    ticket_assign(ticket=make_ticket(tenant=tenant_b, subject="Secreto"), agent=agent, actor=None)

    client.force_login(supervisor.user)
    response = client.get(URL)
    row = row_of(response, agent)
    assert row["open"] == 3
    email = next(channel for channel in row["channels"] if channel["channel"] == Channel.EMAIL)
    assert (email["load"], email["capacity"], email["full"]) == (3, 8, False)
    assert row["ticket"].pk == urgent.pk
    assert row["call"] is None
    assert row["languages"] == ["de"]
    text = response.text
    assert "Online" in text
    assert urgent.reference in text
    assert "Burning" in text
    assert "Secreto" not in text
    assert "3/8" in text


def test_live_call_is_the_current_item(client, supervisor, agent, tenant_a, tenant_b):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Email one"), agent=agent, actor=None)
    called = make_ticket(tenant=tenant_a, subject="On the phone", channel=Channel.PHONE)
    Call.objects.create(
        tenant=tenant_a,
        direction="inbound",
        provider="generic",
        external_id="live-1",
        offered_at=timezone.now(),
        status=CallStatus.ANSWERED,
        agent=agent,
        ticket=called,
    )
    Call.objects.create(
        tenant=tenant_a,
        direction="inbound",
        provider="generic",
        external_id="old-1",
        offered_at=timezone.now() - timezone.timedelta(hours=1),
        status=CallStatus.ENDED,
        agent=agent,
    )
    client.force_login(supervisor.user)
    response = client.get(URL)
    row = row_of(response, agent)
    assert row["call"].external_id == "live-1"
    assert row["ticket"].pk == ticket.pk
    assert f'href="/desk/tickets/{called.reference}/"' in response.text
    assert "Call: Answered" in response.text


def test_another_tenants_live_call_is_not_shown(client, supervisor, both, tenant_b):
    Call.objects.create(
        tenant=tenant_b,
        direction="inbound",
        provider="generic",
        external_id="secret-call",
        offered_at=timezone.now(),
        status=CallStatus.ANSWERED,
        agent=both,
        caller="+34600000000",
    )
    client.force_login(supervisor.user)
    response = client.get(URL)
    assert row_of(response, both)["call"] is None
    assert "Call:" not in response.text


def test_live_config_names_the_tenant_streams_the_supervisor_may_see(client, supervisor, tenant_a, tenant_b):
    client.force_login(supervisor.user)
    config = client.get(URL).context["live_config"]
    assert config["streams"] == [f"tenant:{tenant_a.pk}"]
    assert config["text"]["presence"]["on_call"] == "On a call"


@pytest.mark.parametrize(("who", "queries"), [("supervisor", 13), ("admin", 12)])
def test_queries_do_not_grow_with_the_agents(
    client, supervisor, admin_user, tenant_a, django_assert_num_queries, who, queries
):
    user = supervisor.user if who == "supervisor" else admin_user

    def add_agents(count, start):
        for n in range(start, start + count):
            worker = make_agent(
                tenants=[tenant_a], email=f"worker{n}@care.test", team=TeamFactory(name=f"T{n}")
            )
            ticket_assign(ticket=make_ticket(tenant=tenant_a, subject=f"W{n}"), agent=worker, actor=None)
            Call.objects.create(
                tenant=tenant_a,
                direction="inbound",
                provider="generic",
                external_id=f"call-{n}",
                offered_at=timezone.now(),
                status=CallStatus.ANSWERED,
                agent=worker,
            )

    add_agents(1, 0)
    client.force_login(user)
    with django_assert_num_queries(queries):
        response = client.get(URL)
    count = len(response.context["rows"])
    add_agents(29, 1)
    with django_assert_num_queries(queries):
        response = client.get(URL, {"tenant": str(tenant_a.pk), "presence": "offline"})
    assert len(response.context["rows"]) == count + 29


# --- reassignment ------------------------------------------------------------------------------------


def test_agent_page_lists_their_open_tickets_of_my_tenants_only(
    client, supervisor, both, bob, tenant_a, tenant_b
):
    mine = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Zähler"), agent=both, actor=None)
    ticket_assign(ticket=make_ticket(tenant=tenant_b, subject="Secreto"), agent=both, actor=None)
    solved = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Done"), agent=both, actor=None)
    ticket_change_status(ticket=solved, status="solved", actor=None)
    client.force_login(supervisor.user)
    response = client.get(agent_url(both))
    assert response.status_code == 200
    assert [row["ticket"].pk for row in response.context["rows"]] == [mine.pk]
    assert "Secreto" not in response.text
    assert "Done" not in response.text
    targets = [row["agent"].pk for row in response.context["targets"]]
    assert bob.pk in targets
    assert both.pk not in targets


def test_agents_of_other_tenants_and_junk_ids_are_404(client, supervisor, outsider):
    client.force_login(supervisor.user)
    assert client.get(agent_url(outsider)).status_code == 404
    assert client.post(agent_url(outsider), {"ticket": "1", "to": "queue"}).status_code == 404
    assert client.get("/desk/team/99999999999999999999999/").status_code == 404
    assert client.get("/desk/team/abc/").status_code == 404


def test_move_tickets_to_another_agent_through_routing(client, supervisor, agent, bob, tenant_a):
    first = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="One"), agent=agent, actor=None)
    second = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Two"), agent=agent, actor=None)
    client.force_login(supervisor.user)
    response = client.post(
        agent_url(agent),
        {"ticket": [str(first.pk), str(second.pk)], "to": str(bob.pk), "note": "Alice went home"},
        **JSON,
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(body["moved"]) == sorted([first.reference, second.reference])
    assert body["failed"] == []
    assert body["message"] == f"2 tickets moved to {bob}."
    assert set(Ticket.objects.filter(pk__in=[first.pk, second.pk]).values_list("assignee_id", flat=True)) == {
        bob.pk
    }
    decision = RoutingDecision.objects.filter(ticket=first, kind=RoutingDecision.Kind.MANUAL).latest(
        "created_at"
    )
    assert (decision.agent_id, decision.actor_id, decision.reason) == (
        bob.pk,
        supervisor.user_id,
        "Alice went home",
    )


def test_return_tickets_to_the_queue(client, supervisor, agent, tenant_a):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Back"), agent=agent, actor=None)
    client.force_login(supervisor.user)
    response = client.post(agent_url(agent), {"ticket": str(ticket.pk), "to": "queue"}, **JSON)
    assert response.status_code == 200
    assert response.json()["message"] == "1 ticket returned to the queue."
    ticket.refresh_from_db()
    assert ticket.assignee_id is None
    assert QueuedItem.objects.filter(ticket=ticket).exists()
    decision = RoutingDecision.objects.filter(ticket=ticket).latest("created_at")
    assert (decision.kind, decision.agent_id, decision.actor_id) == (
        RoutingDecision.Kind.RETURNED,
        agent.pk,
        supervisor.user_id,
    )


def test_target_not_authorised_for_a_tickets_tenant_is_refused_for_that_ticket(
    client, boss, both, agent, tenant_a, tenant_b
):
    a_ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="A"), agent=both, actor=None)
    b_ticket = ticket_assign(ticket=make_ticket(tenant=tenant_b, subject="B"), agent=both, actor=None)
    client.force_login(boss.user)
    response = client.post(
        agent_url(both), {"ticket": [str(a_ticket.pk), str(b_ticket.pk)], "to": str(agent.pk)}, **JSON
    )
    assert response.status_code == 200
    body = response.json()
    assert body["moved"] == [a_ticket.reference]
    assert body["failed"] == [
        {"reference": b_ticket.reference, "error": f"{agent} is not authorised for Telco Sur."}
    ]
    b_ticket.refresh_from_db()
    assert b_ticket.assignee_id == both.pk

    # Nothing moved at all: a 400 with the reasons.
    response = client.post(agent_url(both), {"ticket": str(b_ticket.pk), "to": str(agent.pk)}, **JSON)
    assert response.status_code == 400
    assert (
        response.json()["error"]
        == f"Not moved: {b_ticket.reference}: {agent} is not authorised for Telco Sur."
    )


def test_refusals_are_messages_not_errors(client, supervisor, agent, bob, outsider, tenant_a, tenant_b):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Mine"), agent=agent, actor=None)
    foreign = ticket_assign(ticket=make_ticket(tenant=tenant_b, subject="Theirs"), agent=outsider, actor=None)
    client.force_login(supervisor.user)
    url = agent_url(agent)
    cases = [
        ({"to": str(bob.pk)}, "Select at least one ticket first."),
        ({"ticket": "abc", "to": str(bob.pk)}, "Ticket IDs must be numbers."),
        ({"ticket": "9" * 40, "to": str(bob.pk)}, "Ticket IDs must be numbers."),
        ({"ticket": str(ticket.pk)}, "Choose the agent to move the tickets to, or return them to the queue."),
        (
            {"ticket": str(ticket.pk), "to": "bob"},
            "Choose the agent to move the tickets to, or return them to the queue.",
        ),
        (
            {"ticket": str(ticket.pk), "to": str(outsider.pk)},
            "That agent cannot be given work of your clients.",
        ),
        ({"ticket": str(ticket.pk), "to": "99999999"}, "That agent cannot be given work of your clients."),
        (
            {"ticket": str(ticket.pk), "to": str(agent.pk)},
            f"The tickets are already {agent}'s: choose another agent.",
        ),
        (
            {"ticket": str(foreign.pk), "to": str(bob.pk)},
            "1 selected ticket was not found among yours and was not moved.",
        ),
        (
            {"ticket": "99999999", "to": "queue"},
            "1 selected ticket was not found among yours and was not moved.",
        ),
    ]
    for data, message in cases:
        response = client.post(url, data, **JSON)
        assert response.status_code == 400, data
        assert response.json()["error"] == message, data
    ticket.refresh_from_db()
    foreign.refresh_from_db()
    assert (ticket.assignee_id, foreign.assignee_id) == (agent.pk, outsider.pk)


def test_a_ticket_moved_meanwhile_is_not_moved_again(client, supervisor, agent, bob, tenant_a):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Raced"), agent=bob, actor=None)
    client.force_login(supervisor.user)
    response = client.post(agent_url(agent), {"ticket": str(ticket.pk), "to": "queue"}, **JSON)
    assert response.status_code == 400
    assert response.json()["failed"] == [
        {"reference": ticket.reference, "error": f"no longer assigned to {agent}"}
    ]
    ticket.refresh_from_db()
    assert ticket.assignee_id == bob.pk


def test_form_post_without_script_redirects_with_messages(client, supervisor, agent, bob, tenant_a):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Plain"), agent=agent, actor=None)
    client.force_login(supervisor.user)
    response = client.post(agent_url(agent), {"ticket": str(ticket.pk), "to": str(bob.pk)})
    assert response.status_code == 303
    assert response["Location"] == agent_url(agent)
    page = client.get(response["Location"])
    assert f"1 ticket moved to {bob}." in page.text
    assert page.context["rows"] == []
    response = client.post(agent_url(agent), {"ticket": "x", "to": str(bob.pk)}, follow=True)
    assert "Ticket IDs must be numbers." in response.text


def test_deactivated_agents_work_can_still_be_moved(client, supervisor, agent, bob, tenant_a):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Left"), agent=agent, actor=None)
    agent.user.is_active = False
    agent.user.save(update_fields=["is_active"])
    client.force_login(supervisor.user)
    assert client.get(agent_url(agent)).status_code == 200
    response = client.post(agent_url(agent), {"ticket": str(ticket.pk), "to": str(bob.pk)}, **JSON)
    assert response.status_code == 200
    # ... but not to a deactivated agent.
    other = ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="Other"), agent=bob, actor=None)
    response = client.post(agent_url(bob), {"ticket": str(other.pk), "to": str(agent.pk)}, **JSON)
    assert response.status_code == 400


@pytest.mark.parametrize(("who", "queries"), [("supervisor", 8), ("admin", 7)])
def test_agent_page_queries_do_not_grow_with_the_tickets(
    client, supervisor, admin_user, agent, bob, tenant_a, django_assert_num_queries, who, queries
):
    user = supervisor.user if who == "supervisor" else admin_user
    ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="first"), agent=agent, actor=None)
    client.force_login(user)
    with django_assert_num_queries(queries):
        response = client.get(agent_url(agent))
    assert len(response.context["rows"]) == 1
    for n in range(29):
        ticket_assign(ticket=make_ticket(tenant=tenant_a, subject=f"t{n}"), agent=agent, actor=None)
        make_agent(tenants=[tenant_a], email=f"target{n}@care.test")
    with django_assert_num_queries(queries):
        response = client.get(agent_url(agent))
    assert len(response.context["rows"]) == 30
