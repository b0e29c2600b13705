"""The desk's search page /desk/search/: who may use it, isolation, jumps, junk input, queries."""

from __future__ import annotations

import pytest

from care.core.channels import Channel
from care.tickets.models import Direction
from care.tickets.search import MAX_QUERY_LENGTH, PAGE_SIZE
from care.tickets.services import interaction_add
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

URL = "/desk/search/"


def _hits(response):
    return [hit.ticket.reference for hit in response.context["result"].hits]


def _tickets(tenant, count, word="Zählerstand"):
    tickets = []
    for i in range(count):
        ticket = make_ticket(tenant=tenant, subject=f"Frage {i}")
        interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            body_text=f"Mein {word} ist falsch",
        )
        interaction_add(
            ticket=ticket, channel=Channel.EMAIL, direction=Direction.NOTE, body_text=f"{word} geprüft"
        )
        tickets.append(ticket)
    return tickets


def test_login_required(client):
    response = client.get(URL, {"q": "x"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_portal_users_get_403(client, portal_user, email_ticket):
    client.force_login(portal_user)
    assert client.get(URL, {"q": "Zählerstand"}).status_code == 403


def test_empty_page_shows_the_form(client, agent):
    client.force_login(agent.user)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="search-q"' in html
    assert 'for="search-q"' in html
    assert 'id="header-search-q"' in html  # the header box on every staff page
    assert "desk/search.js" in html


def test_finds_text_and_notes_and_marks_hits(client, agent, email_ticket):
    client.force_login(agent.user)
    response = client.get(URL, {"q": "Zählerstände"})
    assert _hits(response) == [email_ticket.reference]
    assert "<mark>Zählerstand</mark>" in response.content.decode()
    notes = client.get(URL, {"q": "ungeduldig"})
    assert _hits(notes) == [email_ticket.reference]
    html = notes.content.decode()
    assert "Internal note:" in html
    # The note's own markup is text, never HTML.
    assert "<b>ungeduldig</b>" not in html
    assert "<mark>ungeduldig</mark>" in html


def test_isolation_text_reference_email_phone_and_filter(client, outsider, agent, email_ticket, tenant_a):
    IdentityFactory(customer=email_ticket.customer, kind="phone", value="+4930123456")
    client.force_login(outsider.user)
    for query in ("Zählerstand", "ungeduldig", email_ticket.reference, "greta@example.com", "+49 30 123456"):
        response = client.get(URL, {"q": query})
        assert response.status_code == 200, query
        assert _hits(response) == [], query
        assert email_ticket.subject not in response.content.decode()
    # A tenant filter naming a tenant the user may not see is ignored, not obeyed.
    response = client.get(URL, {"q": "Zählerstand", "tenant": tenant_a.pk})
    assert _hits(response) == []
    assert "ignored" in response.content.decode()


def test_reference_jumps_to_the_ticket(client, agent, email_ticket):
    client.force_login(agent.user)
    response = client.get(URL, {"q": email_ticket.reference})
    assert response.status_code == 302
    assert response["Location"] == f"/desk/tickets/{email_ticket.reference}/"


def test_email_and_phone_list_the_customers_tickets(client, agent, email_ticket, tenant_a):
    IdentityFactory(customer=email_ticket.customer, kind="phone", value="+4930123456")
    second = make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject="Noch etwas")
    client.force_login(agent.user)
    for query in ("GRETA@example.com", "030 123456", "+49 (30) 123-456"):
        response = client.get(URL, {"q": query})
        assert _hits(response) == [second.reference, email_ticket.reference], query


@pytest.mark.parametrize(
    "query",
    ['"', '""', "-", "- or -", "!!!", "((", "&|!:*", "'", "\x00", "a\x00b", "<script>", "%", "\\", "😀", " "],
)
def test_junk_never_fails(client, agent, email_ticket, query):
    client.force_login(agent.user)
    response = client.get(URL, {"q": query})
    assert response.status_code == 200
    assert all(hit.ticket.tenant_id == email_ticket.tenant_id for hit in response.context["result"].hits)


def test_too_long_query_is_explained(client, agent, email_ticket):
    client.force_login(agent.user)
    response = client.get(URL, {"q": "Zählerstand " * 1000})
    assert response.status_code == 200
    assert f"at most {MAX_QUERY_LENGTH} characters" in response.content.decode()
    json_response = client.get(URL, {"q": "x" * 10_000}, HTTP_ACCEPT="application/json")
    assert json_response.status_code == 400
    assert str(MAX_QUERY_LENGTH) in json_response.json()["error"]


def test_only_operators_ask_for_words(client, agent, email_ticket):
    client.force_login(agent.user)
    response = client.get(URL, {"q": '"" - ()'})
    assert response.status_code == 200
    assert "Enter a word" in response.content.decode()


def test_bad_filters_are_ignored_with_a_note(client, agent, email_ticket):
    client.force_login(agent.user)
    response = client.get(URL, {"q": "Zählerstand", "tenant": "x", "status": "bogus", "before": "-1"})
    assert response.status_code == 200
    assert _hits(response) == [email_ticket.reference]
    html = response.content.decode()
    assert "client filter was ignored" in html
    assert "Unknown statuses" in html


def test_status_and_tenant_filters(client, admin_user, email_ticket, tenant_a, tenant_b):
    other = _tickets(tenant_b, 1)[0]
    client.force_login(admin_user)
    assert set(_hits(client.get(URL, {"q": "Zählerstand"}))) == {email_ticket.reference, other.reference}
    assert _hits(client.get(URL, {"q": "Zählerstand", "tenant": tenant_b.pk})) == [other.reference]
    assert _hits(client.get(URL, {"q": "Zählerstand", "status": "solved"})) == []


def test_more_results_page_by_keyset_and_json(client, agent, tenant_a):
    tickets = _tickets(tenant_a, PAGE_SIZE + 3)
    client.force_login(agent.user)
    first = client.get(URL, {"q": "Zählerstand"})
    assert _hits(first) == [t.reference for t in reversed(tickets)][:PAGE_SIZE]
    more = first.context["more_url"]
    assert more
    assert f"before={tickets[3].pk}" in more
    second = client.get(URL + more)
    assert _hits(second) == [t.reference for t in reversed(tickets[:3])]
    assert second.context["more_url"] == ""
    data = client.get(URL + more, HTTP_ACCEPT="application/json").json()
    assert data["count"] == 3
    assert data["more_url"] == ""
    assert tickets[0].reference in data["rows"]


@pytest.mark.parametrize(
    ("who", "queries"),
    [
        # session, user, the user's tenant ids, the visible tenants, the parsed query, the ids, the
        # tickets, the snippets
        ("agent", 8),
        # an administrator sees all tenants without asking for authorisations
        ("admin", 7),
    ],
)
def test_queries_do_not_grow_with_the_results(
    client, agent, admin_user, tenant_a, django_assert_num_queries, who, queries
):
    client.force_login(agent.user if who == "agent" else admin_user)
    _tickets(tenant_a, 1)
    with django_assert_num_queries(queries):
        response = client.get(URL, {"q": "Zählerstand"})
    assert len(_hits(response)) == 1
    _tickets(tenant_a, 29)
    with django_assert_num_queries(queries):
        response = client.get(URL, {"q": "Zählerstand", "tenant": tenant_a.pk})
    assert len(_hits(response)) == PAGE_SIZE
    with django_assert_num_queries(queries):
        response = client.get(URL + response.context["more_url"])
    assert len(_hits(response)) == 10


def test_identity_search_queries_are_constant(client, agent, tenant_a, django_assert_num_queries):
    customer = CustomerFactory(tenant=tenant_a)
    IdentityFactory(customer=customer, value="many@example.com")
    make_ticket(tenant=tenant_a, customer=customer)
    client.force_login(agent.user)
    # session, user, tenant ids, tenants, identities, tickets
    with django_assert_num_queries(6):
        assert len(_hits(client.get(URL, {"q": "many@example.com"}))) == 1
    for _ in range(24):
        make_ticket(tenant=tenant_a, customer=customer)
    with django_assert_num_queries(6):
        assert len(_hits(client.get(URL, {"q": "many@example.com"}))) == PAGE_SIZE
