"""Email in: the HTTP endpoint and the ingest_email command store first, then thread into tickets."""

from __future__ import annotations

import io
import json
import mailbox as mailbox_lib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundMessage, InboundStatus, Mailbox
from care.contacts.models import Identity
from care.tickets.models import Ticket, TicketLink
from care.tickets.services import ticket_change_status
from tests.email_factory import raw_email
from tests.helpers import drop_celery_pools

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(tenant_a, media_root):
    return Mailbox.objects.create(
        tenant=tenant_a,
        name="Energie Nord support",
        address="support@energie-nord.test",
        default_language="de",
    )


@pytest.fixture
def mailbox_b(tenant_b):
    return Mailbox.objects.create(tenant=tenant_b, name="Telco Sur soporte", address="soporte@telco-sur.test")


def ingest(mailbox, raw):
    message, _created = email_receive(mailbox=mailbox, raw=raw, source="cli", process=False)
    return process_stored(message.pk)


# --- HTTP ----------------------------------------------------------------------------------------


def post(client, token, raw, content_type="message/rfc822"):
    return client.post(f"/inbound/email/{token}/", data=raw, content_type=content_type)


def test_http_stores_the_raw_bytes_and_answers_202(client, mailbox, django_capture_on_commit_callbacks):
    raw = raw_email(message_id="first@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, mailbox.inbound_token, raw)
    assert response.status_code == 202
    stored = InboundMessage.objects.get(pk=response.json()["id"])
    assert bytes(stored.raw) == raw
    assert (stored.status, stored.source, stored.tenant_id) == (
        InboundStatus.RECEIVED,
        "http",
        mailbox.tenant_id,
    )
    assert len(callbacks) == 1  # processing is enqueued once the bytes are committed


def test_http_same_bytes_twice_is_a_polite_duplicate(client, mailbox):
    raw = raw_email(message_id="twice@example.com")
    first, second = post(client, mailbox.inbound_token, raw), post(client, mailbox.inbound_token, raw)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("token", "body", "content_type", "status", "message"),
    [
        ("no-such-token", b"From: a@b.c\r\n\r\nhi", "message/rfc822", 404, "No active mailbox"),
        (None, b"", "message/rfc822", 400, "empty"),
        (None, b"   \r\n", "message/rfc822", 400, "empty"),
        (None, b"From: a@b.c\r\n\r\nhi", "application/json", 415, "message/rfc822"),
    ],
)
def test_http_bad_requests_get_a_clear_4xx(client, mailbox, token, body, content_type, status, message):
    response = post(client, token or mailbox.inbound_token, body, content_type)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert not InboundMessage.objects.exists()


def test_http_refuses_get_and_inactive_mailboxes(client, mailbox):
    assert client.get(f"/inbound/email/{mailbox.inbound_token}/").status_code == 405
    Mailbox.objects.filter(pk=mailbox.pk).update(is_active=False)
    assert post(client, mailbox.inbound_token, raw_email()).status_code == 404


def test_http_too_large_is_413(client, mailbox, settings):
    settings.CARE_MAX_EMAIL_BYTES = 1000
    response = post(client, mailbox.inbound_token, raw_email(body="x" * 5000))
    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


# --- Processing ----------------------------------------------------------------------------------


def test_new_mail_opens_a_ticket_for_the_sender_in_the_right_tenant(mailbox, mailbox_b):
    message = ingest(
        mailbox,
        raw_email(message_id="new@example.com", attachments=[("zaehler.jpg", b"\xff\xd8jpeg", "image/jpeg")]),
    )

    assert (message.status, message.outcome) == (InboundStatus.PROCESSED, "created")
    ticket = message.ticket
    assert ticket.tenant == mailbox.tenant
    assert ticket.subject == "Zählerstand falsch"
    assert ticket.language == "de"
    identity = Identity.objects.get(tenant=mailbox.tenant, value="anna@example.com")
    assert identity.customer == ticket.customer
    assert ticket.customer.display_name == "Anna Schmidt"
    interaction = message.interaction
    assert interaction.external_id == "new@example.com"
    assert "Zählerstand wurde falsch" in interaction.body_text
    assert [(a.filename, a.size) for a in interaction.attachments.all()] == [("zaehler.jpg", 6)]
    assert not Ticket.objects.filter(tenant=mailbox_b.tenant).exists()


