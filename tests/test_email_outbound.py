"""Replying by email and acknowledging new tickets, sent through a real SMTP server on loopback.

``aiosmtpd`` listens on 127.0.0.1 and keeps every envelope it accepts; Django's SMTP backend talks
to it over the real protocol. Customer mail comes in the way production mail does: raw bytes stored
by ``email_receive`` and processed by ``process_stored``.
"""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone, translation

from care.connectors.dispatch import process_stored
from care.connectors.email import outbound_tasks
from care.connectors.email.ingest import email_receive
from care.connectors.email.outbound import (
    ACKNOWLEDGEMENTS_PER_HOUR,
    MAX_SEND_ATTEMPTS,
    DeliveryFailed,
    acknowledgement_text,
    delivery_send,
    email_acknowledge,
    email_reply,
    reply_subject,
)
from care.connectors.email.outbound_tasks import send_email_delivery
from care.connectors.models import DeliveryStatus, InboundMessage, Mailbox, OutboundDelivery
from care.contacts.identities import IdentityKind
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction, Interaction, Ticket
from care.tickets.services import interaction_add, ticket_change_status
from care.tickets.status import Status
from config.celery import app as celery_app
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads

CUSTOMER = "anna.schmidt@example.com"
SIGNATURE = "Energie Nord GmbH\nKundenservice, Tel. 0800 123456"
PDF = b"%PDF-1.4\n\x00\x01\x02\xff binary \r\n bytes\n%%EOF"


# --- a real SMTP server -------------------------------------------------------------------------


