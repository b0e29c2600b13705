"""The live ticket page as the server renders it: header, timeline, SLA banner, the script's
configuration, and the queries it costs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone
from django.utils.html import escape

from care.core.channels import Channel
from care.sla.models import SlaClock, SlaPolicy, Target
from care.sla.services import sla_fire
from care.tickets.models import Direction
from care.tickets.services import interaction_add
from tests.desk.conftest import page_url
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _live_config(response):
    html = response.text
    start = html.index('<script id="ticket-live-config" type="application/json">') + len(
        '<script id="ticket-live-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_agent_sees_the_ticket_header_and_its_timeline(client, agent, email_ticket):
    client.force_login(agent.user)

    response = client.get(page_url(email_ticket))

    assert response.status_code == 200
    page = response.text
    assert f'<span id="ticket-reference">{email_ticket.reference}</span>' in page
    assert "Zählerstand falsch" in page
    assert "Energie Nord" in page
    assert f"background: {email_ticket.tenant.colour}" in page
    assert '<dd id="ticket-status" data-value="open">Open</dd>' in page  # assigning opened it
    assert '<dd id="ticket-priority" data-value="2">Normal</dd>' in page
    assert f'<dd id="ticket-assignee">{agent.user.full_name}</dd>' in page
    assert "Greta Kunde" in page
    # One entry per interaction, in order, each styled by its direction, with its author.
    kinds = [kind for kind in ("entry-inbound", "entry-outbound", "entry-note") if kind in page]
    assert kinds == ["entry-inbound", "entry-outbound", "entry-note"]
    assert page.index("entry-inbound") < page.index("entry-outbound") < page.index("entry-note")
    assert "greta@example.com" in page
    assert "Mein Zählerstand ist falsch.<br>Bitte prüfen." in page
    assert page.count(f'<span class="entry-author">{agent.user.full_name}</span>') == 2
    # Text is escaped, never markup.
    assert escape("Kunde ruft oft an <b>ungeduldig</b>") in page
    assert "<b>ungeduldig</b>" not in page
    assert 'action="/desk/tickets/ENN-1/reply"' in page
    assert 'formaction="/desk/tickets/ENN-1/note"' in page


def test_page_configures_its_script_for_the_ticket_stream(client, agent, email_ticket):
    client.force_login(agent.user)

    config = _live_config(client.get(page_url(email_ticket)))

    assert config["ticket"] == {"id": email_ticket.pk, "reference": email_ticket.reference}
    assert config["stream"] == f"ticket:{email_ticket.pk}"
    assert config["user"] == agent.user.pk
    assert config["urls"] == {"entries": f"/desk/tickets/{email_ticket.reference}/entries"}
    assert config["labels"]["status"]["pending"] == "Pending (waiting on the customer)"
    assert config["labels"]["target"]["first_response"] == "First response"
    assert config["text"]["typing_one"] == "%(name)s is typing…"


def test_page_scripts_are_served_from_the_desk_app(client, agent, email_ticket):
    client.force_login(agent.user)
    page = client.get(page_url(email_ticket)).text

    for name in ("desk/live.js", "desk/ticket.js", "desk/desk.css"):
        assert f"/static/{name}" in page
        assert finders.find(name), name


def test_page_is_in_the_users_language(client, agent, email_ticket):
    agent.user.language = "de"
    agent.user.save(update_fields=["language"])
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket), headers={"accept-language": "de"}).text

    assert 'lang="de"' in page


def test_empty_timeline_says_so(client, agent, phone_ticket):
    client.force_login(agent.user)

    page = client.get(page_url(phone_ticket)).text

    assert 'id="timeline-empty"' in page
    assert '<dd id="ticket-assignee">Unassigned</dd>' in page


def test_reference_is_case_insensitive_and_numbers_are_not_found_across_tenants(
    client, agent, email_ticket, tenant_b
):
    client.force_login(agent.user)
    other = make_ticket(tenant=tenant_b)

    assert client.get(f"/desk/tickets/{email_ticket.reference.lower()}/").status_code == 200
    assert client.get(f"/desk/tickets/{other.reference}/").status_code == 404
    assert client.get("/desk/tickets/ENN-999/").status_code == 404
    assert client.get("/desk/tickets/not-a-reference/").status_code == 404


def _sla_ticket(tenant, *, warned: bool, breached: bool):
    SlaPolicy.objects.create(
        tenant=tenant,
        name="standard",
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=480,
        business_hours=False,
    )
    ticket = make_ticket(tenant=tenant)
    clock = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    if breached:
        sla_fire(clock_ids=[clock.pk], now=clock.due_at + dt.timedelta(seconds=1))
    elif warned:
        sla_fire(clock_ids=[clock.pk], now=clock.warn_at + dt.timedelta(seconds=1))
    clock.refresh_from_db()
    return ticket, clock


def test_sla_banner_warns_of_a_clock_past_its_warning_time(client, agent, tenant_a):
    ticket, clock = _sla_ticket(tenant_a, warned=True, breached=False)
    client.force_login(agent.user)

    page = client.get(page_url(ticket)).text

    assert 'class="sla-alert sla-warning"' in page
    assert "SLA warning: First response is due" in page
    assert clock.due_at.astimezone(dt.UTC).isoformat() in page


def test_sla_banner_shows_a_breach_and_clears_once_answered(client, agent, tenant_a):
    ticket, _clock = _sla_ticket(tenant_a, warned=True, breached=True)
    client.force_login(agent.user)

    assert "SLA breached: First response was due" in client.get(page_url(ticket)).text

    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        body_text="Hallo",
        author_user=agent.user,
    )
    page = client.get(page_url(ticket)).text
    assert "sla-alert" not in page


def test_no_sla_banner_for_a_ticket_on_time(client, agent, tenant_a):
    ticket, _clock = _sla_ticket(tenant_a, warned=False, breached=False)
    client.force_login(agent.user)

    assert "sla-alert" not in client.get(page_url(ticket)).text


def _add_entries(ticket, user, count):
    for number in range(count):
        interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.NOTE if number % 2 else Direction.OUTBOUND,
            body_text=f"Entry {number}",
            author_user=user,
            occurred_at=timezone.now(),
        )


def test_page_queries_are_pinned_and_do_not_grow_with_the_timeline(
    client, agent, email_ticket, django_assert_num_queries
):
    client.force_login(agent.user)
    url = page_url(email_ticket)
    # session, user, the user's tenants, ticket (with tenant, customer, assignee), interactions
    # (with authors, call, delivery, subject), their attachments, the changes, SLA clocks (8);
    # actions: the tenant's agents, the links (2); side panels: the customer's other tickets, their
    # identities, the guidelines (3); composer: macros, and the sending mailbox (2 for an email
    # ticket) (3). Each part pins its share in its own tests (test_ticket_actions,
    # test_ticket_panels, test_composer).
    with django_assert_num_queries(16):
        assert client.get(url).status_code == 200

    _add_entries(email_ticket, agent.user, 30)

    with django_assert_num_queries(16):
        response = client.get(url)
    assert response.text.count('class="entry entry-') == 33
