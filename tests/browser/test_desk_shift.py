"""The agent desk's "done when" in a real browser: a shift's flow with real processes.

Daphne serves Care (``asgi_server``), a real Celery worker processes the mail and sends replies
through an SMTP server on loopback (``tests/mail_worker.py``), Chromium drives the pages. The
customer's mail is posted over HTTP to the mailbox's endpoint, as a mail relay would.

1. Alice has the queue open; the customer's email arrives and its ticket appears in the queue
   without a reload.
2. She opens it and takes it (``a``). The customer writes again; the mail appears on the open
   ticket's timeline without a reload.
3. She answers with a macro (``m``, filter, Enter): the placeholders are filled in, and the reply
   leaves through SMTP in the tenant's voice (the mailbox's sender name and signature), threaded on
   the customer's mail.
4. Bob opens the same ticket: both see each other (the collision indicator) and Bob sees Alice type.
5. Alice writes an internal note mentioning Bob and solves the ticket; nobody reloaded.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.request import Request, urlopen

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from care.connectors.models import Mailbox
from care.macros.models import Macro
from care.mentions.models import Mention
from care.tickets.models import Ticket
from tests.browser.conftest import LIVE_TIMEOUT_MS, Person, committed, log_in, still_the_same_document

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CUSTOMER = "greta.kunde@example.com"
MAILBOX = "service@energie-nord.test"
TOKEN = "shift-test-token-0123456789"
# A worker processes the mail, so a step may take a few seconds on a busy machine.
STEP_TIMEOUT_MS = 20_000


@pytest.fixture
def mailbox(tenant_a) -> Mailbox:
    return Mailbox.objects.create(
        tenant=tenant_a,
        name="Kundenservice",
        address=MAILBOX,
        delivery=Mailbox.Delivery.PUSH,
        inbound_token=TOKEN,
        sender_name="Energie Nord Kundenservice",
        signature="Energie Nord GmbH · Hafenstraße 1 · Kiel",
        auto_acknowledge=False,
        default_language="de",
    )


@pytest.fixture
def macro(tenant_a, mailbox) -> Macro:
    Macro.objects.create(
        tenant=tenant_a, title="Zählerwechsel", body="Wir tauschen den Zähler.", language="de"
    )
    return Macro.objects.create(
        tenant=tenant_a,
        title="Begrüßung und Dank",
        shortcut="dank",
        language="de",
        body=(
            "Guten Tag {{customer.name}},\n\nvielen Dank für Ihre Nachricht zu {{ticket.reference}}. "
            "Wir kümmern uns darum.\n\nViele Grüße\n{{agent.first_name}}"
        ),
    )


def customer_mail(*, message_id: str, subject: str, body: str, in_reply_to: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = f"Greta Kunde <{CUSTOMER}>"
    message["To"] = f"Energie Nord <{MAILBOX}>"
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now() - dt.timedelta(minutes=1))
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(body)
    return message.as_bytes()


def post_mail(base_url: str, raw: bytes) -> None:
    """The relay's HTTP push (no database work in this thread: the server stores, the worker parses)."""
    request = Request(  # noqa: S310 - our own test server
        f"{base_url}/inbound/email/{TOKEN}/",
        data=raw,
        headers={"Content-Type": "message/rfc822"},
        method="POST",
    )
    with urlopen(request, timeout=10) as answer:  # noqa: S310 - our own test server
        assert answer.status == 202


def new_page(browser, base_url: str, person: Person, path: str) -> Page:
    page = browser.new_context(locale="en-GB", timezone_id="Europe/Berlin").new_page()
    log_in(page, base_url, person.email, next_path=path)
    page.evaluate("window.sameDocument = true")
    return page


