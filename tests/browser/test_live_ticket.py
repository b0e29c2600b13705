"""The live ticket page in a real browser, against a real ASGI server and the live layer.

Each test opens the page of one ticket of tenant A in Chromium and checks that what happens
elsewhere (another agent's typing and notes, a customer's message stored by this test process, a
status change, an SLA warning) shows on the open page without a reload. "Without a reload" is
checked by a marker set on ``window`` after the page loaded: a navigation would lose it.

Rows are made by fixtures before the browser starts, changes during a test with ``committed`` (see
conftest.py); everything that needs the database is read before the browser starts, too.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from care.accounts.models import Agent, TenantAuthorisation
from care.contacts.models import Identity
from care.core.channels import Channel
from care.sla.models import SlaClock, SlaEvent
from care.sla.services import sla_event_apply_actions, sla_fire
from care.tickets.models import Direction, Interaction, Ticket
from care.tickets.services import interaction_add, ticket_assign, ticket_change_status
from tests.browser.conftest import (
    LIVE_TIMEOUT_MS,
    TicketInfo,
    committed,
    log_in,
    open_ticket,
    still_the_same_document,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def add_customer_message(ticket: TicketInfo, text: str) -> Interaction:
    """The customer's message stored by this process (as ingestion would), committed and published."""

    def work() -> Interaction:
        stored, _ = interaction_add(
            ticket=Ticket.objects.select_related("tenant").get(pk=ticket.id),
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
            body_text=text,
            author_identity=Identity.objects.get(pk=ticket.identity_id),
        )
        return stored

    return committed(work)


def fire_sla(clock_id: int, *, at: dt.datetime) -> None:
    """What the SLA timer and then the actions task do (the event is published after the actions)."""
    sla_fire(clock_ids=[clock_id], now=at)
    for event_id in SlaEvent.objects.filter(clock_id=clock_id, actions_done_at__isnull=True).values_list(
        "pk", flat=True
    ):
        sla_event_apply_actions(event_id=event_id)


