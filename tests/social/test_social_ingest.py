"""Social messages on tickets: threading per sender and account, echoes, delivery statuses moving
forward only, attachments downloaded by a task, and failed bodies replayed.

Through the webhook (the generic adapter) where that is the natural way in; the media task is run
directly, with the file server mocked at the HTTP boundary (``responses``).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import responses
from celery.exceptions import Retry
from django.test import Client
from django.utils import timezone
from responses import matchers

from care.accounts.models import Team
from care.connectors.dispatch import process_stored
from care.connectors.models import (
    DeliveryStatus,
    InboundMessage,
    InboundStatus,
    OutboundDelivery,
    SocialAccount,
    SocialConversation,
)
from care.connectors.services import inbound_retry
from care.connectors.social.ingest import social_receive
from care.connectors.social.media import media_fail, media_fetch, pending_media
from care.connectors.social.tasks import social_media_fetch
from care.contacts.models import Identity
from care.core.channels import Channel
from care.tickets.models import Attachment, Direction, Interaction, Priority, Ticket, TicketLink
from care.tickets.services import interaction_add, ticket_change_status
from care.tickets.status import Status
from tests.factories.accounts import TeamFactory
from tests.factories.tenants import TenantFactory
from tests.helpers import run_in_threads
from tests.social.conftest import body, make_account, message, sign, webhook_url

pytestmark = pytest.mark.django_db


def tickets_of(account: SocialAccount) -> list[Ticket]:
    return list(Ticket.objects.filter(tenant=account.tenant, channel=Channel.SOCIAL).order_by("pk"))


# --- threading ------------------------------------------------------------------------------------


def test_first_message_opens_a_ticket_with_the_senders_identity(post, account, tenant_a) -> None:
    response = post(
        account, body(message("m-1", text="Mein Zählerstand stimmt nicht, bitte prüfen Sie das."))
    )

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "id": InboundMessage.objects.get().pk,
        "created": 1,
        "appended": 0,
        "duplicates": 0,
        "echoes": 0,
        "statuses": 0,
        "ignored": 0,
    }
    [ticket] = tickets_of(account)
    assert ticket.subject == "Mein Zählerstand stimmt nicht, bitte prü…"
    assert ticket.language == "de"
    assert ticket.priority == account.default_priority
    [interaction] = ticket.interactions.all()
    assert (interaction.channel, interaction.direction) == (Channel.SOCIAL, Direction.INBOUND)
    assert interaction.body_text == "Mein Zählerstand stimmt nicht, bitte prüfen Sie das."
    assert interaction.external_id == f"other:{account.pk}:m-1"
    assert interaction.occurred_at == dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    identity = interaction.author_identity
    assert (identity.kind, identity.platform, identity.value) == ("social", "other", "u-42")
    assert identity.customer.display_name == "Ada Lovelace"
    conversation = SocialConversation.objects.get()
    assert (conversation.account, conversation.sender_id, conversation.identity) == (
        account,
        "u-42",
        identity,
    )
    assert conversation.ticket == ticket
    assert conversation.conversation_id == "c-u-42"
    assert conversation.last_inbound_at == interaction.occurred_at
    account.refresh_from_db()
    assert account.last_inbound_at == interaction.occurred_at
    stored = InboundMessage.objects.get()
    assert (stored.channel, stored.provider, stored.source) == ("social", "social-generic", "webhook")
    assert (stored.status, stored.outcome, stored.ticket, stored.interaction) == (
        InboundStatus.PROCESSED,
        "created",
        ticket,
        interaction,
    )
    assert stored.summary["account"] == account.pk
    assert stored.summary["messages"] == [
        {
            "id": "m-1",
            "outcome": "created",
            "kind": "text",
            "sender": "u-42",
            "interaction": interaction.pk,
            "ticket": ticket.reference,
        }
    ]


def test_new_ticket_takes_the_accounts_team_priority_and_language(post, tenant_a) -> None:
    team = TeamFactory(name="Social desk", kind=Team.Kind.IN_HOUSE, tenant=tenant_a)
    account = make_account(tenant_a, default_team=team, default_priority=Priority.HIGH, default_language="en")

    post(account, body(message(text="ok")))  # too short to tell its language

    [ticket] = tickets_of(account)
    assert (ticket.team, ticket.priority, ticket.language) == (team, Priority.HIGH, "en")
    assert ticket.subject == "ok"


def test_without_language_or_account_default_the_tenants_language_is_used(post, account, tenant_a) -> None:
    post(account, body(message(text="ok")))
    assert tickets_of(account)[0].language == tenant_a.default_language


def test_a_message_without_text_is_titled_after_its_sender(post, account, media_root) -> None:
    attachment = {"url": "https://files.example/p.jpg", "mime_type": "image/jpeg", "kind": "image"}
    post(account, body(message(text="", attachments=[attachment])))
    assert tickets_of(account)[0].subject == "Message from Ada Lovelace"


def test_the_same_sender_appends_to_the_open_ticket(post, account) -> None:
    post(account, body(message("m-1")))
    response = post(account, body(message("m-2", text="Any news?")))

    assert response.json()["appended"] == 1
    [ticket] = tickets_of(account)
    assert [i.body_text for i in ticket.interactions.order_by("pk")][-1] == "Any news?"
    assert ticket.interactions.count() == 2
    assert InboundMessage.objects.order_by("pk").last().outcome == "appended"


def test_two_messages_of_one_body_thread_together(post, account) -> None:
    response = post(account, body(message("m-1"), message("m-2", text="And another thing")))
    assert (response.json()["created"], response.json()["appended"]) == (1, 1)
    [ticket] = tickets_of(account)
    assert ticket.interactions.count() == 2


def test_another_sender_gets_their_own_ticket(post, account) -> None:
    post(account, body(message("m-1", sender="u-1")))
    post(account, body(message("m-2", sender="u-2")))
    first, second = tickets_of(account)
    assert first.customer != second.customer
    assert SocialConversation.objects.count() == 2


def test_a_pending_ticket_is_open_again_when_the_customer_answers(post, account) -> None:
    post(account, body(message("m-1")))
    [ticket] = tickets_of(account)
    ticket_change_status(ticket=ticket, status=Status.PENDING, actor=None)

    post(account, body(message("m-2")))

    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.interactions.count() == 2


@pytest.mark.parametrize("finished", [Status.SOLVED, Status.CLOSED])
def test_after_the_ticket_is_finished_a_new_linked_ticket_opens(post, account, finished) -> None:
    post(account, body(message("m-1")))
    [old] = tickets_of(account)
    ticket_change_status(ticket=old, status=finished, actor=None)

    response = post(account, body(message("m-2", text="It happened again")))

    assert response.json()["created"] == 1
    old_again, new = tickets_of(account)
    assert old_again.status == finished
    assert old_again.interactions.count() == 1
    assert new.customer == old.customer
    assert new.interactions.get().body_text == "It happened again"
    assert TicketLink.objects.filter(source=new, target=old, kind=TicketLink.Kind.FOLLOW_UP).exists()
    assert SocialConversation.objects.get().ticket == new


def test_two_accounts_of_one_tenant_thread_separately(post, account, tenant_a) -> None:
    other = make_account(tenant_a, name="Second chat", account_id="enn-chat-2")

    post(account, body(message("m-1")))
    post(other, body(message("m-1", text="Same person, other channel")))  # even the same message id
    post(account, body(message("m-2")))

    first, second = tickets_of(account)
    assert first.customer == second.customer  # one person, one identity
    assert Identity.objects.filter(kind="social", value="u-42").count() == 1
    assert first.interactions.count() == 2
    assert second.interactions.get().body_text == "Same person, other channel"
    assert {(c.account, c.ticket) for c in SocialConversation.objects.all()} == {
        (account, first),
        (other, second),
    }


def test_the_same_bytes_for_a_second_account_of_the_tenant_are_refused_loudly(
    post, account, tenant_a
) -> None:
    other = make_account(tenant_a, name="Second chat", account_id="enn-chat-2")
    raw = body(message("m-1"))
    post(account, raw)

    response = post(other, raw)

    assert response.status_code == 409
    assert "already received for another" in response.json()["error"]
    assert SocialConversation.objects.get().account == account


def test_a_message_from_the_future_is_dated_now(post, account) -> None:
    future = (timezone.now() + dt.timedelta(days=2)).isoformat()
    post(account, body(message(timestamp=future)))
    interaction = Interaction.objects.get(channel=Channel.SOCIAL)
    assert interaction.occurred_at <= timezone.now()


# --- echoes -----------------------------------------------------------------------------------


def test_an_echo_is_recorded_as_outbound_on_the_open_ticket(post, account) -> None:
    post(account, body(message("m-1")))
    response = post(
        account,
        body(
            message(
                "e-1", sender=account.account_id, text="Sent from the app", echo=True, conversation="c-u-42"
            )
        ),
    )

    assert response.json()["echoes"] == 1
    [ticket] = tickets_of(account)
    echo = ticket.interactions.get(direction=Direction.OUTBOUND)
    assert (echo.body_text, echo.author_identity) == ("Sent from the app", None)
    assert Ticket.objects.get(pk=ticket.pk).first_response_at == echo.occurred_at


def test_an_echo_without_an_open_ticket_opens_none(post, account) -> None:
    response = post(account, body(message("e-1", sender="u-9", text="Hello from the page", echo=True)))
    assert response.json()["echoes"] == 0
    assert response.json()["ignored"] == 1
    assert tickets_of(account) == []
    assert InboundMessage.objects.get().status == InboundStatus.IGNORED


def test_the_echo_of_a_reply_care_sent_is_not_stored_twice(post, account) -> None:
    post(account, body(message("m-1")))
    [ticket] = tickets_of(account)
    reply, _ = interaction_add(
        ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="Hi"
    )
    OutboundDelivery.objects.create(
        tenant=account.tenant,
        interaction=reply,
        channel=Channel.SOCIAL,
        social_account=account,
        recipient="u-42",
        message_id="out-1",
        status=DeliveryStatus.SENT,
    )
    response = post(account, body(message("out-1", text="Hi", echo=True, conversation="u-42")))
    assert response.json()["duplicates"] == 1
    assert ticket.interactions.count() == 2


# --- statuses ---------------------------------------------------------------------------------


@pytest.fixture
def delivery(post, account) -> OutboundDelivery:
    post(account, body(message("m-1")))
    [ticket] = tickets_of(account)
    reply, _ = interaction_add(
        ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="We are on it"
    )
    return OutboundDelivery.objects.create(
        tenant=account.tenant,
        interaction=reply,
        channel=Channel.SOCIAL,
        social_account=account,
        recipient="u-42",
        message_id="out-1",
        status=DeliveryStatus.SENT,
        sent_at=timezone.now() - dt.timedelta(minutes=5),
    )


def status(state: str, when: str, message_id: str = "out-1", **extra):
    return {"id": message_id, "status": state, "timestamp": when, **extra}


def test_statuses_move_a_delivery_forward(post, account, delivery) -> None:
    response = post(account, body(statuses=[status("delivered", "2026-11-27T10:01:00Z")]))
    assert response.json()["statuses"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.delivered_at == dt.datetime(2026, 11, 27, 10, 1, tzinfo=dt.UTC)
    assert InboundMessage.objects.order_by("pk").last().outcome == "status"

    post(account, body(statuses=[status("read", "2026-11-27T10:02:00Z")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.READ
    assert delivery.read_at == dt.datetime(2026, 11, 27, 10, 2, tzinfo=dt.UTC)
    assert delivery.delivered_at == dt.datetime(2026, 11, 27, 10, 1, tzinfo=dt.UTC)


def test_a_late_delivered_report_does_not_undo_read(post, account, delivery) -> None:
    post(account, body(statuses=[status("read", "2026-11-27T10:02:00Z")]))
    post(account, body(statuses=[status("delivered", "2026-11-27T10:01:00Z")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.READ
    # Read implies delivered: the first report sets both times.
    assert delivery.delivered_at == delivery.read_at == dt.datetime(2026, 11, 27, 10, 2, tzinfo=dt.UTC)


def test_failed_fails_a_sent_delivery_with_the_platforms_reason(post, account, delivery) -> None:
    post(account, body(statuses=[status("failed", "2026-11-27T10:01:00Z", error="Recipient blocked")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "Recipient blocked"
    assert delivery.failed_at == dt.datetime(2026, 11, 27, 10, 1, tzinfo=dt.UTC)
    # "sent" arriving late does not undo the failure ...
    post(account, body(statuses=[status("sent", "2026-11-27T10:00:30Z")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    # ... but the platform saying it was delivered after all wins; the failure stays recorded.
    post(account, body(statuses=[status("delivered", "2026-11-27T10:03:00Z")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_error == "Recipient blocked"


def test_failed_after_delivered_is_ignored(post, account, delivery) -> None:
    post(account, body(statuses=[status("delivered", "2026-11-27T10:01:00Z")]))
    post(account, body(statuses=[status("failed", "2026-11-27T10:02:00Z", error="late")]))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failed_at, delivery.last_error) == (DeliveryStatus.DELIVERED, None, "")


def test_a_watermark_marks_every_earlier_message_to_the_recipient(post, account, delivery) -> None:
    ticket = delivery.interaction.ticket
    second, _ = interaction_add(
        ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="2"
    )
    later, _ = interaction_add(
        ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="3"
    )
    now = timezone.now()
    common = {
        "tenant": account.tenant,
        "channel": Channel.SOCIAL,
        "social_account": account,
        "recipient": "u-42",
    }
    before = OutboundDelivery.objects.create(
        interaction=second,
        message_id="out-2",
        status=DeliveryStatus.DELIVERED,
        sent_at=now - dt.timedelta(minutes=2),
        **common,
    )
    after = OutboundDelivery.objects.create(
        interaction=later,
        message_id="out-3",
        status=DeliveryStatus.SENT,
        sent_at=now + dt.timedelta(minutes=1),
        **common,
    )
    watermark = now.isoformat()

    response = post(account, body(statuses=[{"status": "read", "recipient": "u-42", "watermark": watermark}]))

    assert response.json()["statuses"] == 1
    delivery.refresh_from_db()
    before.refresh_from_db()
    after.refresh_from_db()
    assert (delivery.status, before.status, after.status) == (
        DeliveryStatus.READ,
        DeliveryStatus.READ,
        DeliveryStatus.SENT,
    )
    assert delivery.read_at == delivery.delivered_at == now


def test_unknown_status_ids_are_recorded_not_refused(post, account) -> None:
    response = post(account, body(statuses=[status("read", "2026-11-27T10:02:00Z", message_id="nobody")]))
    assert response.status_code == 200
    assert response.json()["statuses"] == 0
    stored = InboundMessage.objects.get()
    assert stored.summary["unknown_statuses"] == ["nobody"]
    assert stored.status == InboundStatus.IGNORED


def test_a_status_of_another_tenants_delivery_changes_nothing(post, account, tenant_b, delivery) -> None:
    foreign = make_account(tenant_b)
    post(foreign, body(statuses=[status("read", "2026-11-27T10:02:00Z")]))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


# --- media ------------------------------------------------------------------------------------

PHOTO = {
    "url": "https://files.example/m/photo",
    "mime_type": "image/jpeg",
    "filename": "meter.jpg",
    "kind": "image",
}


def post_photo(post, account, django_capture_on_commit_callbacks) -> tuple[InboundMessage, list]:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(account, body(message("m-1", text="See the photo", attachments=[PHOTO])))
    assert response.status_code == 200
    stored = InboundMessage.objects.get()
    return stored, callbacks


@responses.activate
def test_attachments_are_downloaded_by_a_task_and_stored(
    post, account, media_root, django_capture_on_commit_callbacks
) -> None:
    stored, callbacks = post_photo(post, account, django_capture_on_commit_callbacks)
    [entry] = stored.summary["media"]
    assert (entry["key"], entry["status"]) == ("m-1#0", "pending")
    # One download enqueued after commit (beside the live updates), none run in the request.
    downloads = [c for c in callbacks if "_enqueue_media" in getattr(c, "__qualname__", "")]
    assert len(downloads) == 1
    assert not Attachment.objects.exists()
    responses.get(
        "https://files.example/m/photo",
        body=b"\xff\xd8jpeg",
        content_type="image/jpeg",
        match=[matchers.header_matcher({"Authorization": "Bearer generic-access-token"})],
    )

    assert social_media_fetch.apply(args=(stored.pk, "m-1#0")).get() == "stored"

    interaction = Interaction.objects.get(channel=Channel.SOCIAL)
    [attachment] = interaction.attachments.all()
    assert (attachment.filename, attachment.content_type, attachment.size) == ("meter.jpg", "image/jpeg", 6)
    assert attachment.file.read() == b"\xff\xd8jpeg"
    stored.refresh_from_db()
    assert stored.summary["media"][0]["status"] == "stored"
    assert stored.summary["media"][0]["attachment"] == attachment.pk
    assert len(responses.calls) == 1

    # Run again (a redelivered task): nothing downloaded, nothing stored twice.
    assert media_fetch(inbound_id=stored.pk, key="m-1#0") == "stored"
    assert len(responses.calls) == 1
    assert Attachment.objects.count() == 1


@responses.activate
def test_a_refused_download_is_recorded_and_keeps_the_message(
    post, account, media_root, django_capture_on_commit_callbacks
) -> None:
    stored, _callbacks = post_photo(post, account, django_capture_on_commit_callbacks)
    responses.get("https://files.example/m/photo", status=404, json={"error": "expired"})

    assert social_media_fetch.apply(args=(stored.pk, "m-1#0")).get() == "failed"

    stored.refresh_from_db()
    entry = stored.summary["media"][0]
    assert entry["status"] == "failed"
    assert "404" in entry["error"]
    assert "expired" in entry["error"]
    assert Interaction.objects.get(channel=Channel.SOCIAL).body_text == "See the photo"
    assert not Attachment.objects.exists()


@responses.activate
def test_a_failing_server_is_retried_with_backoff_then_given_up(
    post, account, media_root, django_capture_on_commit_callbacks
) -> None:
    stored, _callbacks = post_photo(post, account, django_capture_on_commit_callbacks)
    responses.get("https://files.example/m/photo", status=503, headers={"Retry-After": "120"})

    with pytest.raises(Retry) as retry:
        social_media_fetch.apply(args=(stored.pk, "m-1#0"), throw=True)
    assert retry.value.when == 120
    stored.refresh_from_db()
    assert (stored.summary["media"][0]["status"], stored.summary["media"][0]["attempts"]) == ("pending", 1)

    # The last retry: the attachment is given up, with the reason.
    last = social_media_fetch.apply(args=(stored.pk, "m-1#0"), retries=social_media_fetch.max_retries)
    assert last.get() == "failed"
    stored.refresh_from_db()
    assert stored.summary["media"][0]["status"] == "failed"
    assert "503" in stored.summary["media"][0]["error"]


@responses.activate
def test_a_network_error_while_downloading_is_retried(
    post, account, media_root, django_capture_on_commit_callbacks
) -> None:
    stored, _callbacks = post_photo(post, account, django_capture_on_commit_callbacks)
    responses.get("https://files.example/m/photo", body=requests.ConnectionError("reset"))
    with pytest.raises(Retry):
        social_media_fetch.apply(args=(stored.pk, "m-1#0"), throw=True)


# --- failures and replays ---------------------------------------------------------------------


def test_a_body_for_an_account_deactivated_meanwhile_fails_and_replays_later(account) -> None:
    raw = body(message("m-1"))
    stored, _ = social_receive(account=account, raw=raw)
    SocialAccount.objects.filter(pk=account.pk).update(is_active=False)

    failed = process_stored(stored.pk)
    assert failed.status == InboundStatus.FAILED
    assert "inactive" in failed.error
    assert not Interaction.objects.filter(channel=Channel.SOCIAL).exists()

    SocialAccount.objects.filter(pk=account.pk).update(is_active=True)
    inbound_retry(message=failed)
    done = process_stored(stored.pk)
    assert done.status == InboundStatus.PROCESSED
    assert Interaction.objects.filter(channel=Channel.SOCIAL).count() == 1


def test_a_sender_id_that_is_no_handle_is_reported_and_the_others_kept(post, account) -> None:
    response = post(account, body(message("m-1", sender="@"), message("m-2", sender="u-7")))
    assert response.status_code == 200
    assert response.json()["created"] == 1
    stored = InboundMessage.objects.get()
    assert [error["id"] for error in stored.summary["errors"]] == ["m-1"]


def test_a_body_whose_only_message_is_refused_fails(post, account) -> None:
    response = post(account, body(message("m-1", sender="@")))
    assert response.status_code == 400
    assert "No message could be applied" in response.json()["error"]
    assert InboundMessage.objects.get().status == InboundStatus.FAILED


def test_data_of_a_message_is_kept_in_the_summary(account) -> None:
    """Platform extras (a location, a button payload) land in the stored message's summary."""
    from care.connectors.social.base import InboundSocialMessage
    from care.connectors.social.generic import ADAPTER
    from care.connectors.social.ingest import _Run

    stored = InboundMessage.objects.create(
        tenant=account.tenant,
        channel="social",
        provider="social-generic",
        source="webhook",
        raw=b"{}",
        sha256="0",
        size=2,
    )
    run = _Run(stored, account, ADAPTER)
    run.message(
        InboundSocialMessage(
            platform="other",
            account_id="",
            external_id="loc-1",
            sender_id="u-1",
            sender_name="",
            conversation_id="u-1",
            occurred_at=dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC),
            text="Location: 52.52, 13.40",
            kind="location",
            data={"latitude": 52.52, "longitude": 13.4, "at": dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)},
        )
    )
    run.finish()
    assert stored.summary["messages"][0]["data"] == {
        "latitude": 52.52,
        "longitude": 13.4,
        "at": "2026-11-27T09:00:00+00:00",
    }
    json.dumps(stored.summary)  # storable as it is