def test_a_shift_take_read_answer_with_a_macro_note_and_solve_without_reloading(
    alice, bob, tenant_a, mailbox, macro, asgi_server, smtp_server, worker, browser
):
    smtp, _port = smtp_server

    # 1. The queue is open when the customer's mail arrives.
    queue = new_page(browser, asgi_server, alice, "/desk/queue/")
    queue.wait_for_function(
        "stream => window.careLive && window.careLive.isSubscribed(stream)",
        arg=f"tenant:{tenant_a.pk}",
        timeout=LIVE_TIMEOUT_MS,
    )
    question_id = make_msgid(domain="example.com")[1:-1]
    post_mail(
        asgi_server,
        customer_mail(
            message_id=question_id,
            subject="Zählerstand falsch abgelesen",
            body=(
                "Guten Tag,\n\nbei der letzten Ablesung wurde mein Zählerstand falsch übernommen. "
                "Die Rechnung ist deshalb viel zu hoch. Bitte korrigieren Sie das.\n\n"
                "Mit freundlichen Grüßen\nGreta Kunde\n"
            ),
        ),
    )
    row = queue.locator("tr.queue-row", has_text="Zählerstand falsch abgelesen")
    expect(row).to_have_count(1, timeout=STEP_TIMEOUT_MS)
    assert still_the_same_document(queue)
    # ORM work runs in a thread of its own while Playwright's loop owns this one (conftest.py).
    ticket = committed(lambda: Ticket.objects.select_related("tenant").get(tenant_id=tenant_a.pk))
    reference = ticket.reference

    # 2. Alice opens and takes it; the customer's second mail appears on the open page.
    row.locator("a").first.click()
    queue.wait_for_url(re.compile(rf"/desk/tickets/{reference}/"))
    page = queue
    page.wait_for_function(
        "stream => window.careLive && window.careLive.isSubscribed(stream)",
        arg=f"ticket:{ticket.pk}",
        timeout=LIVE_TIMEOUT_MS,
    )
    page.evaluate("window.sameDocument = true")
    page.keyboard.press("a")
    expect(page.locator("#ticket-assignee")).to_have_text(alice.name, timeout=LIVE_TIMEOUT_MS)

    addendum_id = make_msgid(domain="example.com")[1:-1]
    post_mail(
        asgi_server,
        customer_mail(
            message_id=addendum_id,
            subject="Re: Zählerstand falsch abgelesen",
            body="Nachtrag: Der richtige Zählerstand ist 04711 kWh.\n\nGreta Kunde\n",
            in_reply_to=question_id,
        ),
    )
    expect(page.locator("#timeline")).to_contain_text("04711 kWh", timeout=STEP_TIMEOUT_MS)
    assert still_the_same_document(page)

    # 3. Bob opens the same ticket: the collision indicator shows on both pages.
    other = new_page(browser, asgi_server, bob, f"/desk/tickets/{reference}/")
    expect(page.locator("#viewers .viewer")).to_have_text([bob.name], timeout=LIVE_TIMEOUT_MS)
    expect(other.locator("#viewers .viewer")).to_have_text([alice.name], timeout=LIVE_TIMEOUT_MS)

    # 4. Alice answers with the macro, found by its keyword; Bob sees her typing.
    page.keyboard.press("m")
    expect(page.locator("#macro-filter")).to_be_focused()
    page.keyboard.type("dank")
    page.keyboard.press("Enter")
    reply = page.locator("#reply-text")
    expect(reply).to_have_value(re.compile(rf"Guten Tag Greta Kunde,.*{reference}", re.S))
    reply.press("End")
    reply.press_sequentially(" ")
    expect(other.locator("#typing")).to_have_text(f"{alice.name} is typing…", timeout=LIVE_TIMEOUT_MS)
    page.locator("#send-reply").click()
    expect(page.locator("#timeline .entry-outbound")).to_contain_text(
        "vielen Dank für Ihre Nachricht", timeout=LIVE_TIMEOUT_MS
    )
    expect(other.locator("#timeline .entry-outbound")).to_contain_text(
        "vielen Dank für Ihre Nachricht", timeout=LIVE_TIMEOUT_MS
    )

    [sent] = smtp.wait_for(1, timeout=STEP_TIMEOUT_MS / 1000, what="The macro reply was not sent")
    assert smtp.envelopes[0].rcpt_tos == [CUSTOMER]
    assert "Energie Nord Kundenservice" in sent["From"]
    assert MAILBOX in sent["From"]
    # Threaded on the customer's latest mail, with the whole conversation in References.
    assert addendum_id in sent["In-Reply-To"]
    assert question_id in sent["References"]
    body = sent.get_body(("plain",)).get_content()
    assert "Guten Tag Greta Kunde," in body
    assert f"zu {reference}." in body
    assert "Energie Nord GmbH · Hafenstraße 1 · Kiel" in body

    # 5. An internal note for Bob, then solved; still the documents first loaded.
    page.keyboard.press("Escape")
    page.locator('input[name="composer_mode"][value="note"]').check()
    reply.fill("")
    reply.press_sequentially("@bob bitte Zählertausch im System vormerken.")
    page.keyboard.press("Escape")
    page.locator("#add-note").click()
    expect(other.locator("#timeline .entry-note")).to_contain_text("Zählertausch", timeout=LIVE_TIMEOUT_MS)
    assert (
        committed(lambda: Mention.objects.filter(mentioned_id=bob.user_id, ticket_id=ticket.pk).count()) == 1
    )

    page.locator("#actions-status").select_option("solved")
    expect(page.locator("#ticket-status")).to_have_text("Solved", timeout=LIVE_TIMEOUT_MS)
    expect(other.locator("#ticket-status")).to_have_text("Solved", timeout=LIVE_TIMEOUT_MS)
    assert still_the_same_document(page)
    assert still_the_same_document(other)
    assert committed(lambda: Ticket.objects.get(pk=ticket.pk).status) == "solved"
