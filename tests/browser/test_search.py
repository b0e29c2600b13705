"""Search in a real browser: "/" focuses the header's search box from any desk page (not while
typing), the results page moves with j / k, and "More results" appends the next page without a
reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from care.core.channels import Channel
from care.tickets.models import Direction
from care.tickets.search import PAGE_SIZE
from care.tickets.services import interaction_add
from tests.browser.conftest import log_in, still_the_same_document
from tests.factories.tickets import make_ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def many_tickets(tenant_a, tenant_b):
    for i in range(PAGE_SIZE + 3):
        ticket = make_ticket(tenant=tenant_a, subject=f"Frage {i}")
        interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            body_text="Zwei Rechnungen erhalten",
        )
    make_ticket(tenant=tenant_b, subject="Rechnung de otro cliente")


def test_slash_search_keyboard_and_more(alice, many_tickets, asgi_server, browser):
    page = browser.new_context(locale="en-GB").new_page()
    log_in(page, asgi_server, alice.email, next_path="/desk/work/")

    page.keyboard.press("/")
    expect(page.locator("#header-search-q")).to_be_focused()
    # Typing "/" inside the box is text, not the shortcut.
    page.keyboard.type("Rechnung/")
    expect(page.locator("#header-search-q")).to_have_value("Rechnung/")
    page.locator("#header-search-q").fill("Rechnung")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{asgi_server}/desk/search/?q=Rechnung")

    hits = page.locator("#search-results .search-hit")
    expect(hits).to_have_count(PAGE_SIZE)
    expect(page.locator("#search-results mark").first).to_have_text("Rechnungen")
    expect(page.locator("#search-results")).not_to_contain_text("otro cliente")

    page.evaluate("document.activeElement.blur(); window.sameDocument = true")
    page.keyboard.press("j")
    expect(hits.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(hits.nth(1)).to_be_focused()

    page.locator("#search-more").click()
    expect(hits).to_have_count(PAGE_SIZE + 3)
    expect(page.locator("#search-more")).to_have_count(0)
    expect(hits.nth(PAGE_SIZE)).to_be_focused()
    assert still_the_same_document(page)

    page.keyboard.press("/")
    expect(page.locator("#search-q")).to_be_focused()
