"""The ticket page's timeline: one list across channels (emails with attachments, calls with their
times and recording, social messages with media, internal notes) with the ticket's changes in time
order; the entries endpoint that brings new entries and changes to the open page; and the queries
both cost whatever the timeline's length."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from care.calls.models import Call
from care.connectors.models import InboundMessage, OutboundDelivery, SocialAccount
from care.core.channels import Channel
from care.desk.timeline import safe_recording_url, ticket_timeline_entries
from care.tickets.models import Direction, Interaction, TicketLink
from care.tickets.selectors import access_ticket
from care.tickets.services import (
    attachment_store,
    interaction_add,
    ticket_assign,
    ticket_change_status,
    ticket_link,
    ticket_merge,
    ticket_update,
)
from care.tickets.status import Status
from tests.desk.conftest import page_url
from tests.factories.accounts import make_agent
from tests.factories.contacts import IdentityFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _inbound_email(ticket, *, text="Hallo", subject="", when=None):
    interaction, _ = interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        body_text=text,
        author_identity=ticket.customer.identities.first(),
        occurred_at=when or timezone.now(),
    )
    if subject:
        raw = f"Subject: {subject}\r\n\r\n{text}".encode()
        InboundMessage.objects.create(
            tenant=ticket.tenant,
            channel=Channel.EMAIL,
            provider="email",
            source="cli",
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            interaction=interaction,
            ticket=ticket,
            summary={"subject": subject},
        )
    return interaction


def _call(ticket, agent, *, recording_url="", external_id="call-1"):
    interaction, _ = interaction_add(
        ticket=ticket,
        channel=Channel.PHONE,
        direction=Direction.INBOUND,
        body_text="Inbound call summary",
        external_id=f"call:{external_id}",
        occurred_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC),
    )
    return Call.objects.create(
        tenant=ticket.tenant,
        direction="inbound",
        provider="generic",
        external_id=external_id,
        caller="+4940123456",
        dialled="+493012345678",
        customer=ticket.customer,
        status="ended",
        outcome="answered",
        offered_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC),
        answered_at=dt.datetime(2026, 11, 2, 9, 0, 30, tzinfo=dt.UTC),
        ended_at=dt.datetime(2026, 11, 2, 9, 5, 15, tzinfo=dt.UTC),
        queue_wait_seconds=30,
        talk_seconds=270,
        hold_seconds=15,
        agent=agent,
        recording_url=recording_url,
        ticket=ticket,
        interaction=interaction,
    )


def _entry_html(page, element_id):
    start = page.index(f'id="{element_id}"')
    start = page.rindex("<li", 0, start)
    return page[start : page.index("</li>\n", start)]


# --- each kind of entry ---------------------------------------------------------------------------


def test_email_shows_its_sender_subject_text_and_attachments_with_download_links(
    client, agent, email_ticket, media_root
):
    message = _inbound_email(email_ticket, text="Siehe Anhang.", subject="Rechnung März")
    attachment = attachment_store(
        interaction=message,
        filename="Rechnung März.pdf",
        content=b"%PDF-1.4" * 300,
        content_type="application/pdf",
    )
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    entry = _entry_html(page, f"interaction-{message.pk}")
    assert "entry-inbound" in entry
    assert "entry-type-email" in entry
    assert '<span class="entry-author">greta@example.com</span>' in entry
    assert '<p class="entry-subject">' in entry
    assert "Rechnung März</p>" in entry
    assert "Siehe Anhang." in entry
    url = f"/desk/attachments/{attachment.pk}/Rechnung%20M%C3%A4rz.pdf"
    assert f'<a href="{url}" download>Rechnung März.pdf</a>' in entry
    assert "(2.3\xa0KB)" in entry
    assert client.get(url).status_code == 200


def test_call_shows_its_times_durations_outcome_agent_and_recording_link(client, agent, email_ticket):
    call = _call(email_ticket, agent, recording_url="https://pbx.example.com/rec/1.mp3")
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    entry = _entry_html(page, f"interaction-{call.interaction_id}")
    assert "entry-type-call" in entry
    assert "Inbound call" in entry
    assert "+49 40 123456" in entry  # the caller, in international format
    assert "+49 30 12345678" in entry
    assert 'datetime="2026-11-02T09:00:00+00:00"' in entry  # offered
    assert 'datetime="2026-11-02T09:00:30+00:00"' in entry  # answered
    assert 'datetime="2026-11-02T09:05:15+00:00"' in entry  # ended
    assert '<dd class="call-wait">0:30</dd>' in entry
    assert '<dd class="call-talk">4:30</dd>' in entry
    assert '<dd class="call-hold">0:15</dd>' in entry
    assert '<dd class="call-outcome">Answered</dd>' in entry
    assert f'<dd class="call-agent">{agent.user.full_name}</dd>' in entry
    assert (
        '<a href="https://pbx.example.com/rec/1.mp3" target="_blank" rel="noopener noreferrer">'
        "Listen to the recording</a>"
    ) in entry
    assert "Inbound call summary" not in entry  # the generated summary repeats the facts above


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "data:text/html,<script>x</script>",
        "//evil",
    ],
)
def test_a_recording_address_that_is_not_a_web_link_is_not_a_link(client, agent, email_ticket, url):
    call = _call(email_ticket, agent, recording_url=url)
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    entry = _entry_html(page, f"interaction-{call.interaction_id}")
    assert "<a " not in entry.split('class="entry-recording')[1]
    assert "javascript:" not in entry.lower()
    assert "not a web link" in entry
    assert safe_recording_url(url) is None
    assert safe_recording_url("http://pbx.example.com/r.wav") == "http://pbx.example.com/r.wav"


def test_social_message_shows_platform_handle_and_media(client, agent, tenant_a, media_root):
    ticket = make_ticket(tenant=tenant_a, channel=Channel.SOCIAL, subject="WhatsApp")
    handle = IdentityFactory(
        customer=ticket.customer, kind="social", platform="whatsapp", value="greta_k", display_name="Greta K."
    )
    message, _ = interaction_add(
        ticket=ticket,
        channel=Channel.SOCIAL,
        direction=Direction.INBOUND,
        body_text="Foto vom Zähler",
        author_identity=handle,
    )
    photo = attachment_store(
        interaction=message, filename="meter.jpg", content=b"\xff\xd8jpeg", content_type="image/jpeg"
    )
    client.force_login(agent.user)

    entry = _entry_html(client.get(page_url(ticket)).text, f"interaction-{message.pk}")

    assert "entry-type-social" in entry
    assert '<span class="entry-platform">WhatsApp</span>' in entry
    assert '<span class="entry-handle">@greta_k</span>' in entry
    assert "(Greta K.)" in entry
    assert "Foto vom Zähler" in entry
    assert f'<img src="/desk/attachments/{photo.pk}/meter.jpg" alt="meter.jpg" loading="lazy">' in entry


def test_social_reply_shows_the_account_platform_and_delivery(client, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, channel=Channel.SOCIAL, subject="Telegram")
    account = SocialAccount.objects.create(
        tenant=tenant_a, platform="telegram", name="Bot", account_id="bot-1"
    )
    reply, _ = interaction_add(
        ticket=ticket,
        channel=Channel.SOCIAL,
        direction=Direction.OUTBOUND,
        body_text="Gern!",
        author_user=agent.user,
    )
    OutboundDelivery.objects.create(
        tenant=tenant_a,
        interaction=reply,
        channel=Channel.SOCIAL,
        social_account=account,
        recipient="12345",
        status="sent",
    )
    client.force_login(agent.user)

    entry = _entry_html(client.get(page_url(ticket)).text, f"interaction-{reply.pk}")

    assert '<span class="entry-platform">Telegram</span>' in entry
    assert "to 12345: Sent" in entry
    assert "Gern!" in entry


def test_internal_note_is_marked_as_such(client, agent, email_ticket):
    note = Interaction.objects.get(ticket=email_ticket, direction=Direction.NOTE)
    client.force_login(agent.user)

    entry = _entry_html(client.get(page_url(email_ticket)).text, f"interaction-{note.pk}")

    assert 'class="entry entry-note entry-type-note"' in entry
    assert '<span class="entry-kind">Internal note</span>' in entry


def test_changes_are_interleaved_with_the_entries_in_time_order(client, agent, email_ticket):
    _inbound_email(email_ticket, text="Vorher", when=timezone.now() - dt.timedelta(hours=1))
    ticket_change_status(ticket=email_ticket, status=Status.PENDING, actor=agent.user)
    ticket_update(ticket=email_ticket, actor=agent.user, priority=3, tags=["zähler"])
    _inbound_email(email_ticket, text="Nachher", when=timezone.now() + dt.timedelta(seconds=1))
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    name = agent.user.full_name
    status_change = "changed the status from Open to Pending (waiting on the customer)"
    assert f'<span class="change-actor">{name}</span>' in page
    assert status_change in page
    assert "changed the priority from Normal to High" in page
    assert "added the tags zähler" in page
    assert f"assigned the ticket to {name}" in page  # by the fixture, without an actor
    assert "set the status" not in page  # the creation is not a change
    assert (
        page.index("Vorher")
        < page.index(status_change)
        < page.index("changed the priority")
        < page.index("Nachher")
    )
    # The changes are not interactions: the timeline's interaction count is unchanged.
    assert page.count('class="entry entry-') == 5


def test_a_link_to_another_ticket_links_to_its_page(client, agent, email_ticket, tenant_a):
    other = make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject="Früher")
    ticket_link(source=email_ticket, target=other, kind=TicketLink.Kind.RELATED, actor=agent.user)
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert (
        f'linked this ticket: Related to <a href="/desk/tickets/{other.reference}/">{other.reference}</a>'
        in page
    )


def test_reassignments_name_both_agents(client, agent, email_ticket, tenant_a):
    bob = make_agent(tenants=[tenant_a], email="bob@care.test")
    ticket = ticket_assign(ticket=email_ticket, agent=bob, actor=agent.user)
    ticket_assign(ticket=ticket, agent=None, actor=agent.user)
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert f"assigned the ticket to {bob.user.full_name}" in page
    assert f"unassigned {bob.user.full_name}" in page


def test_a_merge_shows_on_both_timelines_with_links(client, agent, email_ticket, tenant_a):
    source = make_ticket(tenant=tenant_a, customer=email_ticket.customer, subject="Doppelt")
    interaction_add(
        ticket=source,
        channel=Channel.EMAIL,
        direction=Direction.NOTE,
        body_text="Doppelt",
        author_user=agent.user,
    )
    ticket_merge(source=source, target=email_ticket, actor=agent.user)
    client.force_login(agent.user)

    target_page = client.get(page_url(email_ticket)).text
    source_page = client.get(page_url(source)).text

    source_link = f'<a href="/desk/tickets/{source.reference}/">{source.reference}</a>'
    target_link = f'<a href="/desk/tickets/{email_ticket.reference}/">{email_ticket.reference}</a>'
    assert f"merged another ticket into this one: {source_link}" in target_page
    assert "moved 1 timeline entry here" in target_page
    assert f"merged this ticket into {target_link}" in source_page


# --- the entries endpoint for live updates ------------------------------------------------------


def test_entries_bring_the_changes_after_the_newest_the_page_shows(client, agent, email_ticket):
    client.force_login(agent.user)
    shown = client.get(page_url(email_ticket, "entries"), {"all": "1", "events_after": 0}).json()
    newest = max(event["id"] for event in shown["events"])
    assert all('class="change change-' in event["html"] for event in shown["events"])

    ticket_change_status(ticket=email_ticket, status=Status.SOLVED, actor=agent.user)
    data = client.get(page_url(email_ticket, "entries"), {"events_after": newest}).json()

    assert data["entries"] == []
    assert len(data["events"]) == 1
    assert "changed the status from Open to Solved" in data["events"][0]["html"]
    assert data["events"][0]["id"] > newest
    assert data["ticket"]["status"] == "solved"
    assert "clocks" in data
    # Asking by interaction id only brings no changes.
    note = Interaction.objects.get(ticket=email_ticket, direction=Direction.NOTE)
    assert client.get(page_url(email_ticket, "entries"), {"id": note.pk}).json()["events"] == []
    assert client.get(page_url(email_ticket, "entries"), {"events_after": "x"}).status_code == 400


def test_entries_of_another_tenants_ticket_are_not_found(client, outsider, email_ticket):
    client.force_login(outsider.user)

    assert client.get(page_url(email_ticket, "entries"), {"events_after": 0}).status_code == 404


# --- queries -------------------------------------------------------------------------------------


def _grow(ticket, agent, count, media_root, start=0):
    """Every kind of entry, ``count`` times: emails with attachments, calls, notes and changes."""
    for number in range(start, start + count):
        message = _inbound_email(ticket, text=f"Mail {number}", subject=f"Betreff {number}")
        attachment_store(interaction=message, filename=f"f{number}.txt", content=f"{number}".encode())
        _call(ticket, agent, recording_url="https://pbx.example.com/r.mp3", external_id=f"c{number}")
        interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.NOTE,
            body_text="n",
            author_user=agent.user,
        )
        ticket_update(ticket=ticket, actor=agent.user, tags=[f"t{number}"])


def _count(client, url, params=None):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params or {}).status_code == 200
    return len(queries)


def test_the_timeline_costs_three_queries_whatever_its_length(
    agent, email_ticket, media_root, django_assert_num_queries
):
    _grow(email_ticket, agent, 1, media_root)
    ticket = access_ticket(agent.user, email_ticket.reference)
    # interactions (with authors, call, delivery, subject), attachments, changes (with actors)
    with django_assert_num_queries(3):
        small = ticket_timeline_entries(ticket=ticket)

    _grow(email_ticket, agent, 25, media_root, start=1)
    ticket = access_ticket(agent.user, email_ticket.reference)
    with django_assert_num_queries(3):
        large = ticket_timeline_entries(ticket=ticket)
    assert len(large) == len(small) + 25 * 4


def test_page_and_entries_queries_do_not_grow_with_the_timeline(client, agent, email_ticket, media_root):
    client.force_login(agent.user)
    _grow(email_ticket, agent, 1, media_root)
    page_small = _count(client, page_url(email_ticket))
    ids = list(Interaction.objects.filter(ticket=email_ticket).values_list("pk", flat=True))
    by_id_small = _count(client, page_url(email_ticket, "entries"), {"id": ids})
    all_small = _count(client, page_url(email_ticket, "entries"), {"all": "1", "events_after": 0})

    _grow(email_ticket, agent, 50, media_root, start=1)
    ids = list(Interaction.objects.filter(ticket=email_ticket).values_list("pk", flat=True))[:100]

    assert _count(client, page_url(email_ticket)) == page_small
    assert _count(client, page_url(email_ticket, "entries"), {"id": ids}) == by_id_small
    assert _count(client, page_url(email_ticket, "entries"), {"all": "1", "events_after": 0}) == all_small


def test_entries_queries_are_pinned(client, agent, email_ticket, media_root, django_assert_num_queries):
    _grow(email_ticket, agent, 3, media_root)
    client.force_login(agent.user)
    ids = list(Interaction.objects.filter(ticket=email_ticket).values_list("pk", flat=True))
    # session, user, the user's tenants, ticket, interactions (with calls, deliveries, subjects),
    # attachments, SLA clocks
    with django_assert_num_queries(7):
        client.get(page_url(email_ticket, "entries"), {"id": ids})
    with django_assert_num_queries(7):
        client.get(page_url(email_ticket, "entries"), {"all": "1"})
    # ... and the changes (after a reload)
    with django_assert_num_queries(8):
        client.get(page_url(email_ticket, "entries"), {"all": "1", "events_after": 0})
    # only the changes: no interaction is asked for, so none is read
    with django_assert_num_queries(6):
        client.get(page_url(email_ticket, "entries"), {"events_after": 0})
