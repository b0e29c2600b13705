"""The agents' call API: log an outbound call, code a call, list a ticket's calls, each only within
the tenants the caller may see (another company's tickets, calls and tenants are 404s, its codes and
campaigns unknown)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client

from care.calls.models import Call, CallCode, CallOutcome, Campaign, Direction, Provider
from care.tickets.models import Interaction
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

STARTED = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


def client_for(user) -> Client:
    client = Client()
    client.force_login(getattr(user, "user", user))  # agent fixtures are Agent profiles
    return client


def post(client: Client, url: str, body: dict) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def code(tenant, kind: str, slug: str, *, is_sale: bool = False) -> CallCode:
    return CallCode.objects.create(tenant=tenant, kind=kind, code=slug, label=slug.title(), is_sale=is_sale)


@pytest.fixture
def codes(tenant_a, tenant_b):
    """Each tenant's codes; ``meter-reading`` and the ``Winter`` campaign exist only for tenant A."""
    return {
        "a_sale": code(tenant_a, CallCode.Kind.OUTCOME, "sale", is_sale=True),
        "a_no_interest": code(tenant_a, CallCode.Kind.OUTCOME, "no-interest"),
        "a_reason": code(tenant_a, CallCode.Kind.REASON, "meter-reading"),
        "b_sale": code(tenant_b, CallCode.Kind.OUTCOME, "venta", is_sale=True),
        "b_reason": code(tenant_b, CallCode.Kind.REASON, "factura"),
        "a_campaign": Campaign.objects.create(tenant=tenant_a, name="Winter"),
        "b_campaign": Campaign.objects.create(tenant=tenant_b, name="Verano"),
    }


def inbound_call(tenant, ticket=None, number: int = 1) -> Call:
    return Call.objects.create(
        tenant=tenant,
        direction=Direction.INBOUND,
        provider=Provider.GENERIC,
        external_id=f"in-{tenant.code}-{number}",
        caller="+4930123456" + f"{number:02d}",
        offered_at=STARTED,
        answered_at=STARTED + dt.timedelta(seconds=12),
        ended_at=STARTED + dt.timedelta(minutes=4),
        outcome=CallOutcome.ANSWERED,
        talk_seconds=228,
        ticket=ticket,
    )


def outbound(**overrides) -> dict:
    return {
        "dialled": "+4940123456789",
        "started_at": "2026-03-10T10:30:00+01:00",
        "talk_seconds": 185,
        "outcome_code": "sale",
        "campaign": None,
        "sale_amount": "49.90",
        **overrides,
    }


# --- POST /api/calls/outbound --------------------------------------------------------------------


def test_an_agent_logs_a_sale_on_a_ticket(agent, tenant_a, codes):
    ticket = make_ticket(tenant=tenant_a)
    body = outbound(ticket=ticket.reference.lower(), campaign=codes["a_campaign"].pk)
    response = post(client_for(agent), "/api/calls/outbound", body)
    assert response.status_code == 201, response.json()
    shown = response.json()
    assert shown["direction"] == "outbound"
    assert (shown["outcome"], shown["talk_seconds"], shown["sale_amount"]) == ("answered", 185, "49.90")
    assert shown["outcome_code"] == {"code": "sale", "label": "Sale"}
    assert shown["campaign"] == {"id": codes["a_campaign"].pk, "name": "Winter"}
    assert shown["ticket"] == ticket.reference
    assert shown["agent"]["id"] == agent.pk
    call = Call.objects.get(pk=shown["id"])
    assert (call.tenant_id, call.agent_id, call.ticket_id) == (tenant_a.pk, agent.pk, ticket.pk)
    assert call.offered_at == STARTED
    assert call.sale_amount == Decimal("49.90")
    assert Interaction.objects.filter(ticket=ticket, channel="phone").count() == 1


def test_an_agent_logs_a_call_for_a_tenant_without_a_ticket(agent, tenant_a, codes):
    body = outbound(tenant="enn", outcome_code="no-interest", sale_amount=None, talk_seconds=0)
    response = post(client_for(agent), "/api/calls/outbound", body)
    assert response.status_code == 201, response.json()
    assert (response.json()["ticket"], response.json()["outcome"]) == (None, "missed")


def test_an_agent_of_b_cannot_log_for_as_ticket_or_tenant(outsider, tenant_a, codes):
    ticket = make_ticket(tenant=tenant_a)
    client = client_for(outsider)
    on_ticket = post(client, "/api/calls/outbound", outbound(ticket=ticket.reference))
    assert (on_ticket.status_code, on_ticket.json()) == (404, {"detail": "No such ticket."})
    on_tenant = post(client, "/api/calls/outbound", outbound(tenant="ENN"))
    assert (on_tenant.status_code, on_tenant.json()) == (404, {"detail": "No such tenant."})
    unknown = post(client, "/api/calls/outbound", outbound(tenant="NOPE"))
    assert unknown.json() == on_tenant.json()
    assert not Call.objects.exists()
    assert not Interaction.objects.filter(ticket=ticket, channel="phone").exists()


