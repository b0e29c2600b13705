"""A long ticket opens with its newest entries; "Show earlier entries" brings the rest into the open
page, in order, without a reload (``care/desk/timeline.py`` TIMELINE_WINDOW)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from care.accounts.models import User
from care.desk.timeline import TIMELINE_WINDOW
from care.tickets.models import Direction, Ticket
from care.tickets.services import interaction_add
from tests.browser.conftest import LIVE_TIMEOUT_MS, open_ticket, still_the_same_document

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXTRA = TIMELINE_WINDOW + 20


@pytest.fixture
def long_ticket(ticket, alice):
    """The shared ticket with EXTRA notes a minute apart from yesterday on; its customer message,
    written now, is the newest entry."""
    stored = Ticket.objects.select_related("tenant").get(pk=ticket.id)
    author = User.objects.get(pk=alice.user_id)
    start = timezone.now() - dt.timedelta(days=1)
    for index in range(EXTRA):
        interaction_add(
            ticket=stored,
            channel=stored.channel,
            direction=Direction.NOTE,
            body_text=f"Notiz {index:03d}",
            author_user=author,
            occurred_at=start + dt.timedelta(minutes=index),
        )
    return ticket


def test_earlier_entries_load_into_the_open_page_in_order(alice, long_ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, long_ticket)
    entries = page.locator("#timeline [data-interaction-id]")
    expect(entries).to_have_count(TIMELINE_WINDOW)
    expect(entries.first).to_contain_text(f"Notiz {EXTRA - TIMELINE_WINDOW + 1:03d}")

    page.locator("#load-earlier").click()
    # Everything, oldest first: every note, then the customer's message; the link is gone.
    expect(entries).to_have_count(EXTRA + 1, timeout=LIVE_TIMEOUT_MS)
    expect(entries.first).to_contain_text("Notiz 000")
    expect(entries.nth(EXTRA - 1)).to_contain_text(f"Notiz {EXTRA - 1:03d}")
    expect(entries.last).to_contain_text("Mein Zählerstand ist falsch.")
    expect(page.locator("#load-earlier")).to_have_count(0)
    assert still_the_same_document(page)
