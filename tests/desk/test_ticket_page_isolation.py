"""Only the service center's staff authorised for a ticket's tenant see or write on its page."""

from __future__ import annotations

import pytest

from care.connectors.models import OutboundDelivery
from care.tickets.models import Interaction, TicketEvent
from tests.desk.conftest import page_url

pytestmark = pytest.mark.django_db

ENDPOINTS = [("get", ""), ("get", "entries?all=1"), ("post", "reply"), ("post", "note")]


def _call(client, method, url):
    if method == "get":
        return client.get(url)
    return client.post(url, {"text": "Hallo von außen"}, headers={"accept": "application/json"})


def _written(ticket):
    return (
        Interaction.objects.filter(ticket=ticket).count(),
        TicketEvent.objects.filter(ticket=ticket).count(),
        OutboundDelivery.objects.count(),
    )


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_outsider_gets_404_for_every_endpoint_and_nothing_is_written(
    client, outsider, email_ticket, method, suffix
):
    client.force_login(outsider.user)
    before = _written(email_ticket)

    response = _call(client, method, page_url(email_ticket, suffix))

    assert response.status_code == 404
    assert "Zählerstand" not in response.text
    assert _written(email_ticket) == before


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_portal_user_of_the_tenant_is_refused(client, portal_user, email_ticket, method, suffix):
    client.force_login(portal_user)
    before = _written(email_ticket)

    response = _call(client, method, page_url(email_ticket, suffix))

    assert response.status_code == 403
    assert "Zählerstand" not in response.text
    assert _written(email_ticket) == before


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_anonymous_visitors_are_sent_to_log_in(client, email_ticket, method, suffix):
    before = _written(email_ticket)

    response = _call(client, method, page_url(email_ticket, suffix))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert _written(email_ticket) == before


def test_deactivated_tenant_is_hidden_from_its_agents(client, agent, email_ticket):
    email_ticket.tenant.is_active = False
    email_ticket.tenant.save(update_fields=["is_active"])
    client.force_login(agent.user)

    assert client.get(page_url(email_ticket)).status_code == 404


def test_admin_and_supervisor_see_the_page(client, admin_user, supervisor, email_ticket):
    for user in (admin_user, supervisor.user):
        client.force_login(user)
        assert client.get(page_url(email_ticket)).status_code == 200
