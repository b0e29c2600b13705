"""The reply composer in a real browser: a macro inserted with the keyboard, an @mention picked from
the suggestions in a note sent with Ctrl+Enter, and the mention appearing on the colleague's open
My work page without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from care.macros.services import macro_create
from care.mentions.models import Mention
from tests.browser.conftest import LIVE_TIMEOUT_MS, committed, log_in, open_ticket, still_the_same_document

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def macros(tenant_a, tenant_b):
    macro_create(
        tenant=tenant_a, title="Begrüßung", shortcut="hallo", body="Hallo {{customer.first_name}},\n"
    )
    macro_create(
        tenant=tenant_a, title="Zählerwechsel", shortcut="zaehler", body="Ihr Zähler wird getauscht."
    )
    macro_create(tenant=tenant_b, title="Otro cliente", body="Hola")


def test_macro_and_mention_from_the_keyboard(alice, bob, ticket, macros, asgi_server, browser):
    work = browser.new_context(locale="en-GB").new_page()
    log_in(work, asgi_server, bob.email, next_path="/desk/work/")
    work.wait_for_function(
        "stream => window.careLive && window.careLive.isSubscribed(stream)", arg=f"agent:{bob.agent_id}"
    )
    work.evaluate("window.sameDocument = true")
    expect(work.locator("#mentions-heading")).to_have_text("Mentions (0)")

    page = open_ticket(browser, asgi_server, alice, ticket)
    expect(page.locator("#macro-list .macro-option")).to_have_count(2)  # tenant B's is not offered

    # m opens the picker, typing filters, Enter inserts the rendered text at the cursor.
    page.locator("body").press("m")
    expect(page.locator("#macro-filter")).to_be_focused()
    page.keyboard.type("zaeh")
    expect(page.locator("#macro-list .macro-option:visible")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#reply-text")).to_have_value("Ihr Zähler wird getauscht.")
    expect(page.locator("#reply-text")).to_be_focused()
    page.keyboard.press("Control+Home")
    page.locator("#macro-button").click()
    page.keyboard.press("Enter")  # the first macro: the greeting, rendered for this customer
    expect(page.locator("#reply-text")).to_have_value("Hallo Greta,\nIhr Zähler wird getauscht.")

    # n: an internal note; @ suggests colleagues, Enter picks, Ctrl+Enter sends the note.
    page.locator("#reply-text").fill("")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("n")
    expect(page.locator("#reply-form")).to_have_attribute("data-mode", "note")
    page.locator("#reply-text").press_sequentially("Bitte übernehmen @bo")
    expect(page.locator("#mention-list .mention-option")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#mention-list .mention-option")).to_contain_text("Bob Builder")
    page.keyboard.press("Enter")
    expect(page.locator("#reply-text")).to_have_value("Bitte übernehmen @bob ")
    page.locator("#reply-text").press_sequentially("danke.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#timeline .entry-note")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#reply-text")).to_have_value("")
    assert still_the_same_document(page)

    mention = committed(lambda: Mention.objects.get())
    assert mention.mentioned_id == bob.user_id

    # Bob's open My work shows the mention without a reload; "Mark read" removes it in place.
    item = work.locator(f"#mention-{mention.pk}")
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(item).to_contain_text("Alice Agent mentioned you")
    expect(item).to_contain_text("Bitte übernehmen @bob danke.")
    item.get_by_role("button", name=f"Mark the mention on {ticket.reference} read").click()
    expect(work.locator("#mentions-heading")).to_have_text("Mentions (0)", timeout=LIVE_TIMEOUT_MS)
    assert work.evaluate("window.sameDocument === true") is True
    assert committed(lambda: Mention.objects.get().read_at) is not None
