"""Issue 8's "done when", on the demo's own accounts: a WhatsApp message and a Messenger message for
a demo tenant (SWN) become tickets with the right customer, the agent's reply leaves as each
platform expects (the exact Graph API request, mocked at the HTTP boundary), and the platform's
status callback marks it delivered. The inbound bodies are the corpus samples, pointed at the demo
accounts and signed with the demo app secret.
"""

from __future__ import annotations

import copy
import json

import pytest
import responses
from django.test.utils import override_settings
from django.utils import timezone

from care.accounts.models import Agent
from care.connectors.models import DeliveryStatus, OutboundDelivery, SocialAccount, SocialConversation
from care.connectors.social.outbound import social_reply
from care.connectors.social.outbound_tasks import send_social_delivery
from care.demo.build import seed_demo_social
from care.demo.social import DEMO_APP_SECRET
from tests.social.conftest import sign, webhook_url
from tests.social.corpus import corpus_json

pytestmark = pytest.mark.django_db

SWN_WHATSAPP, SWN_PAGE = "104940808001", "204940808001"


@pytest.fixture
def demo():
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        accounts = seed_demo_social(now=timezone.now())
    for account in accounts.values():
        account.access_token = f"token-{account.platform}"
        account.save()
    agent = Agent.objects.select_related("user").get(user__email="agent@care.example")
    return accounts, agent


def post(client, account: SocialAccount, body: dict) -> dict:
    raw = json.dumps(body).encode()
    response = client.post(
        webhook_url(account),
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign(DEMO_APP_SECRET, raw)},
    )
    assert response.status_code == 200, response.content
    return response.json()


def whatsapp(sample: str, *, number_id: str, **status_changes: str) -> dict:
    body = copy.deepcopy(corpus_json(f"whatsapp/pywa/{sample}"))
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = number_id
    for status in value.get("statuses", []):
        status.update(status_changes)
    return body


def messenger(item: dict, page_id: str) -> dict:
    return {
        "object": "page",
        "entry": [{"id": page_id, "time": item.get("timestamp", 0), "messaging": [item]}],
    }


@responses.activate
def test_whatsapp_message_to_ticket_reply_and_delivered(client, demo):
    accounts, agent = demo
    account = accounts[SWN_WHATSAPP]
    sample = whatsapp("message__text.json", number_id=SWN_WHATSAPP)
    # The sample is from 2023; the customer writes now (the reply window counts from here).
    sample["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(
        int(timezone.now().timestamp())
    )

    assert post(client, account, sample)["created"] == 1

    conversation = SocialConversation.objects.select_related("ticket__customer", "identity").get(
        account=account, sender_id="972987654321"
    )
    ticket = conversation.ticket
    assert (ticket.tenant.code, ticket.customer.display_name, ticket.subject) == (
        "SWN",
        "Test Name",
        "Body Text",
    )
    assert (conversation.identity.platform, conversation.identity.value) == ("whatsapp", "972987654321")

    responses.post(
        f"{account.api_base}/{SWN_WHATSAPP}/messages",
        json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT-1"}]},
        match=[
            responses.matchers.header_matcher({"Authorization": "Bearer token-whatsapp"}),
            responses.matchers.json_params_matcher(
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "972987654321",
                    "type": "text",
                    "text": {"preview_url": False, "body": "Guten Tag! Wir kümmern uns darum."},
                }
            ),
        ],
    )
    interaction = social_reply(ticket=ticket, author=agent.user, text="Guten Tag! Wir kümmern uns darum.")
    delivery = OutboundDelivery.objects.get(interaction=interaction)
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    post(
        client,
        account,
        whatsapp("message_status__sent.json", number_id=SWN_WHATSAPP, id="wamid.OUT-1", status="delivered"),
    )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id) == (DeliveryStatus.DELIVERED, "wamid.OUT-1")
    assert delivery.delivered_at is not None


@responses.activate
def test_messenger_message_to_ticket_reply_and_delivered(client, demo):
    accounts, agent = demo
    account = accounts[SWN_PAGE]
    item = copy.deepcopy(corpus_json("messenger/bottender/text_message.messaging-event.json"))
    item["recipient"]["id"] = SWN_PAGE
    item["timestamp"] = int(timezone.now().timestamp() * 1000)
    customer_psid = item["sender"]["id"]

    assert post(client, account, messenger(item, SWN_PAGE))["created"] == 1

    conversation = SocialConversation.objects.select_related("ticket__customer", "identity").get(
        account=account, sender_id=customer_psid
    )
    ticket = conversation.ticket
    assert ticket.tenant.code == "SWN"
    assert (conversation.identity.platform, conversation.identity.value) == ("messenger", customer_psid)
    assert ticket.interactions.get().body_text == "Sharp tools make good work."

    responses.post(
        f"{account.api_base}/{SWN_PAGE}/messages",
        json={"recipient_id": customer_psid, "message_id": "m_OUT-1"},
        match=[
            responses.matchers.header_matcher({"Authorization": "Bearer token-messenger"}),
            responses.matchers.json_params_matcher(
                {
                    "recipient": {"id": customer_psid},
                    "messaging_type": "RESPONSE",
                    "message": {"text": "Gern, wir melden uns heute noch."},
                }
            ),
        ],
    )
    interaction = social_reply(ticket=ticket, author=agent.user, text="Gern, wir melden uns heute noch.")
    delivery = OutboundDelivery.objects.get(interaction=interaction)
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    report = copy.deepcopy(corpus_json("messenger/bottender/delivery.messaging-event.json"))
    report["sender"], report["recipient"] = {"id": customer_psid}, {"id": SWN_PAGE}
    report["delivery"]["mids"] = ["m_OUT-1"]
    report["delivery"]["watermark"] = int(timezone.now().timestamp() * 1000)
    post(client, account, messenger(report, SWN_PAGE))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id) == (DeliveryStatus.DELIVERED, "m_OUT-1")