@pytest.mark.django_db(transaction=True)
def test_a_new_senders_messages_arriving_at_once_open_one_ticket():
    tenant = TenantFactory(code="CONC", slug="concurrent-social")
    account = make_account(tenant)

    def deliver(index):
        raw = body(message(f"m-{index}", sender="u-new", text=f"Message number {index}"))
        response = Client().post(
            webhook_url(account),
            data=raw,
            content_type="application/json",
            headers={"X-Care-Signature": sign(account.app_secret, raw)},
        )
        return response.status_code

    assert run_in_threads(deliver, 6) == [200] * 6
    [ticket] = Ticket.objects.filter(tenant=tenant)
    assert ticket.interactions.count() == 6
    assert SocialConversation.objects.get(account=account).ticket == ticket
    assert Identity.objects.filter(tenant=tenant, value="u-new").count() == 1


def test_the_sweep_finds_attachments_whose_task_never_ran(
    post, account, media_root, django_capture_on_commit_callbacks
) -> None:
    stored, _callbacks = post_photo(post, account, django_capture_on_commit_callbacks)
    later = timezone.now() + dt.timedelta(minutes=1)

    assert pending_media(received_before=stored.received_at, limit=10) == []  # too recent
    assert pending_media(received_before=later, limit=10) == [(stored.pk, "m-1#0")]

    media_fail(inbound_id=stored.pk, key="m-1#0", error="gone")
    assert pending_media(received_before=later, limit=10) == []
