"""Beside the ticket: the customer panel (identities, other tickets of this tenant), the tenant's
guidelines for the ticket's language, and the SLA clocks with their countdowns."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from care.desk.ticket_panels import countdown_text, panels_context
from care.sla.models import SlaClock, SlaPolicy, Target
from care.sla.services import sla_fire
from care.tenants.models import Guideline
from care.tickets.selectors import access_ticket
from care.tickets.services import ticket_change_status
from care.tickets.status import Status
from tests.desk.conftest import page_url
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _aside(page):
    """This part of the aside: the customer panel and the guidelines (the actions panel is before)."""
    return page[page.index('<section class="side-panel customer-panel"') : page.index("</aside>")]


# --- the customer panel ---------------------------------------------------------------------------


def test_customer_panel_shows_every_identity(client, agent, email_ticket):
    customer = email_ticket.customer
    IdentityFactory(customer=customer, kind="phone", value="+493012345678", is_primary=True)
    IdentityFactory(customer=customer, kind="social", platform="instagram", value="greta.k")
    client.force_login(agent.user)

    aside = _aside(client.get(page_url(email_ticket)).text)

    assert '<p class="customer-name">Greta Kunde</p>' in aside
    assert '<a href="mailto:greta@example.com">greta@example.com</a>' in aside
    assert '<a href="tel:+493012345678">+49 30 12345678</a>' in aside  # international format
    assert "Instagram" in aside
    assert '<span class="identity-value">@greta.k</span>' in aside


def test_customer_panel_lists_only_this_customers_other_tickets_of_this_tenant(
    client, agent, email_ticket, tenant_a, tenant_b
):
    older = make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject="Abschlag zu hoch")
    ticket_change_status(ticket=older, status=Status.SOLVED, actor=None)
    someone_else = make_ticket(tenant=tenant_a, subject="Fremder Kunde")
    elsewhere = make_ticket(
        tenant=tenant_b,
        customer=CustomerFactory(tenant=tenant_b, display_name="Greta Kunde"),
        subject="Anderswo",
    )
    client.force_login(agent.user)

    aside = _aside(client.get(page_url(email_ticket)).text)

    assert "1 other ticket</h3>" in aside
    assert f'<a href="/desk/tickets/{older.reference}/">' in aside
    assert "Abschlag zu hoch" in aside
    assert '<span class="customer-ticket-status">Solved</span>' in aside
    assert someone_else.subject not in aside
    assert elsewhere.subject not in aside
    assert elsewhere.reference not in aside
    assert f'"/desk/tickets/{email_ticket.reference}/"' not in aside  # not the ticket itself


def test_customer_panel_shows_the_latest_ten_and_counts_all(client, agent, email_ticket, tenant_a):
    tickets = [
        make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject=f"Anliegen {number}")
        for number in range(12)
    ]
    client.force_login(agent.user)

    aside = _aside(client.get(page_url(email_ticket)).text)

    assert "12 other tickets</h3>" in aside
    assert aside.count('class="customer-ticket ') == 10
    assert "and 2 older tickets" in aside
    assert "Anliegen 11" in aside
    assert tickets[0].subject + "</a>" not in aside  # the oldest two are left out
    assert re.search(r"Anliegen 11.*Anliegen 2\b", aside, re.S)  # newest first


def test_customer_panel_costs_constant_queries(agent, email_ticket, tenant_a, django_assert_num_queries):
    ticket = access_ticket(agent.user, email_ticket.reference)
    # identities, other tickets (with their count), guidelines
    with django_assert_num_queries(3):
        small = panels_context(ticket=ticket, user=agent.user)

    for number in range(15):
        make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject=f"T{number}")
        IdentityFactory(customer=email_ticket.customer, value=f"greta{number}@example.com")
        Guideline.objects.create(tenant=tenant_a, title=f"G{number}", body="b", position=number)
    ticket = access_ticket(agent.user, email_ticket.reference)
    with django_assert_num_queries(3):
        large = panels_context(ticket=ticket, user=agent.user)
    assert len(large["customer_panel"]["identities"]) == len(small["customer_panel"]["identities"]) + 15
    assert large["customer_panel"]["tickets_total"] == 15


# --- guidelines ----------------------------------------------------------------------------------


def test_guidelines_for_the_tickets_language_or_all_languages_greeting_first(
    client, agent, email_ticket, tenant_a, tenant_b
):
    assert email_ticket.language == "de"
    Guideline.objects.create(
        tenant=tenant_a, kind="product", title="Tarife", body="Öko und Basis", position=1
    )
    Guideline.objects.create(
        tenant=tenant_a,
        kind="greeting",
        title="Begrüßung",
        body="Energie Nord, guten Tag!",
        language="de",
        position=5,
    )
    Guideline.objects.create(
        tenant=tenant_a,
        kind="greeting",
        title="Greeting",
        body="Energie Nord, hello!",
        language="en",
        position=0,
    )
    Guideline.objects.create(
        tenant=tenant_a, kind="instruction", title="Kündigungen", body="An Team B.\nNie selbst.", position=2
    )
    Guideline.objects.create(tenant=tenant_b, kind="greeting", title="Saludo", body="Telco Sur, hola")
    client.force_login(agent.user)

    aside = _aside(client.get(page_url(email_ticket)).text)

    assert "Energie Nord, guten Tag!" in aside
    assert "Öko und Basis" in aside
    assert "An Team B.<br>Nie selbst." in aside
    assert "Energie Nord, hello!" not in aside  # English
    assert "Telco Sur" not in aside  # another tenant's
    assert aside.index("Begrüßung") < aside.index("Tarife") < aside.index("Kündigungen")
    assert '<details class="guideline guideline-greeting" open>' in aside
    assert '<details class="guideline guideline-product">' in aside


def test_a_guideline_for_the_language_replaces_the_one_for_all_languages(
    client, agent, email_ticket, tenant_a
):
    Guideline.objects.create(tenant=tenant_a, kind="script", title="Script", body="Allgemein")
    Guideline.objects.create(
        tenant=tenant_a, kind="script", title="Script", body="Auf Deutsch", language="de"
    )
    client.force_login(agent.user)

    aside = _aside(client.get(page_url(email_ticket)).text)

    assert "Auf Deutsch" in aside
    assert "Allgemein" not in aside


def test_no_guidelines_says_so(client, agent, email_ticket):
    client.force_login(agent.user)

    assert "This client has no guidelines for agents." in client.get(page_url(email_ticket)).text


# --- SLA countdowns ------------------------------------------------------------------------------


def _policy(tenant):
    SlaPolicy.objects.create(
        tenant=tenant,
        name="standard",
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=480,
        business_hours=False,
    )


def _clocks(page):
    return page[
        page.index('<div id="sla-clocks">') : page.index("</section>", page.index('<div id="sla-clocks">'))
    ]


def test_every_clock_counts_down_to_its_due_time_in_the_tenants_zone_and_the_viewers(client, agent, tenant_a):
    _policy(tenant_a)
    ticket = make_ticket(tenant=tenant_a)
    first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    client.force_login(agent.user)

    clocks = _clocks(client.get(page_url(ticket)).text)

    assert clocks.count('<li class="sla-clock ') == 2  # first response and resolution
    assert "First response" in clocks
    assert "Resolution" in clocks
    assert (
        f'data-target="first_response" data-state="running" data-due="{first.due_at.isoformat()}"' in clocks
    )
    assert re.search(r'<span class="sla-countdown" data-countdown>0:59:\d\d left</span>', clocks)
    berlin = first.due_at.astimezone(dt.timezone(dt.timedelta(hours=1)))  # Berlin in November
    assert f"{berlin.day} {berlin:%b %Y, %H:%M}" in clocks
    assert "(Europe/Berlin)" in clocks
    assert f'<time datetime="{first.due_at.isoformat()}">' in clocks  # shown in the viewer's zone
    assert "sla-clock-ok" in clocks


def test_a_warned_clock_is_amber_and_a_breached_one_red_and_overdue(client, agent, tenant_a):
    _policy(tenant_a)
    ticket = make_ticket(tenant=tenant_a)
    first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    resolution = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
    sla_fire(clock_ids=[resolution.pk], now=resolution.warn_at + dt.timedelta(seconds=1))
    SlaClock.objects.filter(pk=first.pk).update(due_at=first.due_at - dt.timedelta(hours=2))
    client.force_login(agent.user)

    clocks = _clocks(client.get(page_url(ticket)).text)

    assert re.search(r'sla-clock-breached" data-target="first_response"', clocks)
    assert re.search(r'<span class="sla-countdown" data-countdown>overdue by 1:0\d:\d\d</span>', clocks)
    assert re.search(r'sla-clock-warned" data-target="resolution"[^>]* data-warned="1"', clocks)


def test_a_paused_clock_says_so_without_a_countdown(client, agent, tenant_a):
    _policy(tenant_a)
    ticket = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=ticket, status=Status.PENDING, actor=None)
    client.force_login(agent.user)

    clocks = _clocks(client.get(page_url(ticket)).text)

    assert "Paused (waiting on the customer)" in clocks
    assert 'data-state="paused"' in clocks
    assert 'data-state="paused" data-due' not in clocks


def test_no_sla_says_so(client, agent, email_ticket):
    client.force_login(agent.user)

    assert "No SLA applies to this ticket." in client.get(page_url(email_ticket)).text


def test_countdown_text_matches_the_scripts_format():
    assert countdown_text(5) == "0:00:05"
    assert countdown_text(3723) == "1:02:03"
    assert countdown_text(-61) == "0:01:01"
    assert countdown_text(2 * 86400 + 3723) == "2 d 01:02:03"


def test_the_page_costs_constant_queries_whatever_the_customers_history(
    client, agent, email_ticket, tenant_a
):
    client.force_login(agent.user)
    with CaptureQueriesContext(connection) as before:
        client.get(page_url(email_ticket))
    for number in range(12):
        make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject=f"T{number}")
        IdentityFactory(customer=email_ticket.customer, value=f"g{number}@example.com")
        Guideline.objects.create(tenant=tenant_a, title=f"G{number}", body="b")

    with CaptureQueriesContext(connection) as after:
        client.get(page_url(email_ticket))

    assert len(after) == len(before)
