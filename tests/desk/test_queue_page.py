"""The desk's Queues page: filters, urgency order, pages, bulk actions, tenant isolation, queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.accounts.models import Role
from care.core.channels import Channel
from care.desk.queue_page import PAGE_SIZE
from care.tickets.models import Priority, Ticket, TicketEvent
from care.tickets.services import ticket_assign, ticket_change_status
from tests.factories.accounts import make_agent
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

URL = "/desk/queue/"


def _due(ticket, delta, now=None):
    now = now or timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=None if delta is None else now + delta)
    ticket.refresh_from_db()
    return ticket


def _refs(response):
    """The ticket references listed, in page order."""
    return [row["ticket"].reference for row in response.context["rows"]]


def _subjects(response):
    return [row["ticket"].subject for row in response.context["rows"]]


@pytest.fixture
def mixed(tenant_a, agent):
    """Tickets of A that differ in one filterable fact each."""
    return {
        "email": make_ticket(tenant=tenant_a, subject="email de", language="de", channel=Channel.EMAIL),
        "phone": make_ticket(tenant=tenant_a, subject="phone en", language="en", channel=Channel.PHONE),
        "urgent": make_ticket(tenant=tenant_a, subject="urgent", language="de", priority=Priority.URGENT),
        "mine": ticket_assign(ticket=make_ticket(tenant=tenant_a, subject="mine"), agent=agent, actor=None),
        "pending": ticket_change_status(
            ticket=make_ticket(tenant=tenant_a, subject="pending"), status="pending", actor=None
        ),
    }


# --- access ----------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_portal_user_gets_403(client, portal_user, tenant_a):
    make_ticket(tenant=tenant_a, subject="Secret matter")
    client.force_login(portal_user)
    response = client.get(URL)
    assert response.status_code == 403
    assert "Secret matter" not in response.text
    assert client.post(URL, {"action": "priority", "new_priority": "4"}).status_code == 403


def test_agent_sees_only_their_tenants_even_when_asking_for_another(client, agent, tenant_a, tenant_b):
    own = make_ticket(tenant=tenant_a, subject="Energie matter")
    make_ticket(tenant=tenant_b, subject="Telco matter")
    client.force_login(agent.user)

    response = client.get(URL)
    assert _refs(response) == [own.reference]
    assert "Telco" not in response.text  # neither the ticket nor the tenant in the filter

    foreign = client.get(URL, {"tenant": tenant_b.pk})
    missing = client.get(URL, {"tenant": 999_999})
    assert foreign.status_code == missing.status_code == 200
    assert "Telco matter" not in foreign.text
    # Another tenant's id reads exactly like an id that does not exist.
    assert foreign.context["filters"].notes == missing.context["filters"].notes != []


def test_supervisor_and_admin_see_the_page(client, supervisor, admin_user, tenant_a, tenant_b):
    make_ticket(tenant=tenant_a, subject="Energie matter")
    make_ticket(tenant=tenant_b, subject="Telco matter")
    client.force_login(supervisor.user)
    assert _subjects(client.get(URL)) == ["Energie matter"]
    client.force_login(admin_user)
    assert sorted(_subjects(client.get(URL))) == ["Energie matter", "Telco matter"]


# --- filters ---------------------------------------------------------------------------------------


def test_default_shows_new_and_open_only(client, agent, mixed):
    client.force_login(agent.user)
    assert "pending" not in _subjects(client.get(URL))
    assert _subjects(client.get(URL, {"status": "pending"})) == ["pending"]
    both = _subjects(client.get(URL, {"status": ["pending", "open"]}))
    assert sorted(both) == ["mine", "pending"]


def test_filter_by_tenant(client, tenant_a, tenant_b):
    pooled = make_agent(tenants=[tenant_a, tenant_b], email="pool@care.test")
    make_ticket(tenant=tenant_a, subject="A matter")
    make_ticket(tenant=tenant_b, subject="B matter")
    client.force_login(pooled.user)
    assert sorted(_subjects(client.get(URL))) == ["A matter", "B matter"]
    assert _subjects(client.get(URL, {"tenant": tenant_b.pk})) == ["B matter"]


def test_filter_by_language_channel_priority(client, agent, mixed):
    client.force_login(agent.user)
    assert _subjects(client.get(URL, {"language": "en"})) == ["phone en"]
    assert _subjects(client.get(URL, {"channel": "phone"})) == ["phone en"]
    assert _subjects(client.get(URL, {"priority": str(Priority.URGENT)})) == ["urgent"]
    assert _subjects(client.get(URL, {"language": "de", "priority": str(Priority.URGENT)})) == ["urgent"]


def test_filter_by_assignee(client, agent, mixed):
    client.force_login(agent.user)
    assert _subjects(client.get(URL, {"assignee": "me"})) == ["mine"]
    assert "mine" not in _subjects(client.get(URL, {"assignee": "unassigned"}))
    assert len(_subjects(client.get(URL, {"assignee": "unassigned"}))) == 3


def test_filter_by_sla_state(client, agent, tenant_a):
    overdue = _due(make_ticket(tenant=tenant_a, subject="overdue"), dt.timedelta(minutes=-5))
    _due(make_ticket(tenant=tenant_a, subject="soon"), dt.timedelta(minutes=30))
    _due(make_ticket(tenant=tenant_a, subject="later"), dt.timedelta(hours=5))
    _due(make_ticket(tenant=tenant_a, subject="none"), None)
    client.force_login(agent.user)
    for state in ("overdue", "soon", "later", "none"):
        assert _subjects(client.get(URL, {"sla": state})) == [state]
    page = client.get(URL).text
    assert page.count('class="sla-badge sla-overdue"') == 1
    assert page.count('class="sla-badge sla-soon"') == 1
    assert page.count("<time datetime=") == 3
    assert overdue.reference in page


@pytest.mark.parametrize(
    "params",
    [
        {"tenant": "abc"},
        {"language": "xx"},
        {"channel": "pigeon"},
        {"status": "bogus"},
        {"priority": "9"},
        {"priority": "²"},
        {"sla": "yesterday"},
        {"assignee": "bob"},
        {"page": "-1"},
        {"page": "abc"},
    ],
)
def test_invalid_filters_are_ignored_with_a_note(client, agent, tenant_a, params):
    make_ticket(tenant=tenant_a, subject="still listed")
    client.force_login(agent.user)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert response.context["filters"].notes
    assert 'class="queue-notes"' in response.text
    assert _subjects(response) == ["still listed"]


# --- order and pages -------------------------------------------------------------------------------


def test_most_urgent_first(client, agent, tenant_a):
    now = timezone.now()
    _due(make_ticket(tenant=tenant_a, subject="no sla", priority=Priority.URGENT), None)
    _due(make_ticket(tenant=tenant_a, subject="soon low", priority=Priority.LOW), dt.timedelta(hours=1), now)
    _due(
        make_ticket(tenant=tenant_a, subject="soon urgent", priority=Priority.URGENT),
        dt.timedelta(hours=1),
        now,
    )
    _due(make_ticket(tenant=tenant_a, subject="late", priority=Priority.LOW), dt.timedelta(hours=-1))
    client.force_login(agent.user)
    assert _subjects(client.get(URL)) == ["late", "soon urgent", "soon low", "no sla"]


def test_pages_of_fifty_cover_every_ticket_once(client, agent, tenant_a):
    tickets = [make_ticket(tenant=tenant_a, subject=f"t{i}") for i in range(PAGE_SIZE + 7)]
    client.force_login(agent.user)

    first = client.get(URL, {"channel": "email", "language": "zz"})  # an ignored value is not carried on
    assert len(first.context["rows"]) == PAGE_SIZE
    assert first.context["next_query"] == "channel=email&page=2"
    assert 'rel="next"' in first.text

    second = client.get(URL + "?" + first.context["next_query"])
    assert len(second.context["rows"]) == 7
    assert second.context["next_query"] is None
    assert 'rel="prev"' in second.text
    seen = _refs(first) + _refs(second)
    assert sorted(seen) == sorted(t.reference for t in tickets)
    assert len(set(seen)) == len(tickets)


# --- bulk actions ----------------------------------------------------------------------------------


def _bulk(client, tickets, **data):
    return client.post(URL, {"ticket": [t.pk for t in tickets], **data})


def test_supervisor_bulk_assigns(client, supervisor, agent, tenant_a):
    tickets = [make_ticket(tenant=tenant_a, subject=f"t{i}") for i in range(3)]
    client.force_login(supervisor.user)

    response = _bulk(client, tickets, action="assign", agent=agent.pk, query="channel=email&bogus=1&page=2")

    assert response.status_code == 303
    assert response["Location"] == URL + "?channel=email&page=2"
    assert {t.assignee_id for t in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {agent.pk}
    page = client.get(response["Location"])
    assert "3 tickets assigned." in page.text


def test_bulk_assign_to_an_agent_not_authorised_for_the_tenant_is_refused(
    client, tenant_a, tenant_b, outsider
):
    boss = make_agent(tenants=[tenant_a, tenant_b], email="boss@care.test", role=Role.SUPERVISOR)
    ticket_a = make_ticket(tenant=tenant_a, subject="A matter")
    ticket_b = make_ticket(tenant=tenant_b, subject="B matter")
    client.force_login(boss.user)

    response = _bulk(client, [ticket_a, ticket_b], action="assign", agent=outsider.pk)

    ticket_a.refresh_from_db()
    ticket_b.refresh_from_db()
    assert ticket_a.assignee_id is None  # the outsider works B only
    assert ticket_b.assignee_id == outsider.pk
    text = client.get(response["Location"]).text
    assert ticket_a.reference in text
    assert "not authorised" in text


def test_supervisor_bulk_changes_status_and_lists_the_refused(client, supervisor, tenant_a):
    ok = make_ticket(tenant=tenant_a, subject="ok")
    closed = ticket_change_status(
        ticket=make_ticket(tenant=tenant_a, subject="closed"), status="closed", actor=None
    )
    client.force_login(supervisor.user)

    response = _bulk(client, [ok, closed], action="status", new_status="pending")

    assert response.status_code == 303
    ok.refresh_from_db()
    closed.refresh_from_db()
    assert ok.status == "pending"
    assert closed.status == "closed"
    text = client.get(response["Location"]).text
    assert "Status changed on 1 ticket." in text
    assert f"{closed.reference}: A ticket cannot go from Closed" in text


def test_supervisor_bulk_changes_priority(client, supervisor, tenant_a):
    tickets = [make_ticket(tenant=tenant_a, subject=f"t{i}") for i in range(2)]
    client.force_login(supervisor.user)
    _bulk(client, tickets, action="priority", new_priority=str(Priority.HIGH))
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).values_list("priority", flat=True)) == {
        Priority.HIGH
    }


def test_plain_agent_bulk_post_is_403_and_changes_nothing(client, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="t")
    events = TicketEvent.objects.count()
    client.force_login(agent.user)

    page = client.get(URL)
    assert 'name="action"' not in page.text
    assert 'type="checkbox" name="ticket"' not in page.text
    response = _bulk(client, [ticket], action="priority", new_priority=str(Priority.URGENT))

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.priority == Priority.NORMAL
    assert TicketEvent.objects.count() == events


def test_foreign_ticket_in_a_bulk_post_is_not_touched(client, supervisor, tenant_a, tenant_b):
    own = make_ticket(tenant=tenant_a, subject="own")
    foreign = make_ticket(tenant=tenant_b, subject="foreign")
    client.force_login(supervisor.user)

    response = _bulk(client, [own, foreign], action="priority", new_priority=str(Priority.URGENT))

    own.refresh_from_db()
    foreign.refresh_from_db()
    assert own.priority == Priority.URGENT
    assert foreign.priority == Priority.NORMAL
    assert not foreign.events.exclude(kind=TicketEvent.Kind.CREATED).exists()
    text = client.get(response["Location"]).text
    assert "1 selected ticket was not found" in text
    assert foreign.reference not in text


@pytest.mark.parametrize(
    "data",
    [
        {"action": "priority", "new_priority": "7", "ticket": "1"},
        {"action": "status", "new_status": "gone", "ticket": "1"},
        {"action": "assign", "agent": "abc", "ticket": "1"},
        {"action": "explode", "ticket": "1"},
        {"action": "priority", "new_priority": "3", "ticket": "x"},
        {"action": "priority", "new_priority": "3"},
    ],
)
def test_bad_bulk_posts_are_explained_not_500(client, supervisor, tenant_a, data):
    ticket = make_ticket(tenant=tenant_a, subject="t")
    data = {**data, "ticket": str(ticket.pk) if data.get("ticket") == "1" else data.get("ticket", [])}
    client.force_login(supervisor.user)
    response = client.post(URL, data)
    assert response.status_code == 303
    assert "queue-message-error" in client.get(response["Location"]).text
    ticket.refresh_from_db()
    assert ticket.priority == Priority.NORMAL
    assert ticket.status == "new"


def test_bulk_post_needs_csrf(supervisor, tenant_a):
    from django.test import Client

    ticket = make_ticket(tenant=tenant_a, subject="t")
    client = Client(enforce_csrf_checks=True)
    client.force_login(supervisor.user)
    response = client.post(URL, {"ticket": ticket.pk, "action": "priority", "new_priority": "4"})
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.priority == Priority.NORMAL


# --- queries ---------------------------------------------------------------------------------------


def _tickets(tenant, count, assignee):
    for i in range(count):
        ticket = make_ticket(tenant=tenant, subject=f"q{i}", priority=Priority.values[i % 4])
        _due(ticket, None if i % 3 == 0 else dt.timedelta(minutes=i * 7 - 60))
        if i % 2:
            ticket_assign(ticket=ticket, agent=assignee, actor=None)


@pytest.mark.parametrize(
    ("who", "queries"),
    [
        # session, user, the user's tenants, the tenant filter's tenants, the tickets
        ("agent", 5),
        # ... and the agents a supervisor may assign to
        ("supervisor", 6),
    ],
)
def test_queries_do_not_grow_with_the_rows(
    client, agent, supervisor, tenant_a, django_assert_num_queries, who, queries
):
    user = agent.user if who == "agent" else supervisor.user
    client.force_login(user)
    _tickets(tenant_a, 3, agent)
    with django_assert_num_queries(queries):
        response = client.get(URL)
    assert len(response.context["rows"]) == 3

    _tickets(tenant_a, 27, agent)
    with django_assert_num_queries(queries):
        response = client.get(URL, {"tenant": tenant_a.pk, "assignee": ""})
    assert len(response.context["rows"]) == 30


def test_tenant_colour_and_links_are_shown(client, agent, tenant_a):
    tenant_a.colour = "#0f766e"
    tenant_a.save(update_fields=["colour"])
    ticket = make_ticket(tenant=tenant_a, subject="coloured")
    client.force_login(agent.user)
    text = client.get(URL).text
    assert "background: #0f766e" in text
    assert f'href="/desk/tickets/{ticket.reference}/"' in text
    assert "j and k" in text


def test_other_tenants_never_listed_for_a_pooled_agent_filter(client, tenant_a, tenant_b):
    tenant_c = TenantFactory(code="KOOP", slug="koop", name="Kooplust")
    pooled = make_agent(tenants=[tenant_a, tenant_b], email="pool@care.test")
    make_ticket(tenant=tenant_c, subject="C matter")
    client.force_login(pooled.user)
    response = client.get(URL, {"tenant": tenant_c.pk})
    assert "C matter" not in response.text
    assert "Kooplust" not in response.text


# --- the merged read across tenants (queue_page._merged) ---------------------------------------------


def _spread(tenants, per_tenant):
    """Tickets in every tenant with interleaved due times, priorities and statuses."""
    now = timezone.now()
    for index in range(per_tenant):
        for offset, tenant in enumerate(tenants):
            ticket = make_ticket(
                tenant=tenant, subject=f"{tenant.code}-{index}", priority=Priority.values[index % 4]
            )
            minutes = (index * len(tenants) + offset) * 5 - 200
            _due(ticket, None if index % 7 == 3 else dt.timedelta(minutes=minutes), now)
            if index % 5 == 4:
                ticket_change_status(ticket=ticket, status="pending", actor=None)


def _plain_order(user, params):
    """The order the page must show: one plain query over the user's tickets, no merging."""
    from django.http import QueryDict

    from care.desk.queue_page import parse_filters, queue_page_of, visible_tenants

    filters = parse_filters(QueryDict(params), visible_tenants(user=user))
    rows, has_next = queue_page_of(user=user, filters=filters, now=timezone.now())
    return [ticket.reference for ticket in rows], has_next