def test_two_agents_see_each_other_typing_and_notes_without_reload(alice, bob, ticket, asgi_server, browser):
    page_a = open_ticket(browser, asgi_server, alice, ticket)
    page_b = open_ticket(browser, asgi_server, bob, ticket)

    # Who is here: each sees the other, never themselves.
    expect(page_a.locator("#viewers .viewer")).to_have_text([bob.name], timeout=LIVE_TIMEOUT_MS)
    expect(page_b.locator("#viewers .viewer")).to_have_text([alice.name], timeout=LIVE_TIMEOUT_MS)
    expect(page_a.locator("#viewers-none")).to_be_hidden()

    # Bob types: Alice sees it, Bob does not see himself typing.
    page_b.locator("#reply-text").press_sequentially("Kunde zurückgerufen, ")
    expect(page_a.locator("#typing")).to_have_text(f"{bob.name} is typing…", timeout=LIVE_TIMEOUT_MS)
    expect(page_a.locator(f'#viewers .viewer.is-typing[data-user="{bob.user_id}"]')).to_have_count(1)
    expect(page_b.locator("#typing")).to_have_text("")

    # Bob adds a note: it appears on Alice's page, the typing notice ends, nobody reloaded.
    page_b.locator("#reply-text").press_sequentially("Zähler wird getauscht.")
    page_b.click("#add-note")
    note_on_a = page_a.locator("#timeline .entry-note")
    expect(note_on_a).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(note_on_a).to_contain_text("Kunde zurückgerufen, Zähler wird getauscht.")
    expect(note_on_a.locator(".entry-author")).to_have_text(bob.name)
    expect(page_a.locator("#typing")).to_have_text("", timeout=LIVE_TIMEOUT_MS)
    # Bob's page shows it once, though both the POST's answer and the live event bring it.
    expect(page_b.locator("#reply-text")).to_have_value("")
    expect(page_b.locator("#timeline .entry-note")).to_have_count(1)
    expect(page_b.locator("#timeline .entry")).to_have_count(2)
    assert still_the_same_document(page_a)
    assert still_the_same_document(page_b)

    note = committed(lambda: Interaction.objects.get(ticket_id=ticket.id, direction=Direction.NOTE))
    assert (note.author_user_id, note.body_text) == (
        bob.user_id,
        "Kunde zurückgerufen, Zähler wird getauscht.",
    )
    expect(note_on_a).to_have_attribute("id", f"interaction-{note.pk}")

    # Bob leaves: Alice is alone again.
    page_b.context.close()
    expect(page_a.locator("#viewers .viewer")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect(page_a.locator("#viewers-none")).to_be_visible()


def test_a_message_stored_by_another_process_appears_on_the_open_page(alice, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)
    expect(page.locator("#timeline .entry")).to_have_count(1)

    message = add_customer_message(ticket, "Ich habe noch eine Frage.\nZweite Zeile.")

    entry = page.locator(f"#interaction-{message.pk}")
    expect(entry).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(entry).to_have_class(re.compile(r"\bentry-inbound\b"))
    expect(entry.locator(".entry-body")).to_have_text("Ich habe noch eine Frage.Zweite Zeile.")  # <br>
    assert entry.locator(".entry-body").inner_text() == "Ich habe noch eine Frage.\nZweite Zeile."
    expect(entry.locator(".entry-author")).to_have_text("greta@example.com")
    expect(entry).not_to_have_attribute("data-preview", "1")  # rendered by the server, not the preview
    expect(page.locator("#timeline .entry")).to_have_count(2)
    assert still_the_same_document(page)


def test_after_a_dropped_connection_the_page_catches_up_on_what_it_missed(
    alice, ticket, asgi_server, browser
):
    page = open_ticket(browser, asgi_server, alice, ticket)
    context = page.context

    context.set_offline(True)
    page.evaluate("window.careLive._socket && window.careLive._socket.close()")
    expect(page.locator("#live-state")).to_have_text(
        "Connection lost; reconnecting…", timeout=LIVE_TIMEOUT_MS
    )
    missed = add_customer_message(ticket, "Geschrieben, während die Verbindung weg war.")
    # Nothing can arrive while offline: the event waits in the server's log.
    expect(page.locator(f"#interaction-{missed.pk}")).to_have_count(0)

    context.set_offline(False)

    expect(page.locator(f"#interaction-{missed.pk}")).to_contain_text(
        "Geschrieben, während die Verbindung weg war.", timeout=3 * LIVE_TIMEOUT_MS
    )
    expect(page.locator("#live-state")).to_be_hidden()
    assert page.evaluate("s => window.careLive.isSubscribed(s)", ticket.stream) is True
    assert still_the_same_document(page)


def test_when_the_server_says_reload_the_page_rereads_the_timeline_not_the_page(
    alice, ticket, asgi_server, browser
):
    page = open_ticket(browser, asgi_server, alice, ticket)
    reread: list[str] = []
    page.on("request", lambda request: reread.append(request.url) if "all=1" in request.url else None)
    page.locator("#reply-text").fill("Ein Entwurf, der bleiben soll")

    page.context.set_offline(True)
    page.evaluate("window.careLive._socket && window.careLive._socket.close()")
    # The client claims a position the server never reached (as after Redis lost its data): the
    # server cannot fill the gap and answers "reload".
    page.evaluate("stream => { window.careLive._streams[stream].seq = 1000000; }", ticket.stream)
    missed = add_customer_message(ticket, "Nach dem Neuladen des Verlaufs sichtbar.")
    page.context.set_offline(False)

    expect(page.locator(f"#interaction-{missed.pk}")).to_be_visible(timeout=3 * LIVE_TIMEOUT_MS)
    assert reread, "the page did not re-read the whole timeline"
    expect(page.locator("#reply-text")).to_have_value("Ein Entwurf, der bleiben soll")
    assert still_the_same_document(page)


def test_status_assignee_and_sla_changes_show_in_the_header_and_banner(
    alice, bob, ticket, asgi_server, browser
):
    page = open_ticket(browser, asgi_server, alice, ticket)
    expect(page.locator("#ticket-status")).to_have_text("New")
    expect(page.locator("#ticket-assignee")).to_have_text("Unassigned")
    expect(page.locator("#sla-banner .sla-alert")).to_have_count(0)

    def assign_to_bob() -> None:
        ticket_assign(
            ticket=Ticket.objects.get(pk=ticket.id), agent=Agent.objects.get(pk=bob.agent_id), actor=None
        )

    committed(assign_to_bob)
    expect(page.locator("#ticket-assignee")).to_have_text(bob.name, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#ticket-status")).to_have_text("Open")  # assigning a new ticket opens it

    clock = committed(lambda: SlaClock.objects.get(pk=ticket.first_response_clock))
    assert clock.warn_at is not None
    assert clock.due_at is not None
    committed(lambda: fire_sla(clock.pk, at=clock.warn_at + dt.timedelta(seconds=1)))
    banner = page.locator("#sla-banner .sla-alert")
    expect(banner).to_have_class(re.compile(r"\bsla-warning\b"), timeout=LIVE_TIMEOUT_MS)
    expect(banner).to_contain_text("SLA warning: First response is due")

    committed(lambda: fire_sla(clock.pk, at=clock.due_at + dt.timedelta(seconds=1)))
    expect(banner).to_have_class(re.compile(r"\bsla-breach\b"), timeout=LIVE_TIMEOUT_MS)
    expect(banner).to_contain_text("SLA breached: First response was due")
    expect(banner.locator("time")).to_have_attribute("datetime", clock.due_at.astimezone(dt.UTC).isoformat())

    # After the SLA part: putting the ticket on hold pauses its clocks.
    committed(
        lambda: ticket_change_status(ticket=Ticket.objects.get(pk=ticket.id), status="on_hold", actor=None)
    )
    expect(page.locator("#ticket-status")).to_have_text(
        "On hold (waiting on a third party)", timeout=LIVE_TIMEOUT_MS
    )
    expect(page.locator("#ticket-status")).to_have_attribute("data-value", "on_hold")
    assert still_the_same_document(page)


def test_one_change_on_two_subscribed_streams_reaches_the_handler_once(alice, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)
    tenant_stream = f"tenant:{ticket.tenant_id}"
    page.evaluate(
        """([ticketStream, tenantStream]) => {
            window.received = [];
            const live = new CareLive();
            window.secondLive = live;
            const handler = (event) => {
                if (event.type !== "ticket.viewers") {  // who is here: not a change of the ticket
                    window.received.push(event.type + " " + event.stream);
                }
            };
            live.subscribe(ticketStream, handler);
            live.subscribe(tenantStream, handler);
        }""",
        [ticket.stream, tenant_stream],
    )
    page.wait_for_function(
        "([a, b]) => window.secondLive.isSubscribed(a) && window.secondLive.isSubscribed(b)",
        arg=[ticket.stream, tenant_stream],
        timeout=LIVE_TIMEOUT_MS,
    )
    before = page.evaluate(
        "streams => streams.map(s => window.secondLive._streams[s].seq)", [ticket.stream, tenant_stream]
    )

    committed(
        lambda: ticket_change_status(ticket=Ticket.objects.get(pk=ticket.id), status="pending", actor=None)
    )

    # Both copies arrived (each stream moved on), the handler ran for the first only.
    page.wait_for_function(
        "([streams, before]) => streams.every((s, i) => window.secondLive._streams[s].seq > before[i])",
        arg=[[ticket.stream, tenant_stream], before],
        timeout=LIVE_TIMEOUT_MS,
    )
    assert page.evaluate("window.received") == [f"ticket.updated {ticket.stream}"]


# Records every message the page sends on any websocket, before the page's scripts run.
RECORD_SENT = """
window.sentMessages = [];
const originalSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
    window.sentMessages.push(JSON.parse(data));
    return originalSend.call(this, data);
};
"""


def test_heartbeats_say_idle_after_five_quiet_minutes_and_typing_notices_are_paced(
    alice, ticket, asgi_server, browser
):
    """What the page sends, with the page's clock under the test's control (it still runs on its own
    between the steps, a few milliseconds)."""
    page = browser.new_context(locale="en-GB").new_page()
    page.add_init_script(RECORD_SENT)
    page.clock.install()
    log_in(page, asgi_server, alice.email, next_path=ticket.path)
    page.wait_for_function(
        "stream => window.careLive.isSubscribed(stream)", arg=ticket.stream, timeout=LIVE_TIMEOUT_MS
    )

    def sent(kind: str) -> list[object]:
        messages = page.evaluate("window.sentMessages")
        return [{k: v for k, v in m.items() if k != "type"} for m in messages if m["type"] == kind]

    assert sent("subscribe") == [{"stream": ticket.stream, "since": None}]
    assert sent("heartbeat") == [{"idle": False}]  # right after the welcome

    # Typing: "true" at the first key, not again within 3 s, again after; "false" 4 s after the last key.
    typing = {"stream": ticket.stream, "typing": True}
    textarea = page.locator("#reply-text")
    textarea.press("a")
    page.clock.run_for(1000)
    textarea.press("b")
    assert sent("typing") == [typing]
    page.clock.run_for(2500)
    textarea.press("c")
    assert sent("typing") == [typing, typing]
    page.clock.run_for(3800)
    assert sent("typing") == [typing, typing]
    page.clock.run_for(400)
    assert sent("typing") == [typing, typing, {**typing, "typing": False}]

    # Five minutes without keyboard or mouse: the next heartbeat says idle; input ends it at once.
    page.clock.fast_forward("05:00")
    assert sent("heartbeat")[-1] == {"idle": True}
    page.mouse.move(40, 40)
    assert sent("heartbeat")[-1] == {"idle": False}


def test_an_agent_whose_access_was_withdrawn_gets_no_more_of_the_ticket(alice, ticket, asgi_server, browser):
    page = open_ticket(browser, asgi_server, alice, ticket)
    committed(lambda: TenantAuthorisation.objects.filter(agent_id=alice.agent_id).delete())

    # The next connection (here: after a drop) is refused the ticket's stream, and the page says so.
    page.evaluate("window.careLive._socket.close()")
    expect(page.locator("#live-state")).to_contain_text(
        "No live updates for this ticket:", timeout=3 * LIVE_TIMEOUT_MS
    )
    assert page.evaluate("s => window.careLive.isSubscribed(s)", ticket.stream) is False
    secret = add_customer_message(ticket, "Nicht mehr für Alice.")
    expect(page.locator(f"#interaction-{secret.pk}")).to_have_count(0)
    assert page.request.get(f"{asgi_server}{ticket.path}").status == 404