def test_reply_threads_by_headers_then_by_subject_reference(mailbox):
    first = ingest(mailbox, raw_email(message_id="m1@example.com"))
    by_header = ingest(
        mailbox,
        raw_email(message_id="m2@example.com", subject="Re: other words", in_reply_to="m1@example.com"),
    )
    reference = first.ticket.reference
    by_subject = ingest(
        mailbox,
        raw_email(message_id="m3@example.com", subject=f"Noch etwas [{reference}]", sender="x@example.org"),
    )

    assert (by_header.outcome, by_header.ticket_id, by_header.summary["threaded_by"]) == (
        "appended",
        first.ticket_id,
        "headers",
    )
    assert (by_subject.ticket_id, by_subject.summary["threaded_by"]) == (first.ticket_id, "subject")
    assert first.ticket.interactions.count() == 3


def test_reference_of_another_tenant_does_not_thread(mailbox, mailbox_b):
    theirs = ingest(mailbox_b, raw_email(message_id="b1@example.com", to="soporte@telco-sur.test"))
    mine = ingest(
        mailbox,
        raw_email(
            message_id="a1@example.com",
            subject=f"Re: [{theirs.ticket.reference}]",
            in_reply_to="b1@example.com",
        ),
    )
    assert mine.outcome == "created"
    assert mine.ticket.tenant_id == mailbox.tenant_id


def test_reply_to_solved_reopens_and_to_closed_opens_a_linked_follow_up(mailbox):
    first = ingest(mailbox, raw_email(message_id="s1@example.com"))
    ticket_change_status(ticket=first.ticket, status="solved", actor=None)
    reopened = ingest(mailbox, raw_email(message_id="s2@example.com", in_reply_to="s1@example.com"))
    assert reopened.ticket_id == first.ticket_id
    assert Ticket.objects.get(pk=first.ticket_id).status == "open"

    ticket_change_status(ticket=first.ticket, status="closed", actor=None)
    after_close = ingest(mailbox, raw_email(message_id="s3@example.com", in_reply_to="s2@example.com"))
    assert after_close.outcome == "created"
    assert after_close.ticket_id != first.ticket_id
    assert TicketLink.objects.filter(
        source=after_close.ticket, target_id=first.ticket_id, kind="follow_up"
    ).exists()


def test_same_message_id_with_other_bytes_is_a_duplicate(mailbox):
    first = ingest(mailbox, raw_email(message_id="dup@example.com"))
    again = ingest(mailbox, raw_email(message_id="dup@example.com", headers={"X-Relayed": "yes"}))
    assert (again.outcome, again.ticket_id) == ("duplicate", first.ticket_id)
    assert first.ticket.interactions.count() == 1


def test_processing_twice_changes_nothing(mailbox):
    message = ingest(mailbox, raw_email(message_id="once@example.com"))
    again = process_stored(message.pk)
    assert again.status == InboundStatus.PROCESSED
    assert message.ticket.interactions.count() == 1


def test_auto_reply_to_nothing_known_opens_no_ticket(mailbox):
    message = ingest(
        mailbox,
        raw_email(subject="Automatische Antwort: Abwesenheit", headers={"Auto-Submitted": "auto-replied"}),
    )
    assert (message.status, message.outcome) == (InboundStatus.IGNORED, "ignored")
    assert not Ticket.objects.exists()


def test_mail_from_our_own_mailbox_is_a_loop_and_ignored(mailbox):
    message = ingest(mailbox, raw_email(sender="support@energie-nord.test"))
    assert message.outcome == "ignored"
    assert message.summary["reason"] == "loop"


def test_a_message_without_sender_fails_visibly_and_keeps_its_bytes(mailbox):
    raw = b"Subject: no sender here\r\n\r\nJust text.\r\n"
    message = ingest(mailbox, raw)
    assert message.status == InboundStatus.FAILED
    assert "sender" in message.error
    assert bytes(InboundMessage.objects.get(pk=message.pk).raw) == raw


# --- The ingest_email command ---------------------------------------------------------------------


