"""The ticket page's actions panel: status, priority, tags, assignment, links and merge, each as a
fetch (JSON) and as a plain form post, with refusals, isolation and pinned query counts."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders

from care.desk.ticket_actions import MAX_TAGS, actions_context
from care.routing.models import RoutingDecision
from care.tickets.models import Interaction, Priority, TicketEvent, TicketLink
from care.tickets.services import ticket_assign, ticket_change_status, ticket_link, ticket_update
from care.tickets.status import Status
from tests.desk.conftest import page_url
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def act(ticket, action):
    return page_url(ticket, f"actions/{action}")


def post_json(client, ticket, action, **data):
    return client.post(act(ticket, action), data, **JSON)


# --- the panel on the page --------------------------------------------------------------------------


def test_panel_is_on_the_ticket_page_with_its_assets(client, agent, email_ticket):
    ticket_update(ticket=email_ticket, actor=None, tags=["Billing", "vip"])
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert 'id="ticket-actions"' in page
    assert 'src="/static/desk/ticket_actions.js"' in page
    assert 'href="/static/desk/ticket_actions.css"' in page
    assert finders.find("desk/ticket_actions.js")
    assert finders.find("desk/ticket_actions.css")
    # Status choices are the transitions allowed from "open", with the current one selected.
    assert '<option value="open" selected>Open</option>' in page
    assert '<option value="new"' not in page
    assert '<option value="solved">Solved</option>' in page
    assert 'data-tag="billing"' in page
    assert 'data-tag="vip"' in page
    assert '<label for="actions-tag">' in page
    assert '<label for="actions-status">' in page
    # Alice is the assignee already: she may give it back, not take it again.
    assert 'id="actions-assign-me"' not in page
    assert 'id="actions-unassign-me"' in page
    assert 'id="actions-assignee-select"' not in page  # plain agents do not assign others


def test_supervisor_sees_only_the_tenants_agents(client, supervisor, agent, outsider, email_ticket):
    client.force_login(supervisor.user)

    page = client.get(page_url(email_ticket)).text

    assert 'id="actions-assignee-select"' in page
    assert f'<option value="{agent.pk}" selected>' in page
    assert f'<option value="{supervisor.pk}">' in page
    select = page[page.index('id="actions-assignee-select"') :]
    select = select[: select.index("</select>")]
    assert f'<option value="{outsider.pk}"' not in select
    assert outsider.user.email not in page
    assert str(outsider.user) not in page
    assert 'id="actions-assign-me"' in page


def test_panel_context_costs_two_queries_whatever_the_numbers(
    tenant_a, supervisor, agent, email_ticket, django_assert_num_queries
):
    def count(user):
        ticket = type(email_ticket).objects.select_related("tenant", "assignee__user").get(pk=email_ticket.pk)
        with django_assert_num_queries(2):
            return actions_context(ticket=ticket, user=user)["actions"]

    few = count(supervisor.user)
    assert len(few["agents"]) == 2
    assert len(few["links"]) == 0
    for index in range(20):
        make_agent(tenants=[tenant_a], email=f"extra{index}@care.test")
        other = make_ticket(tenant=tenant_a, subject=f"Other {index}")
        ticket_link(source=email_ticket, target=other, kind=TicketLink.Kind.RELATED, actor=None)
        ticket_link(source=other, target=email_ticket, kind=TicketLink.Kind.FOLLOW_UP, actor=None)
    ticket_update(ticket=email_ticket, actor=None, tags=[f"tag{i}" for i in range(20)])

    many = count(supervisor.user)
    assert len(many["agents"]) == 22
    assert len(many["links"]) == 40
    assert len(many["tags"]) == 20
    assert count(agent.user)["me"] == agent.pk


def test_panel_json_for_the_script(client, agent, email_ticket, django_assert_num_queries):
    client.force_login(agent.user)
    client.get(page_url(email_ticket))  # session and user loaded once

    with django_assert_num_queries(6):  # session, user, my tenants, ticket, links, my agent
        response = client.get(page_url(email_ticket, "actions"), **JSON)

    assert response.status_code == 200
    data = response.json()
    assert data["ticket"]["status"] == "open"
    assert 'id="actions-status"' in data["html"]
    assert 'id="ticket-actions"' not in data["html"]  # the panel's inside only
    assert "<script" not in data["html"]


# --- status -------------------------------------------------------------------------------------------


def test_status_by_fetch(client, agent, email_ticket, django_assert_num_queries):
    client.force_login(agent.user)

    response = post_json(client, email_ticket, "status", status="pending")

    assert response.status_code == 200
    assert response.json()["ticket"]["status"] == "pending"
    assert '<option value="pending" selected>' in response.json()["html"]
    email_ticket.refresh_from_db()
    assert email_ticket.status == Status.PENDING
    assert TicketEvent.objects.filter(ticket=email_ticket, kind="status", actor=agent.user).exists()


def test_status_by_form_post_redirects_to_the_page(client, agent, email_ticket):
    client.force_login(agent.user)

    response = client.post(act(email_ticket, "status"), {"status": "solved"})

    assert response.status_code == 303
    assert response["Location"] == f"/desk/tickets/{email_ticket.reference}/#ticket-actions"
    email_ticket.refresh_from_db()
    assert email_ticket.status == Status.SOLVED


@pytest.mark.parametrize("value", ["bogus", "", "new", "x" * 5000])
def test_status_refusals_by_fetch(client, agent, email_ticket, value):
    client.force_login(agent.user)

    response = post_json(client, email_ticket, "status", status=value)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("A ticket cannot go from Open to New") if value == "new" else error
    email_ticket.refresh_from_db()
    assert email_ticket.status == Status.OPEN


def test_status_refusal_by_form_post_shows_the_page_with_the_message(client, agent, email_ticket):
    ticket_change_status(ticket=email_ticket, status=Status.CLOSED, actor=None)
    client.force_login(agent.user)

    response = client.post(act(email_ticket, "status"), {"status": "open"})

    assert response.status_code == 400
    assert "A ticket cannot go from Closed to Open" in response.text
    assert 'id="ticket-actions"' in response.text


# --- priority -----------------------------------------------------------------------------------------


def test_priority_by_fetch_and_junk(client, agent, email_ticket):
    client.force_login(agent.user)

    ok = post_json(client, email_ticket, "priority", priority=str(Priority.URGENT))
    junk = [post_json(client, email_ticket, "priority", priority=v) for v in ("99", "-1", "high", "", "٣")]

    assert ok.status_code == 200
    assert ok.json()["ticket"]["priority"] == Priority.URGENT
    assert [r.status_code for r in junk] == [400] * 5
    assert junk[0].json() == {"error": "Choose one of the priorities offered."}
    email_ticket.refresh_from_db()
    assert email_ticket.priority == Priority.URGENT


# --- tags ---------------------------------------------------------------------------------------------


def test_tags_are_added_normalised_and_removed(client, agent, email_ticket):
    client.force_login(agent.user)

    added = post_json(client, email_ticket, "tag-add", tag="  Rück  Ruf ")
    again = post_json(client, email_ticket, "tag-add", tag="rück ruf")
    second = client.post(act(email_ticket, "tag-add"), {"tag": "VIP"})

    assert added.status_code == 200
    assert added.json()["ticket"]["tags"] == ["rück ruf"]
    assert again.json()["ticket"]["tags"] == ["rück ruf"]
    assert second.status_code == 303
    email_ticket.refresh_from_db()
    assert email_ticket.tags == ["rück ruf", "vip"]

    removed = post_json(client, email_ticket, "tag-remove", tag="VIP")

    assert removed.json()["ticket"]["tags"] == ["rück ruf"]
    assert 'data-tag="vip"' not in removed.json()["html"]


@pytest.mark.parametrize(
    ("tag", "message"), [("x" * 500, "at most 50 characters"), ("   ", "Enter a tag first.")]
)
def test_tag_refusals(client, agent, email_ticket, tag, message):
    client.force_login(agent.user)

    response = post_json(client, email_ticket, "tag-add", tag=tag)
    page = client.post(act(email_ticket, "tag-add"), {"tag": tag})

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert page.status_code == 400
    assert message in page.text


def test_tag_count_is_bounded(client, agent, email_ticket):
    ticket_update(ticket=email_ticket, actor=None, tags=[f"t{i}" for i in range(MAX_TAGS)])
    client.force_login(agent.user)

    response = post_json(client, email_ticket, "tag-add", tag="one-more")

    assert response.status_code == 400
    assert response.json()["error"] == f"A ticket has at most {MAX_TAGS} tags."


# --- assignment ---------------------------------------------------------------------------------------


def test_agent_assigns_to_self_and_routing_logs_it(client, tenant_a, email_ticket):
    colleague = make_agent(tenants=[tenant_a], email="bea@care.test")
    client.force_login(colleague.user)

    response = post_json(client, email_ticket, "assign", to="me")

    assert response.status_code == 200
    assert response.json()["ticket"]["assignee"]["id"] == colleague.pk
    decision = RoutingDecision.objects.filter(ticket=email_ticket).latest("id")
    assert (decision.kind, decision.agent_id, decision.actor_id) == (
        RoutingDecision.Kind.MANUAL,
        colleague.pk,
        colleague.user.pk,
    )


def test_agent_gives_own_ticket_back_but_cannot_assign_others(client, agent, supervisor, email_ticket):
    client.force_login(agent.user)

    other = post_json(client, email_ticket, "assign", to=str(supervisor.pk))
    back = post_json(client, email_ticket, "assign", to="none")

    assert other.status_code == 400
    assert other.json()["error"] == "Only supervisors and administrators assign work to others."
    assert back.status_code == 200
    assert back.json()["ticket"]["assignee"] is None


def test_agent_cannot_unassign_someone_else(client, tenant_a, email_ticket):
    colleague = make_agent(tenants=[tenant_a], email="bea@care.test")
    client.force_login(colleague.user)

    response = post_json(client, email_ticket, "assign", to="none")

    assert response.status_code == 400
    assert response.json()["error"] == "Only supervisors unassign someone else's ticket."


def test_supervisor_assigns_through_routing_and_returns_to_the_queue(
    client, supervisor, tenant_a, email_ticket
):
    bea = make_agent(tenants=[tenant_a], email="bea@care.test")
    client.force_login(supervisor.user)

    assigned = post_json(client, email_ticket, "assign", to=str(bea.pk))
    returned = client.post(act(email_ticket, "assign"), {"to": "none"})

    assert assigned.status_code == 200
    assert assigned.json()["ticket"]["assignee"]["id"] == bea.pk
    assert returned.status_code == 303
    email_ticket.refresh_from_db()
    assert email_ticket.assignee_id is None
    kinds = list(
        RoutingDecision.objects.filter(ticket=email_ticket, actor=supervisor.user).values_list(
            "kind", flat=True
        )
    )
    assert RoutingDecision.Kind.MANUAL in kinds
    assert RoutingDecision.Kind.RETURNED in kinds


@pytest.mark.parametrize("to", ["outsider", "12345678", "", "someone", "-3"])
def test_supervisor_cannot_assign_outside_the_tenant_or_junk(client, supervisor, outsider, email_ticket, to):
    client.force_login(supervisor.user)
    value = str(outsider.pk) if to == "outsider" else to

    response = post_json(client, email_ticket, "assign", to=value)

    assert response.status_code == 400
    assert outsider.user.email not in response.text
    email_ticket.refresh_from_db()
    assert email_ticket.assignee_id != outsider.pk


def test_assign_to_me_needs_an_authorisation(client, admin_user, email_ticket):
    client.force_login(admin_user)  # sees every tenant, but is no agent of it

    response = post_json(client, email_ticket, "assign", to="me")

    assert response.status_code == 400
    assert response.json()["error"] == "You are not an agent authorised for this client."


def test_closed_ticket_cannot_be_assigned(client, supervisor, email_ticket):
    ticket_change_status(ticket=email_ticket, status=Status.CLOSED, actor=None)
    client.force_login(supervisor.user)

    response = post_json(client, email_ticket, "assign", to="me")

    assert response.status_code == 400
    assert response.json()["error"] == "A closed ticket cannot be assigned."


# --- links --------------------------------------------------------------------------------------------


def test_link_unlink_and_both_directions(client, agent, tenant_a, email_ticket):
    other = make_ticket(tenant=tenant_a, subject="Zweiter Zähler")
    follow = make_ticket(tenant=tenant_a, subject="Nachfrage")
    ticket_link(source=follow, target=email_ticket, kind=TicketLink.Kind.FOLLOW_UP, actor=None)
    client.force_login(agent.user)

    linked = post_json(client, email_ticket, "link", target=other.reference.lower())

    assert linked.status_code == 200
    html = linked.json()["html"]
    assert f'href="/desk/tickets/{other.reference}/"' in html
    assert "Zweiter Zähler" in html
    assert "Related to" in html
    assert "Followed up by" in html
    assert "Nachfrage" in html
    on_other = client.get(page_url(other)).text
    assert f'href="/desk/tickets/{email_ticket.reference}/"' in on_other  # listed from the other side
    link = TicketLink.objects.get(source=email_ticket, target=other)

    again = post_json(client, other, "link", target=email_ticket.reference)
    assert again.status_code == 400
    assert "already linked" in again.json()["error"]

    unlinked = client.post(act(other, "unlink"), {"link": str(link.pk)})  # from the other side

    assert unlinked.status_code == 303
    assert not TicketLink.objects.filter(pk=link.pk).exists()
    event = TicketEvent.objects.filter(ticket=email_ticket, kind="linked").latest("id")
    assert event.changes == {"link": [{"kind": "related", "ticket": other.pk}, None]}


@pytest.mark.parametrize("reference", ["", "NOPE-1", "ENN-99999", "x" * 300, "ENN-abc", "#"])
def test_link_refusals_for_bad_references(client, agent, email_ticket, reference):
    client.force_login(agent.user)

    response = post_json(client, email_ticket, "link", target=reference)

    assert response.status_code == 400
    assert response.json()["error"]


def test_link_by_number_means_this_tenant_and_not_to_itself(client, agent, tenant_a, email_ticket):
    other = make_ticket(tenant=tenant_a)
    client.force_login(agent.user)

    by_number = post_json(client, email_ticket, "link", target=str(other.number))
    itself = post_json(client, email_ticket, "link", target=email_ticket.reference)

    assert by_number.status_code == 200
    assert TicketLink.objects.filter(source=email_ticket, target=other).exists()
    assert itself.status_code == 400
    assert itself.json()["error"] == "A ticket cannot be linked to itself."


def test_unlink_refusals(client, agent, tenant_a, tenant_b, email_ticket):
    stranger = make_ticket(tenant=tenant_a)
    elsewhere = make_ticket(tenant=tenant_a)
    foreign = ticket_link(source=stranger, target=elsewhere, kind=TicketLink.Kind.RELATED, actor=None)
    client.force_login(agent.user)

    for value in ("", "abc", str(foreign.pk), "999999"):
        response = post_json(client, email_ticket, "unlink", link=value)
        assert response.status_code == 400, value
        assert response.json()["error"] == "That link is not on this ticket (any more)."
    assert TicketLink.objects.filter(pk=foreign.pk).exists()


# --- merge --------------------------------------------------------------------------------------------


def test_merge_asks_first_then_merges_and_shows_the_banner(client, agent, tenant_a, email_ticket):
    target = make_ticket(tenant=tenant_a, subject="Hauptticket")
    client.force_login(agent.user)

    asked = post_json(client, email_ticket, "merge", target=target.reference)

    assert asked.status_code == 200
    assert asked.json()["confirm"] is True
    assert 'id="actions-merge-confirm"' in asked.json()["html"]
    assert f"into {target.reference} (Hauptticket)?" in asked.json()["html"]
    assert Interaction.objects.filter(ticket=email_ticket).count() == 3  # nothing moved yet

    done = post_json(client, email_ticket, "merge", target=target.reference, confirm="1")

    assert done.status_code == 200
    assert done.json()["ticket"]["status"] == "closed"
    again = post_json(client, email_ticket, "merge", target=target.reference, confirm="1")  # double click
    assert again.status_code == 200
    assert TicketLink.objects.filter(kind="merged").count() == 1
    assert Interaction.objects.filter(ticket=target).count() == 3
    page = client.get(page_url(email_ticket)).text
    assert 'id="ticket-merged-banner"' in page
    assert f'href="/desk/tickets/{target.reference}/">{target.reference} Hauptticket</a>' in page
    target_page = client.get(page_url(target)).text
    assert "Merged from" in target_page
    assert email_ticket.reference in target_page


def test_merge_by_form_post_confirms_on_the_page(client, agent, tenant_a, email_ticket):
    target = make_ticket(tenant=tenant_a, subject="Hauptticket")
    client.force_login(agent.user)

    asked = client.post(act(email_ticket, "merge"), {"target": target.reference})
    done = client.post(act(email_ticket, "merge"), {"target": target.reference, "confirm": "1"})

    assert asked.status_code == 200
    assert 'id="actions-merge-yes"' in asked.text
    assert done.status_code == 303
    assert TicketLink.objects.filter(source=email_ticket, target=target, kind="merged").exists()


def test_merge_refusals(client, agent, tenant_a, tenant_b, email_ticket):
    closed = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=closed, status=Status.CLOSED, actor=None)
    foreign = make_ticket(tenant=tenant_b)
    client.force_login(agent.user)

    cases = {
        email_ticket.reference: "A ticket cannot be merged into itself.",
        closed.reference: "is closed; a ticket cannot be merged into a closed one.",
        foreign.reference: f"There is no ticket {foreign.reference} among yours.",  # not confirmed
        "NOPE-1": "There is no ticket NOPE-1 among yours.",
        "": "Enter a ticket reference",
    }
    for reference, message in cases.items():
        response = post_json(client, email_ticket, "merge", target=reference, confirm="1")
        assert response.status_code == 400, reference
        assert message in response.json()["error"], reference
    assert not TicketLink.objects.filter(kind="merged").exists()


def test_admin_seeing_both_tenants_cannot_merge_or_link_across(client, admin_user, tenant_b, email_ticket):
    foreign = make_ticket(tenant=tenant_b)
    client.force_login(admin_user)

    merge = post_json(client, email_ticket, "merge", target=foreign.reference, confirm="1")
    link = post_json(client, email_ticket, "link", target=foreign.reference)

    assert merge.status_code == 400
    assert merge.json()["error"] == "Tickets of different clients cannot be merged."
    assert link.status_code == 400
    assert link.json()["error"] == "Tickets of different clients cannot be linked."
    assert not TicketLink.objects.exists()


# --- isolation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("status", {"status": "solved"}),
        ("priority", {"priority": "4"}),
        ("tag-add", {"tag": "x"}),
        ("tag-remove", {"tag": "x"}),
        ("assign", {"to": "me"}),
        ("merge", {"target": "ENN-1"}),
        ("link", {"target": "ENN-1"}),
        ("unlink", {"link": "1"}),
    ],
)
def test_outsider_gets_404_and_portal_user_403(client, outsider, portal_user, email_ticket, action, data):
    client.force_login(outsider.user)
    assert client.post(act(email_ticket, action), data, **JSON).status_code == 404
    assert client.get(page_url(email_ticket, "actions"), **JSON).status_code == 404
    client.force_login(portal_user)
    assert client.post(act(email_ticket, action), data, **JSON).status_code == 403
    assert client.get(page_url(email_ticket, "actions"), **JSON).status_code == 403
    email_ticket.refresh_from_db()
    assert (email_ticket.status, email_ticket.priority, email_ticket.tags) == (
        Status.OPEN,
        Priority.NORMAL,
        [],
    )


def test_unknown_action_and_get_are_refused(client, agent, email_ticket):
    client.force_login(agent.user)

    assert client.post(act(email_ticket, "explode"), {}).status_code == 404
    assert client.get(act(email_ticket, "status")).status_code == 405


def test_anonymous_is_sent_to_log_in(client, email_ticket):
    response = client.post(act(email_ticket, "status"), {"status": "solved"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- query counts of every action ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data", "queries"),
    [
        ("status", {"status": "pending"}, 16),
        ("priority", {"priority": "3"}, 19),
        ("tag-add", {"tag": "neu"}, 19),
        ("tag-remove", {"tag": "alt"}, 19),
        ("assign", {"to": "me"}, 19),
        ("assign", {"to": "AGENT"}, 23),
        ("assign", {"to": "none"}, 24),
        ("link", {"target": "OTHER"}, 14),
        ("unlink", {"link": "LINK"}, 10),
        ("merge", {"target": "OTHER", "confirm": "1"}, 33),
    ],
)
def test_action_query_counts_do_not_grow(
    client, supervisor, tenant_a, email_ticket, django_assert_num_queries, action, data, queries
):
    """Each POST costs the same with 1 or 20 agents, links and tags on the ticket's tenant."""

    def measure(ticket, other, link, colleague):
        client.force_login(supervisor.user)
        tokens = {"OTHER": other.reference, "LINK": str(link.pk), "AGENT": str(colleague.pk)}
        posted = {key: tokens.get(value, value) for key, value in data.items()}
        with django_assert_num_queries(queries):
            response = post_json(client, ticket, action, **posted)
        assert response.status_code == 200, response.content

    def prepared(extra):
        ticket = make_ticket(tenant=tenant_a, tags=["alt"] + [f"t{i}" for i in range(extra)])
        ticket_assign(ticket=ticket, agent=make_agent(tenants=[tenant_a]), actor=None)
        for _index in range(extra):
            ticket_link(source=ticket, target=make_ticket(tenant=tenant_a), kind="related", actor=None)
        other = make_ticket(tenant=tenant_a)
        link = ticket_link(source=make_ticket(tenant=tenant_a), target=ticket, kind="related", actor=None)
        return ticket, other, link, make_agent(tenants=[tenant_a])

    measure(*prepared(0))
    for index in range(20):
        make_agent(tenants=[tenant_a], email=f"many{index}@care.test")
    measure(*prepared(20))