def test_another_tenants_codes_and_campaigns_are_unknown(agent, codes):
    client = client_for(agent)
    foreign_code = post(client, "/api/calls/outbound", outbound(tenant="ENN", outcome_code="venta"))
    assert foreign_code.status_code == 400
    assert foreign_code.json() == {"outcome_code": ["No such code: venta."]}
    foreign_campaign = post(
        client, "/api/calls/outbound", outbound(tenant="ENN", campaign=codes["b_campaign"].pk)
    )
    assert foreign_campaign.json() == {"campaign": ["No such campaign."]}
    assert not Call.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"tenant": "ENN", "dialled": "040 123456"},
            {
                "dialled": [
                    "040 123456 is not a phone number; write it with its country code, e.g. +49 30 1234567."
                ]
            },
        ),
        (
            {"tenant": "ENN", "talk_seconds": -1},
            {"talk_seconds": ["Ensure this value is greater than or equal to 0."]},
        ),
        ({"tenant": "ENN", "started_at": "yesterday"}, None),
        ({}, {"tenant": ["Name the tenant, or the ticket the call was about."]}),
        (
            {"tenant": "ENN", "outcome_code": "no-interest"},
            {"sale_amount": ["A sale amount needs a campaign or an outcome code that counts as a sale."]},
        ),
    ],
)
def test_bad_outbound_logs_get_400_messages(agent, codes, overrides, errors):
    response = post(client_for(agent), "/api/calls/outbound", outbound(**overrides))
    assert response.status_code == 400
    if errors is None:
        assert set(response.json()) == {"started_at"}
    else:
        assert response.json() == errors
    assert not Call.objects.exists()


def test_portal_users_and_strangers_may_not_log_calls(portal_user, codes):
    assert post(client_for(portal_user), "/api/calls/outbound", outbound(tenant="ENN")).status_code == 403
    assert post(Client(), "/api/calls/outbound", outbound(tenant="ENN")).status_code == 403


# --- POST /api/calls/<id>/codes ------------------------------------------------------------------


def test_an_agent_codes_a_call_of_their_tenant(agent, tenant_a, codes):
    call = inbound_call(tenant_a)
    response = post(client_for(agent), f"/api/calls/{call.pk}/codes", {"reason": "meter-reading"})
    assert response.status_code == 200, response.json()
    assert response.json()["reason"] == {"code": "meter-reading", "label": "Meter-Reading"}
    call.refresh_from_db()
    assert (call.reason_id, call.outcome_code_id) == (codes["a_reason"].pk, None)
    # A code left out stays; null clears it.
    post(client_for(agent), f"/api/calls/{call.pk}/codes", {"outcome_code": "no-interest"})
    call.refresh_from_db()
    assert (call.reason_id, call.outcome_code_id) == (codes["a_reason"].pk, codes["a_no_interest"].pk)
    post(client_for(agent), f"/api/calls/{call.pk}/codes", {"reason": None})
    call.refresh_from_db()
    assert (call.reason_id, call.outcome_code_id) == (None, codes["a_no_interest"].pk)


def test_codes_of_a_are_refused_for_bs_call(outsider, tenant_b, codes):
    call = inbound_call(tenant_b)
    client = client_for(outsider)
    response = post(
        client, f"/api/calls/{call.pk}/codes", {"reason": "meter-reading", "outcome_code": "sale"}
    )
    assert response.status_code == 400
    assert response.json() == {"reason": ["No such code: meter-reading."]}
    wrong_kind = post(client, f"/api/calls/{call.pk}/codes", {"reason": "venta"})
    assert wrong_kind.json() == {"reason": ["No such code: venta."]}
    call.refresh_from_db()
    assert (call.reason_id, call.outcome_code_id) == (None, None)
    assert post(client, f"/api/calls/{call.pk}/codes", {"reason": "factura"}).status_code == 200


def test_another_companys_call_is_a_404(outsider, tenant_a, codes):
    call = inbound_call(tenant_a)
    client = client_for(outsider)
    theirs = post(client, f"/api/calls/{call.pk}/codes", {"reason": "factura"})
    unknown = post(client, f"/api/calls/{call.pk + 1000}/codes", {"reason": "factura"})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() == {"detail": "No such call."}


# --- GET /api/calls/?ticket=REF ------------------------------------------------------------------


def test_a_tickets_calls_oldest_first_in_fixed_queries(agent, tenant_a, codes, django_assert_num_queries):
    ticket = make_ticket(tenant=tenant_a)
    first = inbound_call(tenant_a, ticket, 1)
    client = client_for(agent)
    post(client, "/api/calls/outbound", outbound(ticket=ticket.reference, campaign=codes["a_campaign"].pk))
    client.get("/api/calls/", {"ticket": ticket.reference})  # warm the session
    with django_assert_num_queries(5) as captured:
        response = client.get("/api/calls/", {"ticket": ticket.reference})
    assert response.status_code == 200
    listed = response.json()
    assert listed[0]["id"] == first.pk
    assert [row["direction"] for row in listed] == ["inbound", "outbound"]
    assert {row["ticket"] for row in listed} == {ticket.reference}
    for number in range(2, 8):
        inbound_call(tenant_a, ticket, number)
    with django_assert_num_queries(len(captured.captured_queries)):
        assert len(client.get("/api/calls/", {"ticket": ticket.reference}).json()) == 8


def test_another_companys_ticket_calls_are_a_404(outsider, tenant_a, codes):
    ticket = make_ticket(tenant=tenant_a)
    inbound_call(tenant_a, ticket)
    response = client_for(outsider).get("/api/calls/", {"ticket": ticket.reference})
    assert (response.status_code, response.json()) == (404, {"detail": "No such ticket."})


def test_listing_needs_a_ticket(agent):
    response = client_for(agent).get("/api/calls/")
    assert (response.status_code, response.json()) == (400, {"ticket": ["This field is required."]})
