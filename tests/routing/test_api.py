"""The routing REST API: each endpoint's contract, bad input, and tenant isolation for every endpoint.

Work is real: tickets through the ticket services (which enqueue them), offers and assignments by the
routing engine (``route_item``), presence through ``agent_set_presence``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from care.accounts.models import Presence, Role
from care.accounts.services import agent_authorise, agent_set_channel, agent_set_presence
from care.core.channels import Channel
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.services import route_item, routing_assign_by_hand
from care.tickets.models import Status
from care.tickets.services import ticket_change_status
from tests.factories.accounts import UserFactory, make_agent
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

OFFERS = "/api/routing/offers/"
NEXT = "/api/routing/next"
PRESENCE = "/api/routing/presence"
QUEUES = "/api/routing/queues/"


def accept_url(item_id):
    return f"/api/routing/offers/{item_id}/accept"


def decline_url(item_id):
    return f"/api/routing/offers/{item_id}/decline"


def assign_url(reference):
    return f"/api/routing/tickets/{reference}/assign"


def decisions_url(reference):
    return f"/api/routing/tickets/{reference}/decisions"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client, path, data=None):
    return client.post(path, data=data if data is not None else {}, content_type="application/json")


def online(agent, *, offers=False):
    if offers:
        type(agent).objects.filter(pk=agent.pk).update(accepts_offers=True)
        agent.refresh_from_db(fields=["accepts_offers"])
    return agent_set_presence(agent=agent, presence=Presence.ONLINE)


def routed(ticket):
    """Let the engine decide on the ticket's queued item now (as the task would after commit)."""
    return route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk)


def offer(agent, tenant, subject="Meter reading wrong"):
    """A ticket of ``tenant`` offered to ``agent`` (who must be online, accepting offers, the only
    one free); returns its queued item."""
    ticket = make_ticket(tenant=tenant, subject=subject, language=tenant.default_language)
    decision = routed(ticket)
    assert decision is not None
    assert (decision.kind, decision.agent_id) == (RoutingDecision.Kind.OFFERED, agent.pk)
    return QueuedItem.objects.get(ticket=ticket)


@pytest.fixture
def bob(tenant_a):
    """A second agent of tenant A, so that "only your own offers" means something."""
    return make_agent(tenants=[tenant_a], email="bob@care.test")


@pytest.fixture
def supervisor_b(tenant_b):
    return make_agent(tenants=[tenant_b], email="sue@care.test", role=Role.SUPERVISOR, languages=(("es", 7),))


ALL_ENDPOINTS = [
    ("get", OFFERS),
    ("post", accept_url(1)),
    ("post", decline_url(1)),
    ("post", NEXT),
    ("post", assign_url("ENN-1")),
    ("get", decisions_url("ENN-1")),
    ("get", QUEUES),
    ("post", PRESENCE),
]


def call(client, method, path):
    return (
        client.get(path)
        if method == "get"
        else post_json(client, path, {"presence": "online", "agent": None})
    )


# --- Who may call at all ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ALL_ENDPOINTS)
def test_anonymous_is_refused_everywhere(db, method, path):
    response = call(Client(), method, path)
    assert response.status_code == 403
    assert response.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize(("method", "path"), ALL_ENDPOINTS)
def test_portal_user_is_refused_everywhere(tenant_a, portal_user, agent, method, path):
    # The portal user sees tenant A's tickets elsewhere; here even ENN-1, which exists, is a 403.
    make_ticket(tenant=tenant_a)
    response = call(client_for(portal_user), method, path)
    assert response.status_code == 403
    assert response.json()["detail"] == "Tenant portal users do not use the routing API."


