"""A long ticket opens with its newest entries: the ticket page shows the newest ``TIMELINE_WINDOW``
interactions and the changes among them, and "Show earlier entries" brings the rest in windows of
the same size (``entries?before=<id>``), or the whole timeline without script (``?timeline=all``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from care.core.channels import Channel
from care.desk.timeline import ticket_timeline_window
from care.tickets.models import Direction, Interaction
from care.tickets.services import interaction_add, ticket_update
from tests.desk.conftest import page_url
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db

START = timezone.now() - dt.timedelta(days=2)


def _notes(ticket, author, count, *, start=0):
    """``count`` notes one minute apart, after those already there; returns their ids, oldest first."""
    ids = []
    for index in range(start, start + count):
        interaction, _ = interaction_add(
            ticket=ticket,
            channel=ticket.channel,
            direction=Direction.NOTE,
            body_text=f"note number {index:03d}",
            author_user=author,
            occurred_at=START + dt.timedelta(minutes=index),
        )
        ids.append(interaction.pk)
    return ids


def _shown_ids(html: str) -> list[int]:
    return [int(value) for value in re.findall(r'data-interaction-id="(\d+)"', html)]


def test_a_short_ticket_shows_everything_and_no_earlier_link(client, agent, email_ticket):
    client.force_login(agent.user)
    html = client.get(page_url(email_ticket)).content.decode()
    assert 'id="load-earlier"' not in html
    assert _shown_ids(html) == list(
        Interaction.objects.filter(ticket=email_ticket)
        .order_by("occurred_at", "pk")
        .values_list("pk", flat=True)
    )


def test_a_long_ticket_opens_with_its_newest_window_and_loads_the_rest(client, agent, tenant_a, settings):
    ticket = make_ticket(tenant=tenant_a, channel=Channel.PHONE)
    ids = _notes(ticket, agent.user, 7)
    window = 3
    first = ticket_timeline_window(ticket=ticket, limit=window)
    assert [entry["interaction"].pk for entry in first.entries] == ids[-3:]
    assert first.earlier_before == ids[-3]

    second = ticket_timeline_window(ticket=ticket, before_id=first.earlier_before, limit=window)
    assert [entry["interaction"].pk for entry in second.entries] == ids[1:4]
    assert second.earlier_before == ids[1]

    last = ticket_timeline_window(ticket=ticket, before_id=second.earlier_before, limit=window)
    assert [entry["interaction"].pk for entry in last.entries] == ids[:1]
    assert last.earlier_before is None


def test_changes_go_with_the_window_of_their_time(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, channel=Channel.PHONE)
    ids = _notes(ticket, agent.user, 4)
    # A change between the second and the third note belongs to the window that starts at the third.
    ticket_update(ticket=ticket, actor=agent.user, priority=3)
    event_time = START + dt.timedelta(minutes=1, seconds=30)
    ticket.events.filter(kind="updated").update(created_at=event_time)

    newest = ticket_timeline_window(ticket=ticket, limit=2)
    kinds = [(entry["kind"], entry.get("interaction", entry.get("event")).pk) for entry in newest.entries]
    assert [pk for kind, pk in kinds if kind != "event"] == ids[2:]
    assert not any(kind == "event" for kind, _pk in kinds)

    older = ticket_timeline_window(ticket=ticket, before_id=newest.earlier_before, limit=2)
    assert [entry["kind"] for entry in older.entries][-1] == "event"
    assert [entry["interaction"].pk for entry in older.entries if entry["kind"] != "event"] == ids[:2]


def test_the_page_and_the_earlier_endpoint_over_http(client, agent, tenant_a, monkeypatch):
    monkeypatch.setattr("care.desk.views.TIMELINE_WINDOW", 5)
    ticket = make_ticket(tenant=tenant_a, channel=Channel.PHONE)
    ids = _notes(ticket, agent.user, 12)
    client.force_login(agent.user)

    html = client.get(page_url(ticket)).content.decode()
    assert _shown_ids(html) == ids[-5:]
    assert f'data-before="{ids[-5]}"' in html
    assert "?timeline=all#timeline" in html

    answer = client.get(page_url(ticket, "entries"), {"before": ids[-5]}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    data = answer.json()
    # The endpoint's windows are TIMELINE_WINDOW (50) long: the remaining seven in one answer.
    assert [entry["id"] for entry in data["entries"]] == ids[:-5]
    assert data["earlier"] is None
    assert "note number 000" in data["entries"][0]["html"]

    everything = client.get(page_url(ticket), {"timeline": "all"}).content.decode()
    assert _shown_ids(everything) == ids
    assert 'id="load-earlier"' not in everything


def test_earlier_entries_of_another_ticket_or_tenant_are_not_given(
    client, agent, outsider, tenant_a, tenant_b
):
    mine = make_ticket(tenant=tenant_a, channel=Channel.PHONE)
    theirs = make_ticket(tenant=tenant_b, channel=Channel.PHONE)
    _notes(mine, agent.user, 2)
    their_ids = _notes(theirs, outsider.user, 3)
    client.force_login(agent.user)
    # Another ticket's interaction as the anchor: an empty window, nothing of that ticket.
    answer = client.get(page_url(mine, "entries"), {"before": their_ids[-1]})
    assert answer.status_code == 200
    assert answer.json() == {"entries": [], "events": [], "earlier": None}
    # The other tenant's ticket itself: 404, as for every page of it.
    assert client.get(page_url(theirs, "entries"), {"before": their_ids[-1]}).status_code == 404
    assert client.get(page_url(mine, "entries"), {"before": "abc"}).status_code == 400


def test_the_window_costs_the_same_queries_whatever_the_length(
    client, agent, tenant_a, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr("care.desk.views.TIMELINE_WINDOW", 5)
    ticket = make_ticket(tenant=tenant_a, channel=Channel.PHONE)
    ids = _notes(ticket, agent.user, 8)
    client.force_login(agent.user)
    url = page_url(ticket, "entries")
    # session, user, the user's tenants, ticket, the anchor, interactions, attachments, changes
    with django_assert_num_queries(8):
        client.get(url, {"before": ids[-1]})
    _notes(ticket, agent.user, 40, start=8)
    with django_assert_num_queries(8):
        client.get(url, {"before": ids[-1]})
