"""Replying and adding internal notes from the ticket page: by the page's script (JSON) and by a
plain form post (no script), and what bad input gets."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from care.connectors.models import DeliveryStatus, Mailbox, OutboundDelivery
from care.tickets.models import Direction, Interaction
from care.tickets.services import ticket_change_status
from config.celery import app as celery_app
from tests.desk.conftest import CUSTOMER_ADDRESS, page_url

pytestmark = pytest.mark.django_db

JSON = {"accept": "application/json"}


@pytest.fixture
def mailbox(tenant_a, media_root):
    return Mailbox.objects.create(tenant=tenant_a, name="Support", address="support@energie-nord.test")


def _newest(ticket):
    return Interaction.objects.filter(ticket=ticket).order_by("-pk").first()


def test_note_from_the_script_is_stored_and_answered_with_its_rendered_entry(client, agent, email_ticket):
    client.force_login(agent.user)

    response = client.post(
        page_url(email_ticket, "note"), {"text": "  Rückruf morgen früh.\r\n"}, headers=JSON
    )

    assert response.status_code == 201
    note = _newest(email_ticket)
    assert (note.direction, note.body_text, note.author_user, note.channel) == (
        Direction.NOTE,
        "Rückruf morgen früh.",
        agent.user,
        "email",
    )
    entry = response.json()["entry"]
    assert entry["id"] == note.pk
    assert f'data-interaction-id="{note.pk}"' in entry["html"]
    assert "entry-note" in entry["html"]
    assert "Rückruf morgen früh." in entry["html"]
    assert not OutboundDelivery.objects.filter(interaction=note).exists()  # notes are never sent


def test_plain_form_post_redirects_back_to_the_new_entry(client, agent, email_ticket):
    client.force_login(agent.user)

    response = client.post(page_url(email_ticket, "note"), {"text": "Ohne Skript."})

    note = _newest(email_ticket)
    assert response.status_code == 303
    assert response["Location"] == f"/desk/tickets/{email_ticket.reference}/#interaction-{note.pk}"
    assert note.body_text == "Ohne Skript."


def test_email_reply_goes_out_through_the_email_connector(
    client, agent, email_ticket, mailbox, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    client.force_login(agent.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(email_ticket, "reply"), {"text": "Der Stand ist korrigiert."}, headers=JSON
        )

    assert response.status_code == 201
    reply = _newest(email_ticket)
    assert (reply.direction, reply.author_user) == (Direction.OUTBOUND, agent.user)
    delivery = OutboundDelivery.objects.get(interaction=reply)
    assert (delivery.status, delivery.recipient, delivery.mailbox) == (
        DeliveryStatus.SENT,
        CUSTOMER_ADDRESS,
        mailbox,
    )
    [sent] = mail.outbox
    assert sent.to == [CUSTOMER_ADDRESS]
    assert sent.subject == f"Re: Zählerstand falsch [{email_ticket.reference}]"
    assert "Der Stand ist korrigiert." in sent.body


def test_reply_on_a_phone_ticket_is_recorded_as_outbound(client, agent, phone_ticket):
    client.force_login(agent.user)

    response = client.post(
        page_url(phone_ticket, "reply"), {"text": "Zurückgerufen, alles geklärt."}, headers=JSON
    )

    assert response.status_code == 201
    reply = _newest(phone_ticket)
    assert (reply.direction, reply.channel, reply.author_user) == (Direction.OUTBOUND, "phone", agent.user)
    assert not OutboundDelivery.objects.exists()


@pytest.mark.parametrize("text", ["", "   \r\n  "])
@pytest.mark.parametrize("action", ["reply", "note"])
def test_empty_text_is_a_400_with_a_message_and_writes_nothing(
    client, agent, email_ticket, mailbox, action, text
):
    client.force_login(agent.user)
    before = Interaction.objects.count()

    script = client.post(page_url(email_ticket, action), {"text": text}, headers=JSON)
    form = client.post(page_url(email_ticket, action), {"text": text})
    missing = client.post(page_url(email_ticket, action), {}, headers=JSON)

    assert script.status_code == form.status_code == missing.status_code == 400
    assert script.json() == {"error": "Write something first: the text is empty."}
    assert "Write something first: the text is empty." in form.text  # the page, with the message
    assert 'id="reply-form"' in form.text
    assert Interaction.objects.count() == before


def test_a_refused_email_reply_is_a_400_with_the_reason_and_the_text_kept(client, agent, email_ticket):
    client.force_login(agent.user)  # tenant A has no mailbox

    script = client.post(page_url(email_ticket, "reply"), {"text": "Hallo"}, headers=JSON)
    form = client.post(page_url(email_ticket, "reply"), {"text": "Mein Entwurf"})

    assert script.status_code == 400
    assert "has no active mailbox" in script.json()["error"]
    assert form.status_code == 400
    assert "has no active mailbox" in form.text
    assert ">Mein Entwurf</textarea>" in form.text
    assert not OutboundDelivery.objects.exists()


def test_closed_ticket_takes_no_email_reply(client, agent, email_ticket, mailbox):
    ticket_change_status(ticket=email_ticket, status="closed", actor=None)
    client.force_login(agent.user)

    response = client.post(page_url(email_ticket, "reply"), {"text": "Noch etwas"}, headers=JSON)

    assert response.status_code == 400
    assert "is closed" in response.json()["error"]


def test_overlong_text_is_refused(client, agent, email_ticket):
    client.force_login(agent.user)

    response = client.post(page_url(email_ticket, "note"), {"text": "x" * 50_001}, headers=JSON)

    assert response.status_code == 400
    assert "too long" in response.json()["error"]


def test_posting_needs_the_csrf_token(agent, email_ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    before = Interaction.objects.count()

    response = client.post(page_url(email_ticket, "note"), {"text": "Ohne Token"}, headers=JSON)

    assert response.status_code == 403
    assert Interaction.objects.count() == before


def test_token_from_the_page_is_accepted(agent, email_ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    page = client.get(page_url(email_ticket))
    token = page.context["csrf_token"]

    response = client.post(
        page_url(email_ticket, "note"), {"text": "Mit Token"}, headers={**JSON, "x-csrftoken": str(token)}
    )

    assert response.status_code == 201


def test_reading_endpoints_take_get_only_and_writing_ones_post_only(client, agent, email_ticket):
    client.force_login(agent.user)

    assert client.get(page_url(email_ticket, "note")).status_code == 405
    assert client.get(page_url(email_ticket, "reply")).status_code == 405
    assert client.post(page_url(email_ticket), {"text": "x"}).status_code == 405
    assert client.post(page_url(email_ticket, "entries")).status_code == 405


# --- the entries the script fetches ------------------------------------------------------------


def test_entries_by_id_are_rendered_like_the_page_with_the_banner_and_header(client, agent, email_ticket):
    client.force_login(agent.user)
    inbound, outbound, note = Interaction.objects.filter(ticket=email_ticket).order_by("pk")

    response = client.get(page_url(email_ticket, "entries"), {"id": [note.pk, inbound.pk]})

    assert response.status_code == 200
    data = response.json()
    assert [entry["id"] for entry in data["entries"]] == [inbound.pk, note.pk]
    assert "entry-inbound" in data["entries"][0]["html"]
    assert "entry-note" in data["entries"][1]["html"]
    assert data["entries"][0]["order"] < data["entries"][1]["order"]
    assert data["sla"] == ""
    assert data["ticket"] == {
        "status": "open",
        "priority": 2,
        "subject": "Zählerstand falsch",
        "assignee": {"id": agent.pk, "name": agent.user.full_name},
    }
    every = client.get(page_url(email_ticket, "entries"), {"all": "1"}).json()["entries"]
    assert [entry["id"] for entry in every] == [inbound.pk, outbound.pk, note.pk]


def test_entries_of_another_ticket_are_not_returned(client, agent, email_ticket, phone_ticket):
    client.force_login(agent.user)
    other = client.post(page_url(phone_ticket, "note"), {"text": "Anderes Ticket"}, headers=JSON).json()

    response = client.get(page_url(email_ticket, "entries"), {"id": other["entry"]["id"]})

    assert response.json()["entries"] == []


def test_entries_with_bad_ids_are_a_400(client, agent, email_ticket):
    client.force_login(agent.user)

    assert client.get(page_url(email_ticket, "entries"), {"id": "x"}).status_code == 400
    assert client.get(page_url(email_ticket, "entries"), {"id": list(range(1, 102))}).status_code == 400


def test_entries_queries_are_pinned(client, agent, email_ticket, django_assert_num_queries):
    client.force_login(agent.user)
    ids = list(Interaction.objects.filter(ticket=email_ticket).values_list("pk", flat=True))
    # session, user, the user's tenants, ticket, interactions, attachments, SLA clocks.
    with django_assert_num_queries(7):
        client.get(page_url(email_ticket, "entries"), {"id": ids})
    with django_assert_num_queries(7):
        client.get(page_url(email_ticket, "entries"), {"all": "1"})