def test_posts_need_the_csrf_token(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    refused = post_json(client, PRESENCE, {"presence": "online"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.cookies[settings.CSRF_COOKIE_NAME] = "a" * 32
    accepted = client.post(
        PRESENCE, {"presence": "online"}, content_type="application/json", HTTP_X_CSRFTOKEN="a" * 32
    )
    assert accepted.status_code == 200


@pytest.mark.parametrize(("method", "path"), [("get", OFFERS), ("post", NEXT), ("post", PRESENCE)])
def test_own_work_endpoints_need_an_agent_profile(admin_user, method, path):
    response = call(client_for(admin_user), method, path)
    assert response.status_code == 403
    assert response.json()["detail"] == "You have no agent profile."


# --- Offers ---------------------------------------------------------------------------------------


def test_offer_list_shows_the_callers_open_offers(tenant_a, agent, bob):
    online(agent, offers=True)
    item = offer(agent, tenant_a, subject="Meter reading wrong")
    online(bob, offers=True)
    agent_set_presence(agent=agent, presence=Presence.AWAY)  # the next one goes to bob
    offer(bob, tenant_a, subject="For bob")

    response = client_for(agent.user).get(OFFERS)

    assert response.status_code == 200
    item.refresh_from_db()
    assert response.json() == [
        {
            "item": item.pk,
            "ticket": item.ticket.reference,
            "subject": "Meter reading wrong",
            "tenant": {"code": "ENN", "name": "Energie Nord", "colour": tenant_a.colour},
            "channel": Channel.EMAIL,
            "language": "de",
            "expires_at": item.offer_expires_at.isoformat().replace("+00:00", "Z"),
        }
    ]
    assert [o["subject"] for o in client_for(bob.user).get(OFFERS).json()] == ["For bob"]


def test_offer_list_leaves_out_timed_out_offers(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    QueuedItem.objects.filter(pk=item.pk).update(offer_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_for(agent.user).get(OFFERS).json() == []


def test_outsider_never_lists_tenant_a_offers(tenant_a, tenant_b, agent, outsider):
    online(agent, offers=True)
    offer(agent, tenant_a)
    online(outsider, offers=True)
    offer(outsider, tenant_b, subject="Factura")
    response = client_for(outsider.user).get(OFFERS)
    assert [(o["tenant"]["code"], o["subject"]) for o in response.json()] == [("TSU", "Factura")]


@pytest.mark.parametrize("offers", [1, 10])
def test_offer_list_queries_do_not_grow_with_offers(tenant_a, agent, offers, django_assert_max_num_queries):
    agent_set_channel(agent=agent, channel=Channel.EMAIL, capacity=20)
    online(agent, offers=True)
    for n in range(offers):
        offer(agent, tenant_a, subject=f"Ticket {n}")
    client = client_for(agent.user)
    # session, user, agent, visible tenants, the offers with their tickets and tenants
    with django_assert_max_num_queries(5):
        response = client.get(OFFERS)
    assert len(response.json()) == offers


def test_accept_assigns_the_ticket(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    ticket = item.ticket

    response = post_json(client_for(agent.user), accept_url(item.pk))

    assert response.status_code == 200
    assert response.json() == {"ticket": ticket.reference, "status": Status.OPEN, "assignee": agent.pk}
    ticket.refresh_from_db()
    assert ticket.assignee_id == agent.pk
    assert not QueuedItem.objects.filter(pk=item.pk).exists()
    assert ticket.routing_decisions.latest("created_at").kind == RoutingDecision.Kind.ACCEPTED


def test_decline_puts_the_work_back_with_the_reason(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)

    response = post_json(client_for(agent.user), decline_url(item.pk), {"reason": "on a break"})

    assert response.status_code == 200
    assert response.json() == {"detail": "Offer declined."}
    item.refresh_from_db()
    assert (item.state, item.offered_to_id, item.declined_by) == (QueuedItem.State.WAITING, None, [agent.pk])
    decision = item.ticket.routing_decisions.latest("created_at")
    assert (decision.kind, decision.reason, decision.actor_id) == (
        RoutingDecision.Kind.DECLINED,
        "on a break",
        agent.user_id,
    )


def test_decline_without_a_body_is_fine(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    response = client_for(agent.user).post(decline_url(item.pk))
    assert response.status_code == 200


@pytest.mark.parametrize("action", [accept_url, decline_url])
def test_nobody_answers_another_agents_offer(tenant_a, agent, outsider, supervisor, action):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    for intruder in (outsider, supervisor):
        response = post_json(client_for(intruder.user), action(item.pk))
        assert response.status_code == 409
        assert response.json() == {"detail": "This offer is no longer open."}
    item.refresh_from_db()
    assert (item.state, item.offered_to_id, item.declined_by) == (QueuedItem.State.OFFERED, agent.pk, [])
    assert item.ticket.assignee_id is None


@pytest.mark.parametrize("action", [accept_url, decline_url])
def test_closed_and_unknown_offers_answer_409(tenant_a, agent, action):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    client = client_for(agent.user)
    assert post_json(client, accept_url(item.pk)).status_code == 200
    for item_id in (item.pk, 999_999):
        response = post_json(client, action(item_id))
        assert response.status_code == 409
        assert response.json() == {"detail": "This offer is no longer open."}


def test_timed_out_offer_answers_409(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    QueuedItem.objects.filter(pk=item.pk).update(offer_expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = post_json(client_for(agent.user), accept_url(item.pk))
    assert response.status_code == 409
    assert response.json() == {"detail": "The offer timed out; the work went back to the queue."}
    assert item.ticket.assignee_id is None


def test_offer_bad_input_is_4xx(tenant_a, agent):
    online(agent, offers=True)
    item = offer(agent, tenant_a)
    client = client_for(agent.user)
    assert client.post("/api/routing/offers/abc/accept").status_code == 404
    malformed = client.post(decline_url(item.pk), data="{oops", content_type="application/json")
    assert malformed.status_code == 400
    assert "JSON parse error" in malformed.json()["detail"]
    too_long = post_json(client, decline_url(item.pk), {"reason": "x" * 501})
    assert too_long.status_code == 400
    assert "reason" in too_long.json()
    item.refresh_from_db()
    assert item.state == QueuedItem.State.OFFERED


# --- Asking for work ------------------------------------------------------------------------------


def test_next_assigns_waiting_work(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    online(agent)

    response = post_json(client_for(agent.user), NEXT)

    assert response.status_code == 200
    assert response.json() == {
        "kind": RoutingDecision.Kind.ASSIGNED,
        "ticket": ticket.reference,
        "item": None,
        "expires_at": None,
    }
    ticket.refresh_from_db()
    assert ticket.assignee_id == agent.pk


def test_next_offers_work_to_an_agent_who_accepts_offers(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    online(agent, offers=True)
    client = client_for(agent.user)

    given = post_json(client, NEXT).json()

    item = QueuedItem.objects.get(ticket=ticket)
    assert given["kind"] == RoutingDecision.Kind.OFFERED
    assert (given["ticket"], given["item"]) == (ticket.reference, item.pk)
    assert given["expires_at"] == item.offer_expires_at.isoformat().replace("+00:00", "Z")
    assert post_json(client, accept_url(given["item"])).json()["ticket"] == ticket.reference


def test_next_answers_204_when_nothing_fits(tenant_a, agent):
    online(agent)
    make_ticket(tenant=tenant_a, language="fr")  # nobody speaks French
    response = post_json(client_for(agent.user), NEXT)
    assert response.status_code == 204
    assert response.content == b""


def test_next_never_gives_an_outsider_tenant_a_work(tenant_a, outsider):
    ticket = make_ticket(tenant=tenant_a, language="es")  # the outsider speaks Spanish
    online(outsider)
    assert post_json(client_for(outsider.user), NEXT).status_code == 204
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_next_needs_the_agent_online(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    response = post_json(client_for(agent.user), NEXT)
    assert response.status_code == 409
    assert response.json() == {"detail": "Set yourself online to be given work."}
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


# --- Manual assignment ----------------------------------------------------------------------------


def test_supervisor_assigns_by_hand(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)

    response = post_json(
        client_for(supervisor.user), assign_url(ticket.reference), {"agent": agent.pk, "note": "VIP"}
    )

    assert response.status_code == 200
    assert response.json() == {"ticket": ticket.reference, "status": Status.OPEN, "assignee": agent.pk}
    decision = ticket.routing_decisions.get()
    assert (decision.kind, decision.agent_id, decision.actor_id, decision.reason) == (
        RoutingDecision.Kind.MANUAL,
        agent.pk,
        supervisor.user_id,
        "VIP",
    )
    # The agent is offline: routing's objection is logged, the supervisor's call stands.
    assert decision.candidates[0]["rejected"] == ["is offline"]


def test_supervisor_returns_a_ticket_to_the_queue(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    routing_assign_by_hand(ticket=ticket, agent=agent, actor=supervisor.user)
    assert not QueuedItem.objects.filter(ticket=ticket).exists()

    response = post_json(client_for(supervisor.user), assign_url(ticket.reference.lower()), {"agent": None})

    assert response.status_code == 200
    assert response.json()["assignee"] is None
    assert QueuedItem.objects.filter(ticket=ticket).exists()
    assert ticket.routing_decisions.latest("created_at").kind == RoutingDecision.Kind.RETURNED


def test_plain_agents_may_not_assign(tenant_a, agent, bob):
    ticket = make_ticket(tenant=tenant_a)
    response = post_json(client_for(agent.user), assign_url(ticket.reference), {"agent": bob.pk})
    assert response.status_code == 403
    assert response.json() == {"detail": "Only supervisors and administrators may do this."}
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_tenant_b_cannot_even_find_tenant_a_tickets_to_assign(tenant_a, agent, outsider, supervisor_b):
    ticket = make_ticket(tenant=tenant_a)
    for intruder in (outsider, supervisor_b):
        for reference in (ticket.reference, str(ticket.pk)):
            response = post_json(client_for(intruder.user), assign_url(reference), {"agent": agent.pk})
            assert response.status_code == 404
            assert response.json() == {"detail": "No such ticket."}
    ticket.refresh_from_db()
    assert ticket.assignee_id is None
    assert not ticket.routing_decisions.exists()


def test_assigning_another_companys_agent_does_not_reveal_them(tenant_a, supervisor, outsider):
    ticket = make_ticket(tenant=tenant_a)
    response = post_json(client_for(supervisor.user), assign_url(ticket.reference), {"agent": outsider.pk})
    assert response.status_code == 400
    assert response.json() == {"agent": ["No such agent."]}
    assert outsider.user.email not in response.content.decode()


def test_assigning_an_agent_not_authorised_for_the_tenant_is_400(tenant_a, tenant_b, supervisor, admin_user):
    tenant_c = TenantFactory(name="Wasser West", slug="wasser-west", code="WWE")
    agent_authorise(agent=supervisor, tenant=tenant_c)
    carla = make_agent(tenants=[tenant_c], email="carla@care.test")  # the supervisor knows her from C
    oscar = make_agent(tenants=[tenant_b], email="oscar2@care.test")  # the admin sees every agent
    ticket = make_ticket(tenant=tenant_a)
    for user, agent in ((supervisor.user, carla), (admin_user, oscar)):
        response = post_json(client_for(user), assign_url(ticket.reference), {"agent": agent.pk})
        assert response.status_code == 400
        assert response.json() == {"detail": f"{agent.user.full_name} is not authorised for Energie Nord."}
    ticket.refresh_from_db()
    assert ticket.assignee_id is None
    assert not ticket.routing_decisions.exists()


def test_assign_bad_input_is_4xx(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    client = client_for(supervisor.user)
    path = assign_url(ticket.reference)

    cases = [
        ({"agent": "alice"}, {"agent": ["A valid integer is required."]}),
        ({"note": "no agent"}, {"agent": ["This field is required."]}),
        (
            {"agent": agent.pk, "note": "x" * 501},
            {"note": ["Ensure this field has no more than 500 characters."]},
        ),
        ([agent.pk], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ]
    for body, errors in cases:
        response = post_json(client, path, body)
        assert (response.status_code, response.json()) == (400, errors)
    malformed = client.post(path, data='{"agent": ', content_type="application/json")
    assert malformed.status_code == 400
    assert "JSON parse error" in malformed.json()["detail"]
    for unknown in ("ENN-999", "XYZ-1", "not a reference"):
        response = post_json(client, assign_url(unknown), {"agent": agent.pk})
        assert (response.status_code, response.json()) == (404, {"detail": "No such ticket."})
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_a_closed_ticket_cannot_be_assigned(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=ticket, status=Status.CLOSED, actor=None)
    response = post_json(client_for(supervisor.user), assign_url(ticket.reference), {"agent": agent.pk})
    assert (response.status_code, response.json()) == (400, {"detail": "A closed ticket cannot be assigned."})
    assert not ticket.routing_decisions.exists()


# --- Decision log ---------------------------------------------------------------------------------


def test_supervisor_reads_the_decision_log(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    routed(ticket)  # nobody online: waiting, with the agents' reasons
    routing_assign_by_hand(ticket=ticket, agent=agent, actor=supervisor.user, note="VIP")

    response = client_for(supervisor.user).get(decisions_url(ticket.reference))

    assert response.status_code == 200
    waiting, manual = response.json()
    assert waiting["kind"] == RoutingDecision.Kind.WAITING
    assert waiting["kind_label"] == "Nobody available, waiting"
    assert (waiting["agent"], waiting["actor"]) == (None, None)
    assert waiting["queue"] == "Default"
    assert waiting["reason"] == "nobody eligible is free at any active step"
    assert {c["agent"]: c["rejected"] for c in waiting["candidates"]} == {
        agent.pk: ["is offline"],
        supervisor.pk: ["is offline"],
    }
    assert set(waiting) == {
        "id",
        "kind",
        "kind_label",
        "created_at",
        "agent",
        "actor",
        "queue",
        "step",
        "strategy",
        "waited_seconds",
        "reason",
        "candidates",
    }
    assert manual["kind"] == RoutingDecision.Kind.MANUAL
    assert manual["agent"] == {"id": agent.pk, "name": agent.user.full_name}
    assert manual["actor"] == {"id": supervisor.user_id, "name": supervisor.user.full_name}
    assert manual["reason"] == "VIP"


def test_admin_reads_any_decision_log(tenant_b, admin_user):
    ticket = make_ticket(tenant=tenant_b, language="es")
    routed(ticket)
    response = client_for(admin_user).get(decisions_url(ticket.reference))
    assert [d["kind"] for d in response.json()] == [RoutingDecision.Kind.WAITING]


def test_plain_agents_do_not_read_the_decision_log(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    routed(ticket)
    response = client_for(agent.user).get(decisions_url(ticket.reference))
    assert response.status_code == 403
    assert response.json() == {"detail": "Only supervisors and administrators may do this."}


def test_tenant_b_cannot_find_tenant_a_decision_logs(tenant_a, outsider, supervisor_b):
    ticket = make_ticket(tenant=tenant_a)
    routed(ticket)
    for intruder in (outsider, supervisor_b):
        for reference in (ticket.reference, str(ticket.pk), "ENN-999"):
            response = client_for(intruder.user).get(decisions_url(reference))
            assert (response.status_code, response.json()) == (404, {"detail": "No such ticket."})


@pytest.mark.parametrize("decisions", [1, 10])
def test_decision_log_queries_do_not_grow_with_decisions(
    tenant_a, agent, supervisor, decisions, django_assert_max_num_queries
):
    ticket = make_ticket(tenant=tenant_a)
    for n in range(decisions):  # each call logs one decision with an agent and an actor
        routing_assign_by_hand(ticket=ticket, agent=agent if n % 2 == 0 else None, actor=supervisor.user)
    client = client_for(supervisor.user)
    # session, user, visible tenants, the ticket, the decisions with agents and actors
    with django_assert_max_num_queries(5):
        response = client.get(decisions_url(ticket.reference))
    assert len(response.json()) == decisions
    assert all(d["actor"]["id"] == supervisor.user_id for d in response.json())


# --- Queue overview -------------------------------------------------------------------------------


@pytest.fixture
def waiting_in_both_tenants(tenant_a, tenant_b):
    make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_b)


def test_supervisor_sees_only_their_tenants_queues(supervisor, waiting_in_both_tenants):
    response = client_for(supervisor.user).get(QUEUES)
    assert response.status_code == 200
    (row,) = response.json()
    assert {k: v for k, v in row.items() if k != "longest_wait_seconds"} == {
        "tenant": "ENN",
        "queue": "Default",
        "waiting": 2,
        "offered": 0,
    }
    assert row["longest_wait_seconds"] >= 0


def test_tenant_b_supervisor_never_sees_tenant_a(supervisor_b, waiting_in_both_tenants):
    assert [row["tenant"] for row in client_for(supervisor_b.user).get(QUEUES).json()] == ["TSU"]


def test_admin_sees_every_tenants_queues(admin_user, waiting_in_both_tenants, django_assert_max_num_queries):
    client = client_for(admin_user)
    with django_assert_max_num_queries(4):  # session, user, tenants, overview
        response = client.get(QUEUES)
    assert [(row["tenant"], row["waiting"]) for row in response.json()] == [("ENN", 2), ("TSU", 1)]


def test_plain_agents_do_not_see_the_queue_overview(agent, waiting_in_both_tenants):
    response = client_for(agent.user).get(QUEUES)
    assert response.status_code == 403
    assert response.json() == {"detail": "Only supervisors and administrators may do this."}


# --- Presence -------------------------------------------------------------------------------------


def test_agent_sets_their_presence(agent, bob):
    response = post_json(client_for(agent.user), PRESENCE, {"presence": "online"})
    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert response.json() == {
        "presence": "online",
        "since": agent.presence_changed_at.isoformat().replace("+00:00", "Z"),
    }
    bob.refresh_from_db()
    assert bob.presence == Presence.OFFLINE  # only the caller


def test_going_offline_returns_unstarted_work_and_offers(tenant_a, agent, supervisor):
    assigned = make_ticket(tenant=tenant_a)
    routing_assign_by_hand(ticket=assigned, agent=agent, actor=supervisor.user)
    online(agent, offers=True)
    item = offer(agent, tenant_a)

    response = post_json(client_for(agent.user), PRESENCE, {"presence": "offline"})

    assert (response.status_code, response.json()["presence"]) == (200, "offline")
    assigned.refresh_from_db()
    assert assigned.assignee_id is None
    assert QueuedItem.objects.filter(ticket=assigned, state=QueuedItem.State.WAITING).exists()
    item.refresh_from_db()
    assert (item.state, item.offered_to_id) == (QueuedItem.State.WAITING, None)


def test_presence_bad_input_is_400(agent):
    client = client_for(agent.user)
    for body, message in (
        ({"presence": "busy"}, '"busy" is not a valid choice.'),
        ({"presence": "on_call"}, '"on_call" is not a valid choice.'),  # set by the phone system only
        ({}, "This field is required."),
    ):
        response = post_json(client, PRESENCE, body)
        assert (response.status_code, response.json()) == (400, {"presence": [message]})
    malformed = client.post(PRESENCE, data="presence=online", content_type="application/json")
    assert malformed.status_code == 400
    assert "JSON parse error" in malformed.json()["detail"]
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE


def test_admins_without_an_agent_profile_use_the_supervisor_endpoints(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    admin = UserFactory(email="ada@care.test", role=Role.ADMIN)
    client = client_for(admin)
    assert client.get(QUEUES).status_code == 200
    assert client.get(decisions_url(ticket.reference)).status_code == 200
    assert post_json(client, assign_url(ticket.reference), {"agent": agent.pk}).status_code == 200
