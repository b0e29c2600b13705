"""``/inbound/social/<slug>/<token>/``: bad input answers 4xx with a reason (and stores nothing when
the request is not authentic), every authentic body is stored before it is parsed, a replay is
answered 200 without a duplicate, and one tenant's token never touches another tenant.

The generic adapter carries these tests; one corpus sample per platform goes through the endpoint
when that platform's adapter is installed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from care.connectors.models import InboundMessage, InboundStatus, SocialAccount, SocialConversation
from care.connectors.social import views
from care.connectors.social.ingest import social_receive
from care.contacts.identities import SocialPlatform
from care.contacts.models import Identity
from care.core.channels import Channel
from care.tickets.models import Interaction, Ticket
from tests.social.conftest import body, make_account, message, sign, webhook_url
from tests.social.corpus import corpus_file, corpus_json

pytestmark = pytest.mark.django_db


def social_interactions():
    return Interaction.objects.filter(channel=Channel.SOCIAL)


# --- 404, 403, 400, 405, 413 ----------------------------------------------------------------------


def test_unknown_platform_slug_is_404(client, account) -> None:
    response = client.post(
        f"/inbound/social/myspace/{account.inbound_token}/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert "myspace" in response.json()["error"]
    assert not InboundMessage.objects.exists()


def test_unknown_token_is_404(client, account) -> None:
    response = client.post(
        "/inbound/social/generic/not-a-token/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json() == {"error": "No active generic account has this token."}
    assert not InboundMessage.objects.exists()


def test_inactive_account_is_404(post, account) -> None:
    SocialAccount.objects.filter(pk=account.pk).update(is_active=False)
    response = post(account, body(message()))
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


def test_a_token_used_with_another_platforms_slug_is_404(post, account) -> None:
    response = post(account, body(message()), slug="whatsapp")
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("signature", ["", "sha256=deadbeef", "not-even-a-signature"])
def test_bad_signature_is_403_and_stores_nothing(post, account, signature) -> None:
    response = post(account, body(message()), signature=signature)
    assert response.status_code == 403
    assert "X-Care-Signature" in response.json()["error"]
    assert not InboundMessage.objects.exists()
    assert not Ticket.objects.exists()


def test_signature_of_another_body_is_403(post, account) -> None:
    response = post(
        account, body(message(text="changed")), signature=sign(account.app_secret, body(message()))
    )
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_malformed_json_is_400_and_stays_stored_as_failed(post, account) -> None:
    response = post(account, b'{"messages": [')
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    stored = InboundMessage.objects.get()
    assert response.json()["id"] == stored.pk
    assert (stored.status, stored.channel, stored.provider) == (
        InboundStatus.FAILED,
        "social",
        "social-generic",
    )
    assert bytes(stored.raw) == b'{"messages": ['
    assert "not valid JSON" in stored.error
    assert not Ticket.objects.exists()


def test_a_body_of_the_wrong_shape_is_400_with_the_reason(post, account) -> None:
    response = post(account, json.dumps({"messages": [{"id": "m-1", "text": "hi"}]}).encode())
    assert response.status_code == 400
    assert response.json()["error"] == 'Message 1: "from" must be a JSON object.'


def test_an_empty_body_is_400(post, account) -> None:
    response = post(account, b"")
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete", "options"])
def test_other_methods_are_405(client, account, method) -> None:
    response = getattr(client, method)(webhook_url(account))
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert "error" in response.json()


def test_get_on_the_generic_adapter_explains_there_is_no_handshake(client, account) -> None:
    response = client.get(webhook_url(account), {"hub.challenge": "1"})
    assert response.status_code == 400
    assert "no verification handshake" in response.json()["error"]


def test_a_body_over_the_limit_is_413_and_stores_nothing(post, account, monkeypatch) -> None:
    monkeypatch.setattr(views, "MAX_BODY_BYTES", 1000)
    response = post(account, body(message(text="x" * 2000)))
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["error"]
    assert not InboundMessage.objects.exists()


def test_the_default_limit_is_one_megabyte(post, account) -> None:
    response = post(account, b" " * (1024 * 1024 + 1))
    assert response.status_code == 413


# --- replays ---------------------------------------------------------------------------------


def test_the_same_body_twice_makes_one_interaction(post, account) -> None:
    raw = body(message("m-1"))
    first = post(account, raw)
    again = post(account, raw)

    assert first.status_code == again.status_code == 200
    assert first.json()["created"] == 1
    assert again.json() == {
        "ok": True,
        "id": first.json()["id"],
        "replay": True,
        "created": 0,
        "appended": 0,
        "duplicates": 1,
        "echoes": 0,
        "statuses": 0,
        "ignored": 0,
    }
    assert InboundMessage.objects.count() == 1
    assert social_interactions().count() == 1


def test_the_same_message_id_in_another_body_is_a_duplicate(post, account) -> None:
    post(account, body(message("m-1")))
    # A platform retry that differs in bytes (another field order, a delivery counter) but is the
    # same message.
    response = post(account, body(message("m-1", text="My meter reading is wrong, please check it. ")))

    assert response.status_code == 200
    assert (response.json()["created"], response.json()["duplicates"]) == (0, 1)
    assert InboundMessage.objects.count() == 2
    assert InboundMessage.objects.order_by("pk").last().outcome == "duplicate"
    assert social_interactions().count() == 1


def test_a_failed_body_posted_again_is_processed_again(post, account) -> None:
    raw = body(message("m-1"))
    stored, _ = social_receive(account=account, raw=raw)
    InboundMessage.objects.filter(pk=stored.pk).update(status=InboundStatus.FAILED, error="earlier failure")

    response = post(account, raw)

    assert response.status_code == 200
    assert response.json()["created"] == 1
    assert InboundMessage.objects.get().status == InboundStatus.PROCESSED


# --- tenant isolation ---------------------------------------------------------------------------


def test_a_tenants_token_only_ever_creates_tickets_in_that_tenant(post, account, tenant_a, tenant_b) -> None:
    account_b = make_account(tenant_b, app_secret="tenant-b-secret")

    post(account_b, body(message("m-1", sender="u-42")))
    post(account, body(message("m-1", sender="u-42")))

    ticket_a = Ticket.objects.get(tenant=tenant_a)
    ticket_b = Ticket.objects.get(tenant=tenant_b)
    assert ticket_a.customer.tenant == tenant_a
    assert ticket_b.customer.tenant == tenant_b
    assert Identity.objects.get(tenant=tenant_a, value="u-42") != Identity.objects.get(
        tenant=tenant_b, value="u-42"
    )
    assert InboundMessage.objects.filter(tenant=tenant_b).count() == 1
    assert SocialConversation.objects.get(tenant=tenant_b).account == account_b


def test_tenant_bs_secret_does_not_open_tenant_as_webhook(post, account, tenant_b) -> None:
    account_b = make_account(tenant_b, app_secret="tenant-b-secret")
    raw = body(message())
    response = post(account, raw, signature=sign(account_b.app_secret, raw))
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_a_message_naming_another_account_is_not_applied(post, account, tenant_b) -> None:
    make_account(tenant_b, account_id="tsu-chat")
    response = post(
        account,
        body(message("m-1"), account="tsu-chat"),
    )
    assert response.status_code == 200
    assert response.json()["ignored"] == 1
    assert not Ticket.objects.exists()
    stored = InboundMessage.objects.get()
    assert stored.tenant == account.tenant
    assert stored.summary["mismatched_account"] == ["m-1"]
    assert stored.status == InboundStatus.IGNORED


def test_a_message_naming_its_own_account_is_applied(post, account) -> None:
    response = post(account, body(message("m-1"), account=account.account_id))
    assert response.json()["created"] == 1


# --- cost -----------------------------------------------------------------------------------------


# Queries of one webhook request carrying one message. A new sender: the account, the store, the
# lock, identity and customer, the conversation, the ticket with its number and audit event, the
# routing and SLA receivers, the interaction, the summary. Pinned so that a change is seen.
NEW_SENDER_QUERIES = 43
SAME_SENDER_QUERIES = 24
REPLAY_QUERIES = 6


def test_queries_for_one_new_message_are_pinned(post, account, tenant_a) -> None:
    make_account(tenant_a, name="warm-up", account_id="warm")  # content types and the like cached
    post(account, body(message("m-0", sender="u-0")))
    with CaptureQueriesContext(connection) as new_sender:
        response = post(account, body(message("m-1")))
    assert response.json()["created"] == 1
    with CaptureQueriesContext(connection) as same_sender:
        response = post(account, body(message("m-2")))
    assert response.json()["appended"] == 1
    with CaptureQueriesContext(connection) as replay:
        post(account, body(message("m-2")))

    assert len(new_sender) == NEW_SENDER_QUERIES, [q["sql"][:120] for q in new_sender.captured_queries]
    assert len(same_sender) == SAME_SENDER_QUERIES, [q["sql"][:120] for q in same_sender.captured_queries]
    assert len(replay) == REPLAY_QUERIES, [q["sql"][:120] for q in replay.captured_queries]


# --- one sample per platform, when its adapter is installed ---------------------------------------


def adapter_module(name: str) -> None:
    if importlib.util.find_spec(f"care.connectors.social.{name}") is None:
        pytest.skip(f"care.connectors.social.{name} is not installed yet")


def hub_signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def only_interaction() -> Interaction:
    [interaction] = social_interactions().select_related("author_identity")
    return interaction


def test_whatsapp_text_sample(client, tenant_a) -> None:
    adapter_module("whatsapp")
    raw = corpus_file("whatsapp/pywa/message__text.json").read_bytes()
    account = make_account(
        tenant_a,
        platform=SocialPlatform.WHATSAPP,
        name="ENN WhatsApp",
        account_id="1122334455667",
        app_secret="meta-app",
    )
    response = client.post(
        webhook_url(account, "whatsapp"),
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": hub_signature("meta-app", raw)},
    )
    assert response.status_code == 200, response.content
    interaction = only_interaction()
    assert interaction.body_text == "Body Text"
    assert interaction.external_id == "whatsapp:wamid.xyzxyz"
    identity = interaction.author_identity
    assert (identity.platform, identity.value, identity.display_name) == (
        "whatsapp",
        "972987654321",
        "Test Name",
    )


def test_messenger_text_sample(client, tenant_a) -> None:
    adapter_module("meta")
    event = corpus_json("messenger/bottender/text_message.messaging-event.json")
    page_id = event["recipient"]["id"]
    raw = json.dumps(
        {"object": "page", "entry": [{"id": page_id, "time": event["timestamp"], "messaging": [event]}]}
    ).encode()
    account = make_account(
        tenant_a,
        platform=SocialPlatform.MESSENGER,
        name="ENN page",
        account_id=page_id,
        app_secret="meta-app",
    )
    response = client.post(
        webhook_url(account, "messenger"),
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": hub_signature("meta-app", raw)},
    )
    assert response.status_code == 200, response.content
    interaction = only_interaction()
    assert interaction.body_text == "Sharp tools make good work."
    assert interaction.external_id == f"messenger:{event['message']['mid']}"
    identity = interaction.author_identity
    assert (identity.platform, identity.value) == ("messenger", event["sender"]["id"])


def test_telegram_text_sample(client, tenant_a) -> None:
    adapter_module("telegram")
    raw = corpus_file("telegram/zammad/private/text.json").read_bytes()
    account = make_account(
        tenant_a,
        platform=SocialPlatform.TELEGRAM,
        name="ENN bot",
        account_id="123456",
        verify_token="tg-secret",
    )
    response = client.post(
        webhook_url(account, "telegram"),
        data=raw,
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"},
    )
    assert response.status_code == 200, response.content
    interaction = only_interaction()
    assert interaction.body_text == "Hello, I need your Help"
    identity = interaction.author_identity
    assert (identity.platform, identity.value) == ("telegram", "111111")
    assert "Test Firstname" in identity.display_name


def test_x_direct_message_sample(client, tenant_a) -> None:
    adapter_module("x")
    raw = corpus_file("twitter/zammad/webhook_events/direct_message-incoming.json").read_bytes()
    document = json.loads(raw)
    account = make_account(
        tenant_a,
        platform=SocialPlatform.X,
        name="ENN on X",
        account_id=str(document["for_user_id"]),
        app_secret="x-secret",
    )
    signature = "sha256=" + base64.b64encode(hmac.new(b"x-secret", raw, hashlib.sha256).digest()).decode()
    response = client.post(
        webhook_url(account, "x"),
        data=raw,
        content_type="application/json",
        headers={"X-Twitter-Webhooks-Signature": signature},
    )
    assert response.status_code == 200, response.content
    [event] = document["direct_message_events"]
    interaction = only_interaction()
    assert interaction.body_text == event["message_create"]["message_data"]["text"]
    assert interaction.author_identity.platform == "x"
    assert interaction.author_identity.value == event["message_create"]["sender_id"]
