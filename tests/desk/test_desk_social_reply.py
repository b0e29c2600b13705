"""Replying on a social ticket from the ticket page: the reply goes out through the social connector,
and a reply the platform would refuse is refused with the reason on the page (never a 500)."""

from __future__ import annotations

import datetime as dt
import html
import uuid

import pytest
import responses
from django.utils import timezone

from care.connectors.models import DeliveryStatus, OutboundDelivery
from care.connectors.social import ratelimit
from care.tickets.models import Interaction
from config.celery import app as celery_app
from tests.desk.conftest import page_url
from tests.social.test_social_outbound import GENERIC_API, GRAPH, LONG_AGO, social_ticket

pytestmark = pytest.mark.django_db

JSON = {"accept": "application/json"}
REFUSAL = (
    "The customer last wrote on Jan. 5, 2026, 10:30 a.m. (Europe/Berlin); outside WhatsApp's 24-hour "
    "window only an approved template may be sent."
)


@pytest.fixture(autouse=True)
def own_rate_limit_keys(settings):
    prefix = f"care-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield
    client = ratelimit.redis_for(settings.CACHE_URL)
    leftovers = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def late_whatsapp_ticket(tenant_a):
    return social_ticket(
        tenant_a, platform="whatsapp", sender_id="4915112345678", last_inbound_at=LONG_AGO, api_base=""
    )


def test_reply_on_a_social_ticket_is_sent_through_the_platform(
    client, agent, tenant_a, http, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    ticket = social_ticket(tenant_a, last_inbound_at=timezone.now() - dt.timedelta(minutes=5))
    http.post(
        f"{GENERIC_API}/messages",
        json={"id": "out-desk"},
        match=[
            responses.matchers.json_params_matcher(
                {"to": "u-42", "text": "Schon erledigt.", "conversation": "c-7", "reply_to": ""}
            )
        ],
    )
    client.force_login(agent.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page_url(ticket, "reply"), {"text": "Schon erledigt."}, headers=JSON)

    assert response.status_code == 201
    delivery = OutboundDelivery.objects.get(interaction_id=response.json()["entry"]["id"])
    assert (delivery.channel, delivery.status, delivery.message_id, delivery.recipient) == (
        "social",
        DeliveryStatus.SENT,
        "out-desk",
        "u-42",
    )
    assert delivery.interaction.author_user == agent.user


def test_refusal_outside_the_window_is_shown_on_the_page(client, agent, late_whatsapp_ticket):
    client.force_login(agent.user)
    before = Interaction.objects.count()

    response = client.post(page_url(late_whatsapp_ticket, "reply"), {"text": "Sind Sie noch da?"})

    assert response.status_code == 400
    page = response.content.decode()
    assert html.escape(REFUSAL) in page
    assert "Sind Sie noch da?" in page  # the agent's text is kept in the form
    assert Interaction.objects.count() == before
    assert not OutboundDelivery.objects.exists()


def test_refusal_outside_the_window_is_answered_to_the_script(client, agent, late_whatsapp_ticket):
    client.force_login(agent.user)

    response = client.post(
        page_url(late_whatsapp_ticket, "reply"), {"text": "Sind Sie noch da?"}, headers=JSON
    )

    assert response.status_code == 400
    assert response.json() == {"error": REFUSAL}
    assert not OutboundDelivery.objects.exists()


def test_a_template_from_the_page_is_allowed_outside_the_window(
    client, agent, late_whatsapp_ticket, http, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    reference = late_whatsapp_ticket.reference
    http.post(
        f"{GRAPH}/acc-1-ENN/messages",
        json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.DESK"}]},
        match=[
            responses.matchers.json_params_matcher(
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "4915112345678",
                    "type": "template",
                    "template": {
                        "name": "ticket_update",
                        "language": {"code": "de"},
                        "components": [{"type": "body", "parameters": [{"type": "text", "text": reference}]}],
                    },
                }
            )
        ],
    )
    client.force_login(agent.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(late_whatsapp_ticket, "reply"),
            {
                "text": "Status-Update per Vorlage",
                "template_name": "ticket_update",
                "template_language": "de",
                "template_parameters": f"{reference}\r\n\r\n",
            },
            headers=JSON,
        )

    assert response.status_code == 201
    delivery = OutboundDelivery.objects.get(interaction_id=response.json()["entry"]["id"])
    assert (delivery.status, delivery.message_id) == (DeliveryStatus.SENT, "wamid.DESK")
    assert delivery.interaction.body_text == (
        f"Status-Update per Vorlage\n[Template ticket_update (de): {reference}]"
    )


def test_the_page_offers_template_fields_on_social_tickets_only(
    client, agent, late_whatsapp_ticket, phone_ticket
):
    client.force_login(agent.user)

    social_page = client.get(page_url(late_whatsapp_ticket)).content.decode()
    phone_page = client.get(page_url(phone_ticket)).content.decode()

    assert 'name="template_name"' in social_page
    assert 'name="template_name"' not in phone_page


def test_an_agent_of_another_tenant_cannot_reply_from_the_page(client, outsider, tenant_a):
    ticket = social_ticket(tenant_a)
    client.force_login(outsider.user)

    response = client.post(page_url(ticket, "reply"), {"text": "Fremd"}, headers=JSON)

    assert response.status_code == 404
    assert not OutboundDelivery.objects.exists()
