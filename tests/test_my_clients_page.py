"""The start page after login: who you are and the clients you may see, with their ticket counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from care.tickets.services import ticket_change_status
from tests.factories.accounts import PASSWORD
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _page(client, user):
    client.force_login(user)
    response = client.get("/me/")
    assert response.status_code == 200
    return response


def test_agent_sees_own_clients_with_counts_and_nothing_else(client, tenant_a, tenant_b, agent):
    make_ticket(tenant=tenant_a)
    solved = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=solved, status="solved", actor=None)
    make_ticket(tenant=tenant_b, subject="Telco Sur secret")

    rows = _page(client, agent.user).context["rows"]

    assert [(t.code, t.waiting, t.unresolved) for t in rows] == [("ENN", 1, 1)]


def test_outsider_and_portal_user_see_only_their_tenant(client, tenant_a, tenant_b, outsider, portal_user):
    assert [t.code for t in _page(client, outsider.user).context["rows"]] == ["TSU"]
    assert [t.code for t in _page(client, portal_user).context["rows"]] == ["ENN"]
    assert "Telco Sur" not in _page(client, portal_user).text


def test_admin_sees_every_client(client, tenant_a, tenant_b, admin_user):
    assert {t.code for t in _page(client, admin_user).context["rows"]} == {"ENN", "TSU"}


def test_page_costs_the_same_queries_for_few_or_many_tickets(client, tenant_a, tenant_b, admin_user):
    client.force_login(admin_user)
    client.get("/me/")

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/me/").status_code == 200
        return len(queries.captured_queries)

    few = count()
    for _ in range(15):
        make_ticket(tenant=tenant_a)
        make_ticket(tenant=tenant_b)
    assert count() == few == 3  # session, user, tenants with their counts


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_logging_in_with_email_and_password_lands_on_the_page(client, agent):
    response = client.post(
        "/accounts/login/", {"username": agent.user.email, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/me/"
    assert "Energie Nord" in response.text


def test_wrong_password_is_a_clear_message_not_an_error(client, agent):
    response = client.post("/accounts/login/", {"username": agent.user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "did not match" in response.text
