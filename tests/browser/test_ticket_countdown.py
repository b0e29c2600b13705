"""The ticket page's SLA countdowns and live changes in a real browser: the countdown ticks every
second, turns amber and red with the live SLA events, and a status change shows in the timeline and
pauses the clocks without a reload."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from care.accounts.models import Agent
from care.sla.models import SlaClock
from care.tickets.models import Ticket
from care.tickets.services import ticket_assign, ticket_change_status
from tests.browser.conftest import LIVE_TIMEOUT_MS, committed, open_ticket, still_the_same_document
from tests.browser.test_live_ticket import fire_sla

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEFT = re.compile(r"^0:(59|58|57):\d\d left$")


def test_the_countdown_ticks_and_follows_the_sla_events(alice, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)
    clock_node = page.locator('#sla-clocks .sla-clock[data-target="first_response"]')
    countdown = clock_node.locator("[data-countdown]")
    expect(countdown).to_have_text(LEFT)
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=2500)  # it ticks
    expect(countdown).to_have_text(LEFT)
    expect(clock_node).to_have_class(re.compile(r"\bsla-clock-ok\b"))
    expect(clock_node.locator(".sla-due-tenant")).to_contain_text("(Europe/Berlin)")

    clock = committed(lambda: SlaClock.objects.get(pk=ticket.first_response_clock))
    assert clock.warn_at is not None
    assert clock.due_at is not None
    committed(lambda: fire_sla(clock.pk, at=clock.warn_at + dt.timedelta(seconds=1)))
    expect(clock_node).to_have_class(re.compile(r"\bsla-clock-warned\b"), timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#sla-banner .sla-alert")).to_have_class(re.compile(r"\bsla-warning\b"))

    committed(lambda: fire_sla(clock.pk, at=clock.due_at + dt.timedelta(seconds=1)))
    expect(clock_node).to_have_class(re.compile(r"\bsla-clock-breached\b"), timeout=LIVE_TIMEOUT_MS)
    assert still_the_same_document(page)


def test_changes_appear_in_the_timeline_and_pause_the_clocks(alice, bob, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)
    expect(page.locator("#timeline .change")).to_have_count(0)

    committed(
        lambda: ticket_assign(
            ticket=Ticket.objects.get(pk=ticket.id), agent=Agent.objects.get(pk=bob.agent_id), actor=None
        )
    )
    changes = page.locator("#timeline .change")
    expect(changes).to_have_count(2, timeout=LIVE_TIMEOUT_MS)  # assigned, and thereby opened
    expect(changes.nth(0)).to_contain_text(f"assigned the ticket to {bob.name}")
    expect(changes.nth(1)).to_contain_text("changed the status from New to Open")

    committed(
        lambda: ticket_change_status(ticket=Ticket.objects.get(pk=ticket.id), status="pending", actor=None)
    )
    expect(changes).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
    expect(changes.nth(2)).to_contain_text("changed the status from Open to Pending")
    clock_node = page.locator('#sla-clocks .sla-clock[data-target="first_response"]')
    expect(clock_node).to_have_attribute("data-state", "paused", timeout=LIVE_TIMEOUT_MS)
    expect(clock_node).to_contain_text("Paused")
    # The interactions are as they were: one.
    expect(page.locator("#timeline .entry")).to_have_count(1)
    assert still_the_same_document(page)
