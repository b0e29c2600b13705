"""Agents' replies on social tickets: the platform's rules checked before anything is stored, the
delivery sent by the task through the platform's HTTP API (mocked at the HTTP boundary with
``responses``, the exact request asserted), retries, backoff, the rate limit, idempotency and
tenant isolation. Real PostgreSQL and Redis; the Celery task body runs through ``task.apply``."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import pytest
import responses
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from care.connectors.models import DeliveryStatus, OutboundDelivery, SocialAccount, SocialConversation
from care.connectors.social import outbound, ratelimit
from care.connectors.social.outbound import (
    MAX_SEND_ATTEMPTS,
    social_delivery_send,
    social_reply,
)
from care.connectors.social.outbound_tasks import send_social_delivery, sweep_social_outbound
from care.contacts.identities import IdentityKind
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction, Interaction
from care.tickets.services import ticket_change_status
from config.celery import app as celery_app
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads

GENERIC_API = "https://chat.example.test/api"
GRAPH = "https://graph.facebook.com/v21.0"
# An instant far outside any reply window, so that the refusal's wording is fixed.
LONG_AGO = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def own_rate_limit_keys(settings):
    """Each test's rate-limit keys under a prefix of its own: test runs share this machine's Redis
    and their account ids overlap."""
    prefix = f"care-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield prefix
    client = ratelimit.redis_for(settings.CACHE_URL)
    leftovers = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def social_ticket(
    tenant,
    *,
    platform="other",
    sender_id="u-42",
    last_inbound_at=None,
    api_base=GENERIC_API,
    account_id="acc-1",
    current=True,
):
    """A social ticket of ``tenant``: the customer's handle on ``platform``, an account, and their
    conversation (current ticket: this one, unless ``current`` is False)."""
    customer = CustomerFactory(tenant=tenant, display_name="Ada Kundin")
    identity = IdentityFactory(
        customer=customer, kind=IdentityKind.SOCIAL, platform=platform, value=sender_id
    )
    account = SocialAccount.objects.create(
        tenant=tenant,
        platform=platform,
        name=f"{tenant.code} {platform}",
        account_id=f"{account_id}-{tenant.code}",
        access_token="token-123",
        app_secret="secret",
        api_base=api_base,
    )
    ticket = make_ticket(tenant=tenant, customer=customer, subject="Frage", channel=Channel.SOCIAL)
    SocialConversation.objects.create(
        tenant=tenant,
        account=account,
        identity=identity,
        sender_id=sender_id,
        conversation_id="c-7",
        ticket=ticket if current else None,
        last_inbound_at=last_inbound_at if last_inbound_at is not None else timezone.now(),
    )
    return ticket


def delivery_of(interaction):
    return OutboundDelivery.objects.get(interaction=interaction)


def counts():
    return Interaction.objects.count(), OutboundDelivery.objects.count()


def reply(ticket, agent, text="Ihr Zähler ist korrigiert.", **kwargs):
    return delivery_of(social_reply(ticket=ticket, author=agent.user, text=text, **kwargs))


def generic_request(text="Ihr Zähler ist korrigiert."):
    return responses.matchers.json_params_matcher(
        {"to": "u-42", "text": text, "conversation": "c-7", "reply_to": ""}
    )


AUTH = responses.matchers.header_matcher({"Authorization": "Bearer token-123"})


# --- writing ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reply_stores_the_interaction_and_a_queued_delivery_sent_after_commit(
    tenant_a, agent, http, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    ticket = social_ticket(tenant_a)
    http.post(f"{GENERIC_API}/messages", json={"id": "out-1"}, match=[generic_request(), AUTH])

    with django_capture_on_commit_callbacks(execute=True):
        interaction = social_reply(ticket=ticket, author=agent.user, text="  Ihr Zähler ist korrigiert.\r\n")
        delivery = delivery_of(interaction)
        # Stored and queued; nothing is sent before the reply commits.
        assert (delivery.channel, delivery.status, delivery.recipient, delivery.attempts) == (
            Channel.SOCIAL,
            DeliveryStatus.QUEUED,
            "u-42",
            0,
        )
        assert len(http.calls) == 0

    assert (interaction.channel, interaction.direction, interaction.author_user, interaction.body_text) == (
        Channel.SOCIAL,
        Direction.OUTBOUND,
        agent.user,
        "Ihr Zähler ist korrigiert.",
    )
    assert delivery.social_account == SocialAccount.objects.get(tenant=tenant_a)
    assert delivery.tenant_id == tenant_a.pk
    assert delivery.payload["text"] == "Ihr Zähler ist korrigiert."
    assert delivery.payload["conversation_id"] == "c-7"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id) == (DeliveryStatus.SENT, "out-1")


@pytest.mark.django_db
def test_the_customers_latest_conversation_is_used_when_none_has_this_ticket(tenant_a, agent):
    ticket = social_ticket(tenant_a, current=False, sender_id="u-77")

    delivery = reply(ticket, agent)

    assert delivery.recipient == "u-77"


@pytest.mark.django_db
def test_ticket_without_a_social_conversation_is_refused_clearly(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a, channel=Channel.SOCIAL)
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="Hallo")

    assert refused.value.messages == [
        f"The customer of {ticket.reference} has no conversation on any of the client's active social "
        "accounts; reply through another channel."
    ]
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_reply_is_refused(tenant_a, agent, text):
    ticket = social_ticket(tenant_a)
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text=text)

    assert refused.value.messages == ["The reply is empty: write a text first."]
    assert counts() == before


@pytest.mark.django_db
def test_closed_ticket_takes_no_reply(tenant_a, agent):
    ticket = social_ticket(tenant_a)
    for status in ("open", "solved", "closed"):
        ticket = ticket_change_status(ticket=ticket, status=status, actor=None)
    before = counts()

    with pytest.raises(BusinessRuleViolation, match="closed ticket takes no replies"):
        social_reply(ticket=ticket, author=agent.user, text="Noch etwas")

    assert counts() == before


@pytest.mark.django_db
def test_an_agent_of_another_tenant_cannot_reply(tenant_a, tenant_b, outsider, portal_user, agent):
    ticket = social_ticket(tenant_a)
    before = counts()

    for user in (outsider.user, portal_user):
        with pytest.raises(PermissionDenied):
            social_reply(ticket=ticket, author=user, text="Fremd")

    assert counts() == before
    # And the authorised agent of the ticket's tenant can.
    assert reply(ticket, agent).status == DeliveryStatus.QUEUED


# --- the platforms' reply windows -------------------------------------------------------------


@pytest.mark.django_db
def test_whatsapp_free_form_reply_outside_24_hours_is_refused_and_nothing_stored(tenant_a, agent):
    ticket = social_ticket(tenant_a, platform="whatsapp", sender_id="4915112345678", last_inbound_at=LONG_AGO)
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="Sind Sie noch da?")

    assert refused.value.messages == [
        "The customer last wrote on Jan. 5, 2026, 10:30 a.m. (Europe/Berlin); outside WhatsApp's "
        "24-hour window only an approved template may be sent."
    ]
    assert counts() == before


@pytest.mark.django_db
def test_whatsapp_reply_just_inside_the_window_is_sent_as_text(tenant_a, agent, http):
    ticket = social_ticket(
        tenant_a,
        platform="whatsapp",
        sender_id="4915112345678",
        last_inbound_at=timezone.now() - dt.timedelta(hours=23, minutes=50),
        api_base="",
    )
    delivery = reply(ticket, agent, text="Gern geschehen.")
    http.post(
        f"{GRAPH}/acc-1-ENN/messages",
        json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.TEXT1"}]},
        match=[
            responses.matchers.json_params_matcher(
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "4915112345678",
                    "type": "text",
                    "text": {"preview_url": False, "body": "Gern geschehen."},
                }
            ),
            responses.matchers.header_matcher({"Authorization": "Bearer token-123"}),
        ],
    )

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    delivery.refresh_from_db()
    assert delivery.message_id == "wamid.TEXT1"


@pytest.mark.django_db
def test_whatsapp_template_outside_the_window_is_allowed_and_sent(tenant_a, agent, http):
    ticket = social_ticket(
        tenant_a, platform="whatsapp", sender_id="4915112345678", last_inbound_at=LONG_AGO, api_base=""
    )

    delivery = reply(
        ticket,
        agent,
        text="",
        template_name="ticket_update",
        template_language="de",
        template_parameters=["Ada", ticket.reference],
    )
    http.post(
        f"{GRAPH}/acc-1-ENN/messages",
        json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.TPL1"}]},
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
                        "components": [
                            {
                                "type": "body",
                                "parameters": [
                                    {"type": "text", "text": "Ada"},
                                    {"type": "text", "text": ticket.reference},
                                ],
                            }
                        ],
                    },
                }
            ),
            responses.matchers.header_matcher({"Authorization": "Bearer token-123"}),
        ],
    )

    assert delivery.interaction.body_text == f"[Template ticket_update (de): Ada, {ticket.reference}]"
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id) == (DeliveryStatus.SENT, "wamid.TPL1")
    assert delivery.interaction.external_id == "whatsapp:wamid.TPL1"


@pytest.mark.django_db
def test_whatsapp_customer_who_never_wrote_gets_templates_only(tenant_a, agent):
    ticket = social_ticket(tenant_a, platform="whatsapp", sender_id="4915112345678")
    SocialConversation.objects.update(last_inbound_at=None)

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="Hallo")

    assert refused.value.messages == [
        "The customer has not written to this account yet; outside WhatsApp's 24-hour window only an "
        "approved template may be sent."
    ]
    delivery = reply(ticket, agent, text="", template_name="hello_world", template_language="en_US")
    assert delivery.payload["template_name"] == "hello_world"


@pytest.mark.django_db
def test_messenger_outside_24_hours_takes_a_human_agent_reply_within_7_days(tenant_a, agent, http):
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    ticket = social_ticket(
        tenant_a, platform="messenger", sender_id="PSID-9", last_inbound_at=three_days_ago, api_base=""
    )
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="Sind Sie noch da?")

    assert (
        "outside Facebook Messenger's 24-hour window only a reply tagged HUMAN_AGENT may be sent"
        in (refused.value.messages[0])
    )
    assert counts() == before

    delivery = reply(ticket, agent, text="Ihr Fall ist gelöst.", template_name="HUMAN_AGENT")
    http.post(
        f"{GRAPH}/acc-1-ENN/messages",
        json={"recipient_id": "PSID-9", "message_id": "m_HUMAN1"},
        match=[
            responses.matchers.json_params_matcher(
                {
                    "recipient": {"id": "PSID-9"},
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": {"text": "Ihr Fall ist gelöst."},
                }
            )
        ],
    )
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert delivery.message_id == "m_HUMAN1"


@pytest.mark.django_db
def test_messenger_after_7_days_takes_no_reply_at_all(tenant_a, agent):
    ticket = social_ticket(tenant_a, platform="messenger", sender_id="PSID-9", last_inbound_at=LONG_AGO)
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="Hallo", template_name="HUMAN_AGENT")

    assert refused.value.messages == [
        "The customer last wrote on Jan. 5, 2026, 10:30 a.m. (Europe/Berlin), more than 7 days ago; "
        "Facebook Messenger accepts no reply until the customer writes again."
    ]
    assert counts() == before


@pytest.mark.django_db
def test_a_reply_longer_than_the_platform_takes_is_refused_before_storing(tenant_a, agent):
    ticket = social_ticket(tenant_a, platform="instagram", sender_id="IGSID-1")
    before = counts()

    with pytest.raises(BusinessRuleViolation) as refused:
        social_reply(ticket=ticket, author=agent.user, text="x" * 1001)

    assert refused.value.messages == ["The reply is longer than 1000 characters, the most Instagram accepts."]
    assert counts() == before


# --- sending ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_sends_the_exact_request_and_records_the_platforms_id(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(f"{GENERIC_API}/messages", json={"id": "out-77"}, match=[generic_request(), AUTH])

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.SENT,
        "out-77",
        1,
        "",
    )
    assert delivery.sent_at is not None
    # The platform's id is the interaction's too: its echo of our message is not stored twice.
    assert delivery.interaction.external_id == f"other:{delivery.social_account_id}:out-77"
    assert len(http.calls) == 1
    assert json.loads(http.calls[0].request.body)["text"] == "Ihr Zähler ist korrigiert."


@pytest.mark.django_db
def test_429_with_retry_after_waits_that_long_then_sends(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(
        f"{GENERIC_API}/messages",
        status=429,
        headers={"Retry-After": "7"},
        json={"error": "slow down"},
        match=[generic_request(), AUTH],
    )
    http.post(f"{GENERIC_API}/messages", json={"id": "out-429"}, match=[generic_request(), AUTH])

    first = social_delivery_send(delivery_id=delivery.pk, session=outbound_session())

    assert first.status == DeliveryStatus.QUEUED
    assert first.counted
    assert first.retry_in is not None
    assert 7 <= first.retry_in <= 8
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert "429" in delivery.last_error
    assert "slow down" in delivery.last_error

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.SENT,
        "out-429",
        2,
        "",
    )
    assert len(http.calls) == 2


@pytest.mark.django_db
def test_server_error_is_retried_with_backoff_then_sent(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(f"{GENERIC_API}/messages", status=500, body="upstream down", match=[generic_request()])
    http.post(f"{GENERIC_API}/messages", status=503, body="still down", match=[generic_request()])
    http.post(f"{GENERIC_API}/messages", json={"id": "out-500"}, match=[generic_request()])

    first = social_delivery_send(delivery_id=delivery.pk, session=outbound_session())
    second = social_delivery_send(delivery_id=delivery.pk, session=outbound_session())

    # 15 s then 30 s, each jittered into its upper half.
    assert first.retry_in is not None
    assert 7.5 <= first.retry_in <= 15
    assert second.retry_in is not None
    assert 15 <= second.retry_in <= 30
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert (delivery.status, delivery.message_id, delivery.attempts) == (DeliveryStatus.SENT, "out-500", 3)


@pytest.mark.django_db
def test_server_errors_fail_the_delivery_after_the_last_attempt(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(f"{GENERIC_API}/messages", status=502, body="bad gateway")

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.FAILED

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_SEND_ATTEMPTS)
    assert delivery.last_error == "The platform answered 502: bad gateway"
    assert delivery.failed_at is not None
    assert len(http.calls) == MAX_SEND_ATTEMPTS


@pytest.mark.django_db
def test_a_refusal_by_the_platform_fails_at_once_with_its_message(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(
        f"{GENERIC_API}/messages",
        status=400,
        json={"error": "recipient u-42 blocked this account"},
        match=[generic_request(), AUTH],
    )

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.FAILED

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "400" in delivery.last_error
    assert "recipient u-42 blocked this account" in delivery.last_error
    assert delivery.interaction.external_id == ""
    assert len(http.calls) == 1


@pytest.mark.django_db
def test_running_the_task_twice_sends_once(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    http.post(f"{GENERIC_API}/messages", json={"id": "out-once"}, match=[generic_request()])

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    assert len(http.calls) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_tasks_for_one_delivery_send_it_once(tenant_a, agent, http):
    ticket = social_ticket(tenant_a)
    # Written directly: social_reply's commit would publish the task to the real broker here.
    interaction = Interaction.objects.create(
        tenant=tenant_a, ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="Hi"
    )
    delivery = OutboundDelivery.objects.create(
        tenant=tenant_a,
        interaction=interaction,
        channel=Channel.SOCIAL,
        social_account=SocialAccount.objects.get(tenant=tenant_a),
        recipient="u-42",
        payload={"text": "Hi", "conversation_id": "c-7"},
    )

    def slow_platform(request):
        time.sleep(0.3)  # long enough for every other worker to find the row locked
        return 200, {}, json.dumps({"id": "out-concurrent"})

    http.add_callback(responses.POST, f"{GENERIC_API}/messages", callback=slow_platform)

    statuses = run_in_threads(lambda _: send_social_delivery.apply(args=(delivery.pk,)).get(), 4)

    assert len(http.calls) == 1
    assert DeliveryStatus.SENT in statuses
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.message_id) == (
        DeliveryStatus.SENT,
        1,
        "out-concurrent",
    )


@pytest.mark.django_db
def test_waiting_for_the_rate_limit_is_not_a_failed_attempt(tenant_a, agent, http):
    delivery = reply(social_ticket(tenant_a), agent)
    account = delivery.social_account
    rate = outbound.adapter_for_platform("other").rate_per_second
    granted = [ratelimit.acquire(account.pk, rate) for _ in range(int(rate))]
    assert granted == [0.0] * int(rate)  # the account's allowance for this second, used up

    waiting = social_delivery_send(delivery_id=delivery.pk, session=outbound_session())

    assert waiting.status == DeliveryStatus.QUEUED
    assert waiting.counted is False
    assert waiting.retry_in is not None
    assert 0 < waiting.retry_in <= 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.QUEUED, 0, "")
    assert len(http.calls) == 0

    http.post(f"{GENERIC_API}/messages", json={"id": "out-later"}, match=[generic_request()])
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.message_id) == (1, "out-later")


@pytest.mark.django_db
def test_a_deactivated_account_fails_the_delivery_with_a_reason(tenant_a, agent):
    delivery = reply(social_ticket(tenant_a), agent)
    SocialAccount.objects.update(is_active=False)

    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.FAILED

    delivery.refresh_from_db()
    assert delivery.last_error == "The social account is missing or deactivated; the reply was not sent."


@pytest.mark.django_db
def test_sweep_sends_deliveries_whose_task_was_lost(tenant_a, agent, http, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    ticket = social_ticket(tenant_a)
    lost = reply(ticket, agent, text="Verloren")
    fresh = reply(ticket, agent, text="Frisch")
    OutboundDelivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=6))
    http.post(f"{GENERIC_API}/messages", json={"id": "out-swept"}, match=[generic_request("Verloren")])

    assert sweep_social_outbound() == 1

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert (lost.status, lost.message_id) == (DeliveryStatus.SENT, "out-swept")
    assert fresh.status == DeliveryStatus.QUEUED  # its own task is on its way


def outbound_session():
    import requests

    return requests.Session()


@pytest.mark.django_db
def test_customer_writes_agent_replies_platform_echoes_and_reports_delivery(post, account, agent, at, http):
    """The whole loop through the webhook endpoint: a customer's message opens the ticket, the reply
    goes to their handle, the platform's echo of it is not stored again and its delivery report
    moves the delivery."""
    from tests.social.conftest import body, message

    post(account, body(message("m-1", sender="u-9", text="Mein Zähler spinnt.", timestamp=at(1))))
    ticket = SocialConversation.objects.get(account=account, sender_id="u-9").ticket
    delivery = reply(ticket, agent, text="Wir schauen nach.")
    http.post(
        f"{account.api_base}/messages",
        json={"id": "out-loop"},
        match=[
            responses.matchers.json_params_matcher(
                {"to": "u-9", "text": "Wir schauen nach.", "conversation": "c-u-9", "reply_to": ""}
            ),
            responses.matchers.header_matcher({"Authorization": "Bearer generic-access-token"}),
        ],
    )
    assert send_social_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    echo = message("out-loop", sender="u-9", text="Wir schauen nach.", echo=True, timestamp=at())
    delivered = {"id": "out-loop", "status": "delivered", "timestamp": at(), "recipient": "u-9"}
    response = post(account, body(echo, statuses=[delivered]))

    assert (response.json()["duplicates"], response.json()["statuses"]) == (1, 1)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [(i.direction, i.body_text) for i in ticket.interactions.order_by("pk")] == [
        (Direction.INBOUND, "Mein Zähler spinnt."),
        (Direction.OUTBOUND, "Wir schauen nach."),
    ]


# --- end to end: a real worker, a real HTTP server ------------------------------------------------


class PlatformStub:
    """A platform API on loopback (a real HTTP server in this process): the first send is answered
    429 with ``Retry-After: 1``, the next ones 200 with an id. Records each request and its time."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stub = self
        self.requests: list[tuple[float, str, dict, dict]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests.append((time.monotonic(), self.path, dict(self.headers), json.loads(body)))
                if len(stub.requests) == 1:
                    answer, status, headers = b'{"error": "slow down"}', 429, {"Retry-After": "1"}
                else:
                    answer, status, headers = b'{"id": "out-e2e"}', 200, {}
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PlatformStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def social_worker(transactional_db, broker, tmp_path):
    """A real solo Celery worker (tests/celery_e2e.py) that also loads the social send tasks (until
    ``care.connectors.tasks`` imports them for autodiscovery)."""
    import socket

    from tests.celery_e2e import WORKER_START_TIMEOUT, worker_env
    from tests.processes import ManagedProcess, celery_worker_command, running

    broker_url, queue = broker
    args, _env = celery_worker_command(queue=queue, hostname=f"{queue}@{socket.gethostname()}")
    args += ["--include", "care.connectors.social.outbound_tasks"]
    env = worker_env(broker_url=broker_url, queue=queue, run_dir=tmp_path / "run")
    process = ManagedProcess("celery worker", args, env=env, log_path=tmp_path / "worker.log")
    with running(process):
        process.wait_for_log(r"\bready\.", timeout=WORKER_START_TIMEOUT)
        yield process


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_after_the_platforms_wait_then_sends(tenant_a, agent, social_worker):
    from tests.processes import wait_until

    with PlatformStub() as platform:
        ticket = social_ticket(tenant_a, api_base=platform.url)
        interaction = social_reply(ticket=ticket, author=agent.user, text="Ihr Zähler ist korrigiert.")
        delivery = delivery_of(interaction)

        def sent():
            delivery.refresh_from_db()
            return delivery.status != DeliveryStatus.QUEUED

        wait_until(sent, timeout=30, what="the delivery to be sent", details=social_worker.describe)

    assert (delivery.status, delivery.message_id, delivery.attempts) == (DeliveryStatus.SENT, "out-e2e", 2)
    (first_at, path, headers, body), (second_at, *_rest) = platform.requests
    assert path == "/api/messages"
    assert headers["Authorization"] == "Bearer token-123"
    assert body == {"to": "u-42", "text": "Ihr Zähler ist korrigiert.", "conversation": "c-7", "reply_to": ""}
    assert second_at - first_at >= 1.0  # the platform's Retry-After was honoured