@pytest.mark.parametrize("who", ["lead", "admin"])
@pytest.mark.parametrize(
    "params",
    [
        "",
        "page=2",
        "status=pending",
        "status=new&status=pending",
        "sla=overdue",
        "priority=4",
        "assignee=unassigned&page=2",
    ],
)
def test_merged_queue_across_tenants_is_the_plain_queue(client, tenant_a, tenant_b, admin_user, who, params):
    # An inactive tenant: its tickets are in an administrator's queue (who sees every tenant), not in
    # an authorised agent's (whose visible tenants are the active ones); merged as the plain query is.
    third = TenantFactory(name="Wasser West", slug="wasser-west", code="WAW", is_active=False)
    lead = make_agent(tenants=[tenant_a, tenant_b, third], role=Role.SUPERVISOR, email="lead@care.test")
    _spread([tenant_a, tenant_b, third], PAGE_SIZE // 2 + 15)  # over a page for two tenants, too
    user = lead.user if who == "lead" else admin_user
    client.force_login(user)

    response = client.get(f"{URL}?{params}")

    expected, has_next = _plain_order(user, params)
    assert expected  # the case has rows to order
    assert _refs(response) == expected
    assert (response.context["next_query"] is not None) == has_next
    if params == "":
        tenants = {ref.split("-")[0] for ref in expected}
        assert tenants == ({"ENN", "TSU"} if who == "lead" else {"ENN", "TSU", "WAW"})


def test_merged_queue_keeps_other_tenants_out(client, tenant_a, tenant_b, admin_user):
    _spread([tenant_a, tenant_b], 4)
    lead = make_agent(tenants=[tenant_a], role=Role.SUPERVISOR, email="lead@care.test")
    client.force_login(lead.user)

    refs = _refs(client.get(URL))

    assert refs
    assert all(ref.startswith("ENN-") for ref in refs)
    client.force_login(admin_user)
    refs = _refs(client.get(URL))
    assert {ref.split("-")[0] for ref in refs} == {"ENN", "TSU"}


def test_merged_queue_queries_do_not_grow_with_tenants(client, tenant_a, tenant_b, django_assert_num_queries):
    lead = make_agent(tenants=[tenant_a, tenant_b], role=Role.SUPERVISOR, email="lead@care.test")
    _spread([tenant_a, tenant_b], 2)
    client.force_login(lead.user)
    # session, user, the user's tenants, the visible tenants, the tickets, the assignable agents
    with django_assert_num_queries(6):
        client.get(URL)
    more = [TenantFactory(name=f"More {i}", slug=f"more-{i}", code=f"MO{i}") for i in range(4)]
    for tenant in more:
        lead.authorisations.create(tenant=tenant)
    _spread(more, 3)
    with django_assert_num_queries(6):
        response = client.get(URL)
    assert len(response.context["rows"]) == Ticket.objects.filter(status="new").count() == 16


@pytest.mark.parametrize("params", ["", "status=pending", "status=new&status=pending"])
def test_merged_queue_of_an_agent_without_tenants_is_empty(client, tenant_a, params):
    make_ticket(tenant=tenant_a, subject="not yours")
    loner = make_agent(tenants=[], email="loner@care.test")
    client.force_login(loner.user)

    response = client.get(f"{URL}?{params}")

    assert response.status_code == 200
    assert _refs(response) == []