def run_command(*args):
    out = io.StringIO()
    try:
        call_command("ingest_email", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_command_json_contract_and_duplicate_on_second_feed(mailbox, tmp_path):
    path = tmp_path / "mail.eml"
    path.write_bytes(
        raw_email(message_id="cli@example.com", attachments=[("tarif.pdf", b"%PDF-1.4", "application/pdf")])
    )

    first, error = run_command("--json", str(path))
    second, _ = run_command("--json", str(path))

    assert error is None
    row = json.loads(first)
    assert set(row) == {
        "file",
        "status",
        "ticket",
        "message_id",
        "from",
        "subject",
        "body_text",
        "full_text",
        "attachments",
        "language",
        "auto_reply",
        "error",
    }
    assert row["status"] == "created"
    assert row["ticket"] == Ticket.objects.get().reference
    assert row["from"] == {"address": "anna@example.com", "name": "Anna Schmidt"}
    assert row["attachments"][0]["filename"] == "tarif.pdf"
    assert row["attachments"][0]["size"] == 8
    assert len(row["attachments"][0]["sha256"]) == 64
    assert row["language"] == "de"
    assert row["auto_reply"] is False
    assert json.loads(second)["status"] == "duplicate"


def test_command_reads_mbox_and_maildir(mailbox, tmp_path):
    box = mailbox_lib.mbox(tmp_path / "archive.mbox")
    maildir = mailbox_lib.Maildir(tmp_path / "maildir")
    for index in range(3):
        box.add(raw_email(message_id=f"mbox{index}@example.com", subject=f"mbox {index}"))
        maildir.add(raw_email(message_id=f"maildir{index}@example.com", subject=f"maildir {index}"))
    box.flush()

    out, error = run_command("--json", str(tmp_path / "archive.mbox"), str(tmp_path / "maildir"))

    assert error is None
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["status"] for row in rows] == ["created"] * 6
    assert Ticket.objects.count() == 6


def test_command_finds_the_mailbox_by_recipient(mailbox, mailbox_b, tmp_path):
    path = tmp_path / "es.eml"
    path.write_bytes(
        raw_email(
            to="Soporte <soporte@telco-sur.test>",
            subject="Mi factura",
            body="Hola, mi factura es incorrecta y quiero una explicación.",
        )
    )
    out, _ = run_command("--json", str(path))
    assert json.loads(out)["status"] == "created"
    assert Ticket.objects.get().tenant == mailbox_b.tenant


def test_command_errors_are_clear(mailbox, tmp_path):
    _, missing = run_command(str(tmp_path / "nothing.eml"))
    assert "no such file" in missing
    _, unknown = run_command("--mailbox", "nobody@nowhere.test", str(tmp_path))
    assert "No mailbox" in unknown
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"Subject: no sender\r\n\r\nx")
    out, failed = run_command("--json", str(bad))
    assert "1 message(s) failed" in failed
    assert json.loads(out)["status"] == "failed"


def test_http_answers_202_even_when_the_broker_is_down(client, mailbox, django_capture_on_commit_callbacks):
    # The bytes are stored first; a broker outage only delays processing (the sweep enqueues later).
    from config.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    drop_celery_pools(app)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = post(client, mailbox.inbound_token, raw_email(message_id="no-broker@example.com"))
    finally:
        app.conf.broker_url = previous
        drop_celery_pools(app)
    assert len(callbacks) == 1  # the enqueue ran (and failed against the dead broker)
    assert response.status_code == 202
    assert InboundMessage.objects.get().status == InboundStatus.RECEIVED


def test_failed_message_is_listed_in_the_admin_and_retried_from_there(
    client, admin_user, mailbox, django_capture_on_commit_callbacks
):
    failed = ingest(mailbox, b"Subject: no sender\r\n\r\nWho wrote this?\r\n")
    assert failed.status == InboundStatus.FAILED
    client.force_login(admin_user)
    listing = client.get("/admin/connectors/inboundmessage/", {"status__exact": "failed"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [failed]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/connectors/inboundmessage/",
            {"action": "retry", "_selected_action": [failed.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert "1 messages queued again" in response.text
    assert len(callbacks) == 1  # processing is enqueued after the commit
    assert InboundMessage.objects.get(pk=failed.pk).status == InboundStatus.RECEIVED