class Collector:
    """aiosmtpd handler that keeps what it accepts, or refuses every recipient with a 550."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse_recipients = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 2.0.0 Ok: queued"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def use_smtp(settings, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5


@pytest.fixture
def smtp(settings):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    use_smtp(settings, controller.port)
    yield collector
    controller.stop()


@pytest.fixture
def smtp_down(settings):
    """Django is pointed at a loopback port on which nothing listens: connections are refused."""
    use_smtp(settings, free_port())


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def mailbox(tenant_a, media_root):
    return Mailbox.objects.create(
        tenant=tenant_a,
        name="Support",
        address="support@energie-nord.test",
        sender_name="Energie Nord Kundenservice",
        signature=SIGNATURE,
        default_language="de",
    )


def customer_mail(
    message_id: str,
    *,
    subject: str = "Zählerstand falsch abgerechnet",
    body: str = (
        "Guten Tag,\n\nmein Zählerstand wurde in der letzten Rechnung falsch abgelesen. "
        "Der richtige Stand ist 12345 Kilowattstunden. Bitte korrigieren Sie die Rechnung.\n\n"
        "Mit freundlichen Grüßen\nAnna Schmidt\n"
    ),
    in_reply_to: str | None = None,
    sender: str = CUSTOMER,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Anna Schmidt <{sender}>"
    message["To"] = "support@energie-nord.test"
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(body)
    return message.as_bytes()


def receive(mailbox: Mailbox, raw: bytes) -> InboundMessage:
    stored, _created = email_receive(mailbox=mailbox, raw=raw, source="cli", process=False)
    processed = process_stored(stored.pk)
    assert processed is not None
    assert processed.status == "processed", processed.error
    return processed


def delivery_of(interaction: Interaction) -> OutboundDelivery:
    return OutboundDelivery.objects.get(interaction=interaction)


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    # SMTP carries CRLF line ends; compare with the \n the texts were written with.
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


# --- replies ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reply_arrives_threaded_signed_with_html_and_attachments(
    smtp, mailbox, agent, django_capture_on_commit_callbacks
):
    first = receive(mailbox, customer_mail("m1.anna@example.com"))
    ticket = first.ticket
    assert ticket is not None
    # A second customer mail on the same ticket (threaded by the reference in its subject).
    second = receive(mailbox, customer_mail("m2.anna@example.com", subject=f"Nachtrag [{ticket.reference}]"))
    assert second.ticket == ticket

    with django_capture_on_commit_callbacks() as callbacks:
        reply = email_reply(
            ticket=ticket,
            author=agent.user,
            body_text="Guten Tag Frau Schmidt,\n\nwir haben die Rechnung korrigiert.",
            attachments=[
                ("Rechnung korrigiert.pdf", PDF, "application/pdf"),
                ("zählerstand.txt", "Zählerstand: 12345\n".encode(), "text/plain"),
            ],
        )
    # After commit: the send task, the live interaction.added, the wallboard refresh (reply meets SLA).
    assert len(callbacks) == 3
    delivery = delivery_of(reply)
    assert (delivery.status, delivery.recipient, delivery.mailbox) == (
        DeliveryStatus.QUEUED,
        CUSTOMER,
        mailbox,
    )
    assert smtp.envelopes == []

    delivery = delivery_send(delivery_id=delivery.pk)

    assert delivery.status == DeliveryStatus.SENT
    assert delivery.sent_at is not None
    assert delivery.attempts == 1
    assert delivery.message_id == reply.external_id
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "support@energie-nord.test"
    assert envelope.rcpt_tos == [CUSTOMER]
    [sent] = smtp.messages
    assert parseaddr(str(sent["From"])) == ("Energie Nord Kundenservice", "support@energie-nord.test")
    assert [address for _name, address in getaddresses([str(sent["Reply-To"])])] == [
        "support@energie-nord.test"
    ]
    assert str(sent["To"]) == CUSTOMER
    assert str(sent["Subject"]) == f"Re: Zählerstand falsch abgerechnet [{ticket.reference}]"
    assert str(sent["Message-ID"]) == f"<{reply.external_id}>"
    assert "@energie-nord.test" in reply.external_id
    assert "<" not in reply.external_id
    assert str(sent["In-Reply-To"]) == "<m2.anna@example.com>"
    assert str(sent["References"]).split() == ["<m1.anna@example.com>", "<m2.anna@example.com>"]
    assert sent["Auto-Submitted"] is None  # a person's answer, which may be answered

    text, html = text_and_html(sent)
    assert text.startswith("Guten Tag Frau Schmidt,\n\nwir haben die Rechnung korrigiert.")
    assert f"\n-- \n{SIGNATURE}" in text
    assert "Guten Tag Frau Schmidt,<br>" in html
    assert "Kundenservice, Tel. 0800 123456" in html
    assert "-- <br>" in html

    attachments = {part.get_filename(): part for part in sent.iter_attachments()}
    assert set(attachments) == {"Rechnung korrigiert.pdf", "zählerstand.txt"}
    assert attachments["Rechnung korrigiert.pdf"].get_content_type() == "application/pdf"
    assert attachments["Rechnung korrigiert.pdf"].get_payload(decode=True) == PDF
    assert attachments["zählerstand.txt"].get_payload(decode=True) == "Zählerstand: 12345\n".encode()
    assert attachments["zählerstand.txt"].get_content_type() == "text/plain"
    assert [a.filename for a in reply.attachments.all()] == ["Rechnung korrigiert.pdf", "zählerstand.txt"]


@pytest.mark.django_db
def test_html_reply_is_sent_as_the_alternative(smtp, mailbox, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    IdentityFactory(customer=ticket.customer, value=CUSTOMER)
    reply = email_reply(
        ticket=ticket,
        author=agent.user,
        body_text="",
        body_html="<p>Ihre <b>Rechnung</b> ist korrigiert.</p><script>alert(1)</script>",
    )
    delivery_send(delivery_id=delivery_of(reply).pk)

    text, html = text_and_html(smtp.messages[0])
    assert "<b>Rechnung</b>" in html
    assert "script" not in html  # stored sanitised, sent as stored
    assert "Ihre Rechnung ist korrigiert." in text  # the text part is derived from the HTML
    assert SIGNATURE.splitlines()[0] in html


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Zählerstand falsch", "Re: Zählerstand falsch [ENN-12]"),
        ("Re: AW: Zählerstand falsch [ENN-12]", "Re: Zählerstand falsch [ENN-12]"),
        ("[ENN-12] RE: Frage zum Abschlag", "Re: Frage zum Abschlag [ENN-12]"),
        ("Frage ENN-12 zum Abschlag", "Re: Frage zum Abschlag [ENN-12]"),
        ("Vertrag ENN-123", "Re: Vertrag ENN-123 [ENN-12]"),
        ("WG: Rechnung", "Re: WG: Rechnung [ENN-12]"),
        ("Re:", "Re: [ENN-12]"),
    ],
)
@pytest.mark.django_db
def test_subject_has_one_re_and_the_reference_once(tenant_a, subject, expected):
    assert reply_subject(Ticket(tenant=tenant_a, number=12, subject=subject)) == expected


@pytest.mark.django_db
def test_reply_is_sent_from_the_mailbox_the_customer_wrote_to(smtp, mailbox, tenant_a, agent):
    billing = Mailbox.objects.create(tenant=tenant_a, name="Billing", address="billing@energie-nord.test")
    ticket = receive(billing, customer_mail("to-billing@example.com")).ticket

    reply = email_reply(ticket=ticket, author=agent.user, body_text="Danke.")

    assert delivery_of(reply).mailbox == billing
    delivery_send(delivery_id=delivery_of(reply).pk)
    sent = smtp.messages[0]
    # No sender name on that mailbox: the tenant's name is shown.
    assert parseaddr(str(sent["From"])) == (tenant_a.name, "billing@energie-nord.test")
    assert "\n-- \n" not in text_and_html(sent)[0]  # and no signature either


@pytest.mark.django_db
def test_sending_twice_sends_once(smtp, mailbox, agent):
    ticket = receive(mailbox, customer_mail("twice@example.com")).ticket
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Erledigt."))

    first = delivery_send(delivery_id=delivery.pk)
    again = delivery_send(delivery_id=delivery.pk)
    assert send_email_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.SENT

    assert len(smtp.envelopes) == 1
    assert first.status == again.status == DeliveryStatus.SENT
    assert again.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_one_delivery_send_it_once(smtp, mailbox, agent, tenant_a, monkeypatch):
    monkeypatch.setattr(outbound_tasks, "enqueue_delivery", lambda delivery_id: None)  # no broker here
    ticket = make_ticket(tenant=tenant_a)
    IdentityFactory(customer=ticket.customer, value=CUSTOMER)
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Einmal, bitte."))

    statuses = run_in_threads(lambda _: delivery_send(delivery_id=delivery.pk).status, 4)

    assert len(smtp.envelopes) == 1
    assert DeliveryStatus.SENT in statuses
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)


@pytest.mark.django_db
def test_commit_enqueues_the_task_that_sends(
    smtp, mailbox, agent, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    ticket = receive(mailbox, customer_mail("eager@example.com")).ticket

    with django_capture_on_commit_callbacks(execute=True):
        reply = email_reply(ticket=ticket, author=agent.user, body_text="Wir kümmern uns darum.")

    assert delivery_of(reply).status == DeliveryStatus.SENT
    assert str(smtp.messages[0]["Message-ID"]) == f"<{reply.external_id}>"


@pytest.mark.parametrize("status", [Status.PENDING, Status.SOLVED, Status.ON_HOLD])
@pytest.mark.django_db
def test_pending_and_solved_tickets_take_replies(mailbox, agent, tenant_a, status):
    ticket = make_ticket(tenant=tenant_a)
    IdentityFactory(customer=ticket.customer, value=CUSTOMER)
    ticket_change_status(ticket=ticket, status=status, actor=None)

    reply = email_reply(ticket=ticket, author=agent.user, body_text="Noch ein Hinweis.")

    assert delivery_of(reply).status == DeliveryStatus.QUEUED
    assert reply.author_user == agent.user
    assert reply.direction == Direction.OUTBOUND


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_without_email_gets_a_clear_refusal(mailbox, agent, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    IdentityFactory(customer=customer, kind=IdentityKind.PHONE, value="+49 30 1234567")
    ticket = make_ticket(tenant=tenant_a, customer=customer, channel=Channel.PHONE)

    with translation.override("en"), pytest.raises(BusinessRuleViolation) as refused:
        email_reply(ticket=ticket, author=agent.user, body_text="Hallo")

    assert refused.value.messages == [
        f"The customer of {ticket.reference} has no email address; add one to the customer or reply "
        "through another channel."
    ]
    assert not Interaction.objects.filter(ticket=ticket).exists()
    assert not OutboundDelivery.objects.exists()


@pytest.mark.django_db
def test_an_explicit_recipient_is_used_and_checked(mailbox, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a)  # the customer has no email address at all

    reply = email_reply(ticket=ticket, author=agent.user, body_text="Hallo", to=" Buchhaltung@Example.com ")
    assert delivery_of(reply).recipient == "buchhaltung@example.com"

    with pytest.raises(BusinessRuleViolation, match="not a valid email address"):
        email_reply(ticket=ticket, author=agent.user, body_text="Hallo", to="nobody")


@pytest.mark.django_db
def test_closed_ticket_takes_no_reply(mailbox, agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    IdentityFactory(customer=ticket.customer, value=CUSTOMER)
    ticket_change_status(ticket=ticket, status=Status.CLOSED, actor=None)

    with translation.override("en"), pytest.raises(BusinessRuleViolation, match="is closed"):
        email_reply(ticket=ticket, author=agent.user, body_text="Zu spät")
    assert not OutboundDelivery.objects.exists()


@pytest.mark.django_db
def test_tenant_without_active_mailbox_is_refused(mailbox, agent, tenant_a):
    Mailbox.objects.filter(pk=mailbox.pk).update(is_active=False)
    ticket = make_ticket(tenant=tenant_a)
    IdentityFactory(customer=ticket.customer, value=CUSTOMER)

    with translation.override("en"), pytest.raises(BusinessRuleViolation, match="no active mailbox"):
        email_reply(ticket=ticket, author=agent.user, body_text="Hallo")


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_server_down_records_the_error_and_fails_after_the_last_attempt(smtp_down, mailbox, agent):
    ticket = receive(mailbox, customer_mail("down@example.com")).ticket
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Hallo"))

    for attempt in range(1, MAX_SEND_ATTEMPTS):
        with pytest.raises(OSError):  # retryable: the task's autoretry_for catches it
            delivery_send(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.QUEUED, attempt)
        assert delivery.last_error.startswith("ConnectionRefusedError")
    with pytest.raises(DeliveryFailed):
        delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == MAX_SEND_ATTEMPTS
    assert delivery.failed_at is not None
    assert delivery.sent_at is None
    assert delivery_send(delivery_id=delivery.pk).attempts == MAX_SEND_ATTEMPTS  # settled: no more tries


@pytest.mark.django_db
def test_task_retries_then_marks_the_delivery_failed(smtp_down, mailbox, agent):
    ticket = receive(mailbox, customer_mail("task-down@example.com")).ticket
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Hallo"))

    result = send_email_delivery.apply(args=(delivery.pk,))  # eager: the retries run at once

    assert result.get() == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_SEND_ATTEMPTS)
    assert "ConnectionRefusedError" in delivery.last_error


@pytest.mark.django_db
def test_a_retry_sends_once_the_server_is_back(smtp, settings, mailbox, agent):
    ticket = receive(mailbox, customer_mail("flaky@example.com")).ticket
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Hallo"))
    port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()
    with pytest.raises(OSError):
        delivery_send(delivery_id=delivery.pk)

    settings.EMAIL_PORT = port
    delivery = delivery_send(delivery_id=delivery.pk)

    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert delivery.last_error == ""
    assert len(smtp.envelopes) == 1


@pytest.mark.django_db
def test_a_permanent_refusal_fails_at_once(smtp, mailbox, agent):
    smtp.refuse_recipients = True
    ticket = receive(mailbox, customer_mail("unknown-user@example.com")).ticket
    delivery = delivery_of(email_reply(ticket=ticket, author=agent.user, body_text="Hallo"))

    assert send_email_delivery.apply(args=(delivery.pk,)).get() == DeliveryStatus.FAILED

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "550" in delivery.last_error
    assert smtp.envelopes == []


# --- acknowledgements ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_acknowledgement_is_sent_once_in_german_and_marked_automatic(smtp, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(auto_acknowledge=True)
    mailbox.refresh_from_db()
    raw = customer_mail("new-ticket@example.com")

    inbound = receive(mailbox, raw)
    ticket = inbound.ticket
    assert ticket is not None
    assert ticket.language == "de"
    receive(mailbox, raw)  # the same mail delivered again: a duplicate, no second acknowledgement
    assert email_acknowledge(ticket=ticket, mailbox=mailbox, in_reply_to=inbound.interaction) is None

    [delivery] = OutboundDelivery.objects.filter(interaction__ticket=ticket)
    assert delivery.recipient == CUSTOMER
    delivery_send(delivery_id=delivery.pk)
    [sent] = smtp.messages
    assert str(sent["Auto-Submitted"]) == "auto-replied"
    assert str(sent["X-Auto-Response-Suppress"]) == "All"
    assert str(sent["In-Reply-To"]) == "<new-ticket@example.com>"
    assert str(sent["Subject"]) == f"Re: Zählerstand falsch abgerechnet [{ticket.reference}]"
    text = text_and_html(sent)[0]
    assert f"Ihre Referenz lautet {ticket.reference}." in text, (
        "German acknowledgement missing: add its strings to locale/de/LC_MESSAGES/django.po and compile"
    )
    assert "vielen Dank für Ihre Nachricht" in text
    assert f"\n-- \n{SIGNATURE}" in text
    ticket.refresh_from_db()
    assert ticket.first_response_at is None  # a robot's acknowledgement is not the first response


@pytest.mark.django_db
def test_acknowledgement_follows_the_ticket_language(mailbox, tenant_a):
    ticket = make_ticket(tenant=tenant_a, language="en")

    text = acknowledgement_text(ticket)

    assert text.startswith("Hello,")
    assert f"Your reference is {ticket.reference}." in text
    # Languages without a catalogue (es, fr, nl today) fall back to the English text.
    ticket.language = "es"
    assert ticket.reference in acknowledgement_text(ticket)


@pytest.mark.django_db
def test_no_acknowledgement_to_one_of_our_own_addresses(mailbox, tenant_a):
    Mailbox.objects.create(tenant=tenant_a, name="Info", address="info@energie-nord.test")
    ticket = make_ticket(tenant=tenant_a)
    ours = IdentityFactory(customer=ticket.customer, value="INFO@energie-nord.test")
    inbound, _ = interaction_add(
        ticket=ticket, channel=Channel.EMAIL, direction=Direction.INBOUND, author_identity=ours
    )

    assert email_acknowledge(ticket=ticket, mailbox=mailbox, in_reply_to=inbound) is None
    assert not OutboundDelivery.objects.exists()


@pytest.mark.django_db
def test_acknowledgements_to_one_address_are_capped_per_hour(mailbox, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    identity = IdentityFactory(customer=customer, value=CUSTOMER)
    sent = []
    for _ in range(ACKNOWLEDGEMENTS_PER_HOUR + 1):
        ticket = make_ticket(tenant=tenant_a, customer=customer)
        inbound, _ = interaction_add(
            ticket=ticket, channel=Channel.EMAIL, direction=Direction.INBOUND, author_identity=identity
        )
        sent.append(email_acknowledge(ticket=ticket, mailbox=mailbox, in_reply_to=inbound))

    assert [ack is not None for ack in sent] == [True] * ACKNOWLEDGEMENTS_PER_HOUR + [False]


# --- the round trip -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_customers_answer_to_a_reply_threads_by_its_headers(smtp, mailbox, agent):
    ticket = receive(mailbox, customer_mail("question@example.com")).ticket
    ticket_change_status(ticket=ticket, status=Status.OPEN, actor=None)
    reply = email_reply(ticket=ticket, author=agent.user, body_text="Welche Zählernummer?")
    delivery_send(delivery_id=delivery_of(reply).pk)
    ticket_change_status(ticket=ticket, status=Status.PENDING, actor=None)
    sent_id = str(smtp.messages[0]["Message-ID"]).strip("<>")

    # The answer's subject names neither the ticket nor the original subject: only headers thread it.
    answer = receive(
        mailbox,
        customer_mail(
            "answer@example.com",
            subject="Meine Zählernummer",
            body="Sie lautet 1ESY1160012345.",
            in_reply_to=sent_id,
        ),
    )

    assert answer.ticket == ticket
    assert answer.outcome == "appended"
    assert answer.summary["threaded_by"] == "headers"
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN  # the customer answered: back with the agents
    assert list(ticket.interactions.order_by("pk").values_list("direction", flat=True)) == [
        Direction.INBOUND,
        Direction.OUTBOUND,
        Direction.INBOUND,
    ]
