"""The email channel end to end, with real processes: the "done when" of the email issue.

An email posted to a mailbox's HTTP endpoint becomes a ticket in the right tenant, with the right
customer and language; an agent's reply leaves with correct threading headers; the customer's
answer lands on the same ticket. Nothing is processed in the test process: a real Celery worker
(a subprocess: the project's ``celery -A config worker -P solo``, see ``tests/processes.py``) takes
the tasks from Redis, reads and writes the test database, and sends through a real SMTP server
(aiosmtpd, in this process, on loopback).

Isolation on shared services: the worker and this process use a Redis logical database of their
own (``E2E_REDIS_DB``) and, in it, a queue named for this run only, which is also the worker's
default queue (so that the tasks the worker enqueues itself come back to it and to no other
worker); the queue's keys are deleted afterwards. The test is transactional, so that what it
writes is committed and visible to the worker; the worker is stopped before the database is
flushed.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core import mail
from django.utils import timezone

from care.connectors.email.outbound import email_reply
from care.connectors.models import DeliveryStatus, InboundMessage, InboundStatus, Mailbox, OutboundDelivery
from care.contacts.models import Identity
from care.tickets.models import Direction, Ticket
from care.tickets.status import Status
from tests.factories.accounts import make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tenants import TenantFactory
from tests.processes import ProcessError, wait_until

STEP_TIMEOUT = 20.0
CUSTOMER = "anna.schmidt@example.com"
MAILBOX = "kundenservice@stadtwerke-nord.test"

pytestmark = pytest.mark.slow


# --- the mail ------------------------------------------------------------------------------------


def customer_mail(
    *, message_id: str, subject: str, body: str, in_reply_to: str | None = None, references=()
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Anna Schmidt <{CUSTOMER}>"
    message["To"] = f"Stadtwerke Nord <{MAILBOX}>"
    message["Subject"] = subject
    # A minute ago: a Date from the future would be replaced by the arrival time.
    message["Date"] = format_datetime(timezone.now() - dt.timedelta(minutes=1))
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        message["References"] = " ".join(f"<{ref}>" for ref in references)
    message.set_content(body)
    return message.as_bytes()


def post_mail(client, mailbox: Mailbox, raw: bytes) -> int:
    response = client.post(
        f"/inbound/email/{mailbox.inbound_token}/", data=raw, content_type="message/rfc822"
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "stored"
    return response.json()["id"]


def ids(header) -> list[str]:
    return [part.strip("<>") for part in str(header or "").split()]


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_mail_in_reply_out_answer_in_with_a_real_worker_and_smtp(client, smtp_server, worker):
    smtp, _port = smtp_server

    def details() -> str:
        rows = (
            "\n".join(
                f"  inbound {m.pk}: {m.status} {m.outcome} attempts={m.attempts} error={m.error[:500]!r}"
                for m in InboundMessage.objects.order_by("pk")
            )
            + "\n"
            + "\n".join(
                f"  delivery {d.pk}: {d.status} attempts={d.attempts} error={d.last_error[:500]!r}"
                for d in OutboundDelivery.objects.order_by("pk")
            )
        )
        return f"Rows:\n{rows}\n{worker.describe()}"

    def processed(inbound_id: int) -> InboundMessage | None:
        message = InboundMessage.objects.get(pk=inbound_id)
        if message.status == InboundStatus.FAILED:
            raise ProcessError(
                f"The worker failed inbound message {inbound_id}: {message.error}\n{details()}"
            )
        return message if message.status != InboundStatus.RECEIVED else None

    # The tenant's default language is English: a German ticket means the language was detected.
    tenant = TenantFactory(
        name="Stadtwerke Nord",
        slug="stadtwerke-nord",
        code="SWN",
        default_language="en",
        supported_languages=["en", "de"],
    )
    other = TenantFactory(
        name="Telco Sur",
        slug="telco-sur",
        code="TSU",
        default_language="es",
        supported_languages=["es", "en", "de"],
    )
    mailbox = Mailbox.objects.create(
        tenant=tenant,
        name="Kundenservice",
        address=MAILBOX,
        sender_name="Stadtwerke Nord Kundenservice",
        signature="Stadtwerke Nord GmbH",
        auto_acknowledge=True,
    )
    Mailbox.objects.create(
        tenant=other, name="Soporte", address="soporte@telco-sur.test", auto_acknowledge=True
    )
    # The same person is a customer of the other tenant too: that customer must stay untouched.
    elsewhere = IdentityFactory(
        customer=CustomerFactory(tenant=other, display_name="Anna S."), value=CUSTOMER
    )
    agent = make_agent(tenants=[tenant], email="jonas@care.test")

    # 1. The customer's email, posted over HTTP, is stored; the worker opens a ticket and acknowledges.
    question_id = make_msgid(domain="example.com")[1:-1]
    first_id = post_mail(
        client,
        mailbox,
        customer_mail(
            message_id=question_id,
            subject="Abschlag zu hoch",
            body=(
                "Guten Tag,\n\nmein monatlicher Abschlag wurde ohne Ankündigung von 80 auf 140 Euro "
                "erhöht. Bitte prüfen Sie das und passen Sie den Betrag wieder an.\n\n"
                "Mit freundlichen Grüßen\nAnna Schmidt\n"
            ),
        ),
    )
    first = wait_until(
        lambda: processed(first_id),
        timeout=STEP_TIMEOUT,
        what="The worker did not process the customer's email",
        details=details,
    )
    assert (first.status, first.outcome) == (InboundStatus.PROCESSED, "created"), details()
    ticket = Ticket.objects.select_related("tenant", "customer").get(pk=first.ticket_id)
    assert ticket.tenant == tenant
    assert ticket.language == "de"
    assert ticket.subject == "Abschlag zu hoch"
    identity = Identity.objects.get(tenant=tenant, kind="email", value=CUSTOMER)
    assert ticket.customer == identity.customer
    assert ticket.customer.display_name == "Anna Schmidt"
    assert ticket.customer.preferred_language == "de"
    assert not Ticket.objects.filter(tenant=other).exists()
    assert not Ticket.objects.filter(customer=elsewhere.customer).exists()

    [acknowledgement] = smtp.wait_for(
        1, timeout=STEP_TIMEOUT, what="No acknowledgement was sent", details=details
    )
    assert smtp.envelopes[0].rcpt_tos == [CUSTOMER]
    assert acknowledgement["Auto-Submitted"] == "auto-replied"
    assert acknowledgement["X-Auto-Response-Suppress"] == "All"
    assert ids(acknowledgement["In-Reply-To"]) == [question_id]
    assert f"[{ticket.reference}]" in acknowledgement["Subject"]
    assert "Ihre Referenz lautet" in acknowledgement.get_body(("plain",)).get_content()
    acknowledgement_id = ids(acknowledgement["Message-ID"])[0]

    # 2. An agent's reply, committed in this process, is sent by the worker, threaded on the question.
    reply = email_reply(
        ticket=ticket, author=agent.user, body_text="Guten Tag Frau Schmidt,\n\nwir prüfen Ihren Abschlag."
    )
    sent = smtp.wait_for(2, timeout=STEP_TIMEOUT, what="The agent's reply was not sent", details=details)
    answer_to = sent[1]
    assert smtp.envelopes[1].rcpt_tos == [CUSTOMER]
    reply_id = ids(answer_to["Message-ID"])[0]
    assert reply_id == reply.external_id
    assert answer_to["Subject"] == f"Re: Abschlag zu hoch [{ticket.reference}]"
    assert ids(answer_to["In-Reply-To"]) == [question_id]
    assert ids(answer_to["References"]) == [question_id, acknowledgement_id]
    assert "Auto-Submitted" not in answer_to
    assert "wir prüfen Ihren Abschlag" in answer_to.get_body(("plain",)).get_content()
    wait_until(
        lambda: OutboundDelivery.objects.filter(interaction=reply, status=DeliveryStatus.SENT).exists(),
        timeout=STEP_TIMEOUT,
        what="The reply's delivery was not marked sent",
        details=details,
    )

    # 3. The customer answers the reply (a subject without the reference: only the headers thread it).
    answer_id_header = make_msgid(domain="example.com")[1:-1]
    answer_id = post_mail(
        client,
        mailbox,
        customer_mail(
            message_id=answer_id_header,
            subject="Meine Kundennummer",
            body=(
                "Hallo,\n\nmeine Kundennummer lautet 4711-0815. Danke für die schnelle Antwort!\n\n"
                "Anna Schmidt\n"
            ),
            in_reply_to=reply_id,
            references=[question_id, acknowledgement_id, reply_id],
        ),
    )
    answer = wait_until(
        lambda: processed(answer_id),
        timeout=STEP_TIMEOUT,
        what="The worker did not process the customer's answer",
        details=details,
    )
    assert (answer.status, answer.outcome, answer.ticket_id) == (
        InboundStatus.PROCESSED,
        "appended",
        ticket.pk,
    )
    assert answer.summary["threaded_by"] == "headers"
    assert Ticket.objects.filter(tenant=tenant).count() == 1
    assert list(ticket.interactions.order_by("pk").values_list("direction", "external_id")) == [
        (Direction.INBOUND, question_id),
        (Direction.OUTBOUND, acknowledgement_id),
        (Direction.OUTBOUND, reply_id),
        (Direction.INBOUND, answer_id_header),
    ]
    ticket.refresh_from_db()
    assert ticket.status != Status.CLOSED

    # Everything was done by the worker: this process sent nothing, the worker ran the tasks.
    assert mail.outbox == []
    log = worker.log()
    assert log.count("care.connectors.tasks.process_inbound[") >= 2, worker.describe()
    assert "send_email_delivery[" in log, worker.describe()
    assert "Traceback" not in log, worker.describe()
    assert OutboundDelivery.objects.count() == 2  # the answer got no second acknowledgement

    # 4. The worker stops on SIGTERM and leaves no process behind.
    worker.stop(timeout=10)
    assert not worker.is_running()
    assert not worker.group_alive(), worker.describe()
