"""The actions panel's script in a real browser: keys, fetch without reload, refusals shown in the
panel, a merge's confirmation, and changes made by another agent reflected live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from care.tickets.models import Ticket
from care.tickets.services import ticket_update
from tests.browser.conftest import LIVE_TIMEOUT_MS, committed, open_ticket, still_the_same_document
from tests.factories.tickets import make_ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_keys_status_tags_and_assign_without_reload(alice, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)

    # a: assign to me; the header and the panel follow without a reload.
    page.locator("body").click()
    page.keyboard.press("a")
    expect(page.locator("#ticket-assignee")).to_have_text(alice.name, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#actions-assignee")).to_have_text(alice.name)
    expect(page.locator("#actions-assign-me")).to_have_count(0)

    # s: the status select has the focus; choosing posts at once.
    page.keyboard.press("s")
    expect(page.locator("#actions-status")).to_be_focused()
    page.select_option("#actions-status", "pending")
    expect(page.locator("#ticket-status")).to_have_attribute("data-value", "pending", timeout=LIVE_TIMEOUT_MS)

    # t: the tag input; the letter is not typed into it.
    page.locator("body").click()
    page.keyboard.press("t")
    expect(page.locator("#actions-tag")).to_be_focused()
    expect(page.locator("#actions-tag")).to_have_value("")
    page.keyboard.type("  Rückruf ")
    page.keyboard.press("Enter")
    expect(page.locator('.tag-chip[data-tag="rückruf"]')).to_have_count(1, timeout=LIVE_TIMEOUT_MS)

    # A refusal shows in the panel, nothing else changes.
    page.fill("#actions-link-target", "NOPE-1")
    page.locator("#actions-link-target").press("Enter")
    expect(page.locator("#actions-error")).to_have_text("There is no ticket NOPE-1 among yours.")
    assert still_the_same_document(page)


def test_merge_with_confirmation_and_live_changes_by_others(alice, ticket, asgi_server, browser, tenant_a):
    target = committed(lambda: make_ticket(tenant=tenant_a, subject="Hauptticket"))
    target_reference = f"{tenant_a.code}-{target.number}"
    page = open_ticket(browser, asgi_server, alice, ticket)

    # Someone else tags the ticket: the panel re-reads itself.
    committed(lambda: ticket_update(ticket=Ticket.objects.get(pk=ticket.id), actor=None, tags=["von-bob"]))
    expect(page.locator('.tag-chip[data-tag="von-bob"]')).to_have_count(1, timeout=LIVE_TIMEOUT_MS)

    page.fill("#actions-merge-target", target_reference)
    page.locator("#actions-merge-target").press("Enter")
    expect(page.locator("#actions-merge-yes")).to_be_focused(timeout=LIVE_TIMEOUT_MS)
    page.locator("#actions-merge-yes").click()
    expect(page.locator("#ticket-merged-banner")).to_contain_text(target_reference, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#ticket-status")).to_have_attribute("data-value", "closed")
    assert still_the_same_document(page)
