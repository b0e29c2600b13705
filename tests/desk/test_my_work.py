"""The agent's "My work" page: my tickets across my tenants, most urgent first, the offers waiting
for my answer (accept, decline), who may see it, and the queries it costs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from care.accounts.models import TenantAuthorisation
from care.core.channels import Channel
from care.routing.models import QueuedItem
from care.tickets.models import Priority, Ticket
from care.tickets.services import ticket_assign
from care.tickets.status import Status
from tests.factories.accounts import make_agent
from tests.factories.contacts import CustomerFactory
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

URL = "/desk/work/"


def _mine(ticket, agent, **fields):
    """Assign ``ticket`` to ``agent`` and set the fields under test directly."""
    ticket = ticket_assign(ticket=ticket, agent=agent, actor=None)
    if fields:
        Ticket.objects.filter(pk=ticket.pk).update(**fields)
        ticket.refresh_from_db()
    return ticket


def _offer(ticket, agent, *, seconds=30):
    item = QueuedItem.objects.get(ticket=ticket)
    QueuedItem.objects.filter(pk=item.pk).update(
        state=QueuedItem.State.OFFERED,
        offered_to=agent,
        offer_expires_at=timezone.now() + dt.timedelta(seconds=seconds),
    )
    item.refresh_from_db()
    return item


@pytest.fixture
def tenant_c(db):
    return TenantFactory(name="Wasser Süd", slug="wasser-sued", code="WAS", colour="#0e7490")


@pytest.fixture
def two_tenant_agent(tenant_a, tenant_c):
    return make_agent(tenants=[tenant_a, tenant_c], email="bea@care.test")


def _row_order(page, references):
    return sorted(references, key=lambda reference: page.index(f">{reference}</a>"))


def test_shows_my_tickets_of_both_tenants_and_nothing_else(
    client, two_tenant_agent, tenant_a, tenant_b, tenant_c, outsider
):
    agent = two_tenant_agent
    customer = CustomerFactory(tenant=tenant_a, display_name="Greta Kunde")
    mine_a = _mine(make_ticket(tenant=tenant_a, customer=customer, subject="Zähler"), agent)
    mine_c = _mine(make_ticket(tenant=tenant_c, subject="Rohrbruch", channel=Channel.PHONE), agent)
    colleague = make_agent(tenants=[tenant_a], email="carl@care.test")
    others = _mine(make_ticket(tenant=tenant_a, subject="Nicht meins"), colleague)
    # Assigned to me in a tenant I am not authorised for (an old authorisation, since revoked).
    TenantAuthorisation.objects.create(agent=agent, tenant=tenant_b)
    foreign = _mine(make_ticket(tenant=tenant_b, subject="Fremder Mandant"), agent)
    TenantAuthorisation.objects.filter(agent=agent, tenant=tenant_b).delete()
    unassigned = make_ticket(tenant=tenant_a, subject="Niemandes")
    client.force_login(agent.user)

    response = client.get(URL)

    assert response.status_code == 200
    page = response.text
    assert "My work (2 tickets)" in page
    for ticket in (mine_a, mine_c):
        assert f'href="/desk/tickets/{ticket.reference}/"' in page
        assert ticket.subject in page
        assert f"background: {ticket.tenant.colour}" in page
        assert ticket.tenant.name in page
    assert "Greta Kunde" in page
    assert '<span class="channel channel-phone">Phone</span>' in page
    assert '<span class="channel channel-email">Email</span>' in page
    for ticket in (others, foreign, unassigned):
        assert ticket.subject not in page
        assert ticket.reference not in page
    assert tenant_b.name not in page
    config = json.loads(
        page.split('<script id="work-live-config" type="application/json">')[1].split("</script>")[0]
    )
    assert config["stream"] == f"agent:{agent.pk}"


def test_most_urgent_first_and_pending_apart(client, agent, tenant_a):
    now = timezone.now()
    later = _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now + dt.timedelta(hours=5))
    soon = _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now + dt.timedelta(minutes=20))
    no_sla_urgent = _mine(make_ticket(tenant=tenant_a), agent, priority=Priority.URGENT)
    no_sla_low = _mine(make_ticket(tenant=tenant_a), agent, priority=Priority.LOW)
    overdue = _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now - dt.timedelta(hours=2))
    pending = _mine(
        make_ticket(tenant=tenant_a, subject="Wartet auf Kunde"),
        agent,
        status=Status.PENDING,
        sla_due_at=now - dt.timedelta(days=1),
    )
    solved = _mine(make_ticket(tenant=tenant_a, subject="Erledigt"), agent, status=Status.SOLVED)
    client.force_login(agent.user)

    page = client.get(URL).text

    active = [overdue, soon, later, no_sla_urgent, no_sla_low]
    references = [t.reference for t in active]
    assert _row_order(page, references) == references
    # Pending comes after all the work that waits on me, under its own heading, marked as pending.
    assert page.index("Waiting on the customer") > page.index(f">{no_sla_low.reference}</a>")
    assert page.index(f">{pending.reference}</a>") > page.index("Waiting on the customer")
    assert 'class="work-row work-status-pending"' in page
    assert solved.subject not in page
    assert "My work (6 tickets)" in page


def test_sla_badge_in_words(client, agent, tenant_a):
    now = timezone.now()
    overdue = _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now - dt.timedelta(hours=2, minutes=5))
    _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now + dt.timedelta(minutes=30, seconds=30))
    _mine(make_ticket(tenant=tenant_a), agent, sla_due_at=now + dt.timedelta(hours=3, minutes=10))
    _mine(make_ticket(tenant=tenant_a), agent)
    client.force_login(agent.user)

    page = client.get(URL).text

    assert "Overdue by 2\xa0hours" in page
    assert "Due in 30\xa0minutes" in page
    assert "Due in 3\xa0hours" in page
    assert "No SLA" in page
    assert 'class="sla-badge sla-overdue"' in page
    assert 'class="sla-badge sla-soon"' in page
    assert 'class="sla-badge sla-ok"' in page
    assert 'class="sla-badge sla-none"' in page
    assert f'<time datetime="{timezone.localtime(overdue.sla_due_at).isoformat()}' in page


def test_empty_state(client, agent):
    client.force_login(agent.user)

    page = client.get(URL).text

    assert "My work (0 tickets)" in page
    assert "Nothing assigned to you right now." in page
    assert "No offers waiting for your answer." in page
    assert "Keyboard:" in page


def test_offers_listed_and_accept_assigns_and_redirects(client, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Angebot an Alice")
    item = _offer(ticket, agent)
    client.force_login(agent.user)

    page = client.get(URL).text
    assert "Offered to me (1)" in page
    assert f'id="offer-{item.pk}"' in page
    assert "Angebot an Alice" in page
    assert 'name="action" value="accept"' in page
    assert 'name="action" value="decline"' in page
    assert "csrfmiddlewaretoken" in page

    response = client.post(URL, {"action": "accept", "item": item.pk})

    assert response.status_code == 303
    assert response["Location"] == f"/desk/tickets/{ticket.reference}/"
    ticket.refresh_from_db()
    assert ticket.assignee_id == agent.pk
    assert not QueuedItem.objects.filter(pk=item.pk).exists()


def test_decline_removes_the_offer(client, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Nicht für mich")
    item = _offer(ticket, agent)
    client.force_login(agent.user)

    response = client.post(URL, {"action": "decline", "item": item.pk}, follow=True)

    assert response.redirect_chain == [(URL, 303)]
    assert "Offer declined" in response.text
    assert "Nicht für mich" not in response.text
    item.refresh_from_db()
    assert (item.state, item.offered_to_id, item.declined_by) == (QueuedItem.State.WAITING, None, [agent.pk])
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_someone_elses_offer_is_refused_and_nothing_changes(client, agent, tenant_a):
    colleague = make_agent(tenants=[tenant_a], email="carl@care.test")
    ticket = make_ticket(tenant=tenant_a)
    item = _offer(ticket, colleague)
    client.force_login(agent.user)

    for action in ("accept", "decline"):
        response = client.post(URL, {"action": action, "item": item.pk}, follow=True)
        assert response.status_code == 200
        assert "This offer is no longer open." in response.text
    item.refresh_from_db()
    assert (item.state, item.offered_to_id) == (QueuedItem.State.OFFERED, colleague.pk)
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


@pytest.mark.parametrize(
    "data",
    [
        {"action": "accept", "item": "abc"},
        {"action": "accept", "item": "999999"},
        {"action": "accept"},
        {"action": "explode", "item": "1"},
    ],
)
def test_bad_posts_give_a_message_not_an_error(client, agent, data):
    client.force_login(agent.user)

    response = client.post(URL, data, follow=True)

    assert response.status_code == 200
    assert 'class="work-message work-message-error"' in response.text


def test_an_expired_offer_is_refused_with_a_message(client, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    item = _offer(ticket, agent, seconds=-5)
    client.force_login(agent.user)

    assert f'id="offer-{item.pk}"' not in client.get(URL).text
    response = client.post(URL, {"action": "accept", "item": item.pk}, follow=True)

    assert response.status_code == 200
    assert "The offer timed out" in response.text
    ticket.refresh_from_db()
    assert ticket.assignee_id is None


def test_posts_need_the_csrf_token(agent, tenant_a):
    client = Client(enforce_csrf_checks=True)
    item = _offer(make_ticket(tenant=tenant_a), agent)
    client.force_login(agent.user)

    response = client.post(URL, {"action": "accept", "item": item.pk})

    assert response.status_code == 403
    item.refresh_from_db()
    assert item.state == QueuedItem.State.OFFERED


def test_portal_user_gets_403(client, portal_user):
    client.force_login(portal_user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"action": "accept", "item": "1"}).status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/desk/work/"


@pytest.mark.parametrize("user_fixture", ["supervisor", "admin_user"])
def test_supervisors_and_admins_may_open_it(client, request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    client.force_login(getattr(user, "user", user))
    assert client.get(URL).status_code == 200


def _fill(agent, tenants, count):
    now = timezone.now()
    for number in range(count):
        tenant = tenants[number % len(tenants)]
        ticket = _mine(make_ticket(tenant=tenant), agent, sla_due_at=now + dt.timedelta(minutes=number - 5))
        if number % 3 == 0:
            Ticket.objects.filter(pk=ticket.pk).update(status=Status.PENDING)
        offered = make_ticket(tenant=tenant)
        _offer(offered, agent)


def test_query_count_does_not_grow_with_the_tickets(
    client, two_tenant_agent, tenant_a, tenant_c, django_assert_num_queries
):
    agent = two_tenant_agent
    client.force_login(agent.user)
    _fill(agent, [tenant_a, tenant_c], 2)
    client.get(URL)  # warm up what is cached per process, not per request

    with CaptureQueriesContext(connection) as small:  # the count with 2 tickets and 2 offers
        page = client.get(URL).text
    assert "My work (2 tickets)" in page
    assert "Offered to me (2)" in page
    # Session, user, agent profile, authorised tenants, the tickets (tenant and customer joined),
    # the offers (ticket and tenant joined), my unread mentions (ticket, tenant, author, note joined).
    assert len(small.captured_queries) == 7

    _fill(agent, [tenant_a, tenant_c], 18)
    with django_assert_num_queries(len(small.captured_queries)):
        page = client.get(URL).text
    assert "My work (20 tickets)" in page
    assert "Offered to me (20)" in page
