"""The reply composer on the ticket page: in whose voice and on which channel the reply goes out, the
tenant's macros rendered for the ticket, email attachments (sent, and refused over the limits), and
the Mentions section of My work. Query counts of what the composer adds are pinned."""

from __future__ import annotations

import email
import email.policy
import json
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from care.connectors.models import Mailbox, OutboundDelivery
from care.desk import composer
from care.macros.services import macro_create
from care.mentions.models import Mention
from care.tickets.models import Attachment, Direction, Interaction
from care.tickets.selectors import access_ticket
from care.tickets.services import interaction_add
from config.celery import app as celery_app
from tests.desk.conftest import CUSTOMER_ADDRESS, page_url
from tests.factories.accounts import make_agent
from tests.social.test_social_outbound import social_ticket

pytestmark = pytest.mark.django_db

JSON = {"accept": "application/json"}
PDF = b"%PDF-1.4 invoice\n%%EOF\n"


@pytest.fixture
def mailbox(tenant_a, media_root):
    return Mailbox.objects.create(
        tenant=tenant_a,
        name="Service",
        address="service@energie-nord.test",
        sender_name="Energie Nord Kundenservice",
        signature="Ihr Team von Energie Nord",
    )


def _config(page: str) -> dict:
    match = re.search(r'<script id="composer-config" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the composer's configuration is on the page"
    return json.loads(match.group(1))


def _newest(ticket):
    return Interaction.objects.filter(ticket=ticket).order_by("-pk").first()


# --- voice and channel --------------------------------------------------------------------------------


def test_email_ticket_shows_the_sending_mailbox_and_its_signature(client, agent, email_ticket, mailbox):
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert "From: Energie Nord Kundenservice &lt;service@energie-nord.test&gt;" in page
    assert "The mailbox's signature is appended to the reply." in page
    assert 'enctype="multipart/form-data"' in page
    assert 'name="attachments"' in page
    assert "Send reply" in page


def test_email_ticket_without_a_mailbox_says_so_on_the_composer(client, agent, email_ticket):
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert 'id="composer-voice-error"' in page
    assert "has no active mailbox to send email from" in page


def test_phone_ticket_logs_the_call_and_takes_no_files(client, agent, phone_ticket):
    client.force_login(agent.user)

    page = client.get(page_url(phone_ticket)).text

    assert "Log call" in page
    assert "recorded as the call's summary" in page
    assert 'name="attachments"' not in page


def test_social_ticket_shows_the_platform_and_account(client, agent, tenant_a):
    ticket = social_ticket(tenant_a, platform="telegram")
    client.force_login(agent.user)

    page = client.get(page_url(ticket)).text

    assert "Reply on Telegram" in page
    assert f"as {tenant_a.code} telegram" in page
    assert 'name="attachments"' not in page


# --- macros on the page -----------------------------------------------------------------------------


def test_macros_of_the_ticket_are_on_the_page_rendered_for_it(
    client, agent, email_ticket, tenant_a, tenant_b
):
    agent.user.full_name = "Alice Adler"
    agent.user.save()
    greeting = macro_create(
        tenant=tenant_a,
        title="Begrüßung",
        shortcut="hallo",
        language="de",
        body="Hallo {{customer.first_name}},\n\nIhr {{agent.first_name}} von {{tenant.name}}",
    )
    macro_create(tenant=tenant_a, title="English only", body="Hi", language="en")
    macro_create(tenant=tenant_b, title="Otro cliente", body="Hola")
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert _config(page)["macros"] == {str(greeting.pk): "Hallo Greta,\n\nIhr Alice von Energie Nord"}
    assert f'data-macro-id="{greeting.pk}"' in page
    assert 'data-search="begrüßung hallo"' in page
    assert "English only" not in page
    assert "Otro cliente" not in page


def _count_page(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


def test_composer_queries_do_not_grow_with_the_macros(client, agent, email_ticket, tenant_a, mailbox):
    client.force_login(agent.user)
    url = page_url(email_ticket)
    client.get(url)  # warm up what is cached per process
    without = _count_page(client, url)
    macro_create(tenant=tenant_a, title="Eins", body="{{customer.name}}")
    one = _count_page(client, url)
    for number in range(19):
        macro_create(tenant=tenant_a, title=f"Makro {number}", body="{{agent.name}} {{ticket.reference}}")
    twenty = _count_page(client, url)

    assert one == twenty == without
    assert _config(client.get(url).text)["macros"].__len__() == 20


def test_what_the_composer_costs(
    agent, email_ticket, phone_ticket, tenant_a, mailbox, django_assert_num_queries
):
    """The macros (one query) and the mailbox (the customer's last inbound mailbox, else the tenant's
    first: two here); a phone ticket costs the macros only."""
    macro_create(tenant=tenant_a, title="Eins", body="{{customer.name}}")
    email_ticket = access_ticket(agent.user, email_ticket.reference)  # as the page loads it
    phone_ticket = access_ticket(agent.user, phone_ticket.reference)
    with django_assert_num_queries(3):
        email = composer.composer_context(ticket=email_ticket, user=agent.user)
    with django_assert_num_queries(1):
        phone = composer.composer_context(ticket=phone_ticket, user=agent.user)
    assert email["composer"]["voice"]["address"] == "service@energie-nord.test"
    assert phone["composer"]["voice"] == {"kind": "phone"}


# --- attachments ----------------------------------------------------------------------------------


def _file(name, content=PDF, content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_email_reply_sends_its_attachments(
    client, agent, email_ticket, mailbox, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    client.force_login(agent.user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(email_ticket, "reply"),
            {
                "text": "Anbei die korrigierte Rechnung.",
                "attachments": [_file("Rechnung.pdf"), _file("stand.txt", b"12345\n", "text/plain")],
            },
            headers=JSON,
        )

    assert response.status_code == 201, response.content
    reply = _newest(email_ticket)
    assert reply.direction == Direction.OUTBOUND
    assert sorted(a.filename for a in reply.attachments.all()) == ["Rechnung.pdf", "stand.txt"]
    [sent] = mail.outbox
    assert sent.to == [CUSTOMER_ADDRESS]
    assert sent.from_email == "Energie Nord Kundenservice <service@energie-nord.test>"
    assert "Ihr Team von Energie Nord" in sent.body  # the mailbox's signature
    message = email.message_from_bytes(sent.message().as_bytes(), policy=email.policy.default)
    files = {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}
    assert files == {"Rechnung.pdf": PDF, "stand.txt": b"12345\n"}


def test_plain_form_post_with_a_file_redirects_back(client, agent, email_ticket, mailbox, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    client.force_login(agent.user)

    response = client.post(
        page_url(email_ticket, "reply"), {"text": "Anbei.", "attachments": [_file("a.pdf")]}
    )

    assert response.status_code == 303
    assert [a.filename for a in _newest(email_ticket).attachments.all()] == ["a.pdf"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([f"f{number}.pdf" for number in range(11)], "Attach at most 10 files."),
        (["big.pdf"], "big.pdf is larger than 1 MB."),
        (["a.pdf", "b.pdf", "c.pdf"], "The attachments are larger than 2 MB together."),
    ],
)
def test_attachments_over_the_limits_are_a_400_with_the_reason(
    client, agent, email_ticket, mailbox, monkeypatch, files, message
):
    # Smaller limits for the test: 1 MB a file, 2 MB together (the count limit stays 10).
    monkeypatch.setattr(composer, "MAX_ATTACHMENT_BYTES", 1024 * 1024)
    monkeypatch.setattr(composer, "MAX_ATTACHMENTS_TOTAL_BYTES", 2 * 1024 * 1024)
    size = {"big.pdf": 1024 * 1024 + 1}
    uploads = [_file(name, b"x" * size.get(name, 800 * 1024 if len(files) == 3 else 10)) for name in files]
    client.force_login(agent.user)
    before = Interaction.objects.count()

    script = client.post(
        page_url(email_ticket, "reply"), {"text": "Anbei.", "attachments": uploads}, headers=JSON
    )
    for upload in uploads:
        upload.seek(0)
    form = client.post(page_url(email_ticket, "reply"), {"text": "Mein Entwurf", "attachments": uploads})

    assert script.status_code == 400
    assert script.json() == {"error": message}
    assert form.status_code == 400
    assert message in form.text
    assert "Mein Entwurf" in form.text  # the text is kept
    assert Interaction.objects.count() == before
    assert not Attachment.objects.exists()


def test_the_real_limits_are_the_documented_ones():
    assert (
        composer.MAX_ATTACHMENTS,
        composer.MAX_ATTACHMENT_BYTES,
        composer.MAX_ATTACHMENTS_TOTAL_BYTES,
    ) == (
        10,
        10 * 1024 * 1024,
        25 * 1024 * 1024,
    )


def test_notes_and_phone_replies_refuse_files(client, agent, email_ticket, phone_ticket, mailbox):
    client.force_login(agent.user)
    before = Interaction.objects.count()

    note = client.post(
        page_url(email_ticket, "note"), {"text": "Notiz", "attachments": [_file("a.pdf")]}, headers=JSON
    )
    phone = client.post(
        page_url(phone_ticket, "reply"), {"text": "Anruf", "attachments": [_file("a.pdf")]}, headers=JSON
    )

    assert note.status_code == phone.status_code == 400
    assert (
        note.json()["error"]
        == "Internal notes carry no attachments; remove the files or send them with a reply."
    )
    assert (
        phone.json()["error"] == "Only email replies carry attachments; remove the files to reply on Phone."
    )
    assert Interaction.objects.count() == before
    assert not OutboundDelivery.objects.exists()


# --- My work: mentions ------------------------------------------------------------------------------


def _mention(ticket, author, mentioned, text):
    note, _created = interaction_add(
        ticket=ticket, channel=ticket.channel, direction=Direction.NOTE, body_text=text, author_user=author
    )
    return Mention.objects.create(
        tenant_id=ticket.tenant_id, interaction=note, ticket=ticket, mentioned=mentioned, author=author
    )


def test_my_work_lists_my_unread_mentions(client, agent, email_ticket, tenant_a, outsider):
    bea = make_agent(tenants=[tenant_a], email="bea@care.test")
    bea.user.full_name = "Bea Berg"
    bea.user.save()
    mine = _mention(email_ticket, bea.user, agent.user, "@alice bitte den Zähler prüfen")
    read = _mention(email_ticket, bea.user, agent.user, "@alice schon gelesen")
    Mention.objects.filter(pk=read.pk).update(read_at=timezone.now())
    _mention(email_ticket, agent.user, bea.user, "@bea nicht für Alice")
    client.force_login(agent.user)

    page = client.get("/desk/work/").text

    assert "Mentions (1)" in page
    assert f'id="mention-{mine.pk}"' in page
    assert "Bea Berg mentioned you" in page
    assert f'href="/desk/tickets/{email_ticket.reference}/#interaction-{mine.interaction_id}"' in page
    assert "@alice bitte den Zähler prüfen" in page
    assert "schon gelesen" not in page
    assert "nicht für Alice" not in page

    client.post("/desk/mentions/read", {"mention": [mine.pk]})
    page = client.get("/desk/work/").text
    assert "Mentions (0)" in page
    assert "Nobody has mentioned you in a note." in page


def test_my_work_mentions_cost_one_query_whatever_their_number(client, agent, email_ticket, tenant_a):
    bea = make_agent(tenants=[tenant_a], email="bea@care.test")
    _mention(email_ticket, bea.user, agent.user, "@alice eins")
    client.force_login(agent.user)
    client.get("/desk/work/")
    one = _count_page(client, "/desk/work/")
    for number in range(9):
        _mention(email_ticket, bea.user, agent.user, f"@alice {number}")
    ten = _count_page(client, "/desk/work/")

    assert one == ten
    assert "Mentions (10)" in client.get("/desk/work/").text
