"""Storing what customers and agents write: idempotent ingestion, sanitised HTML, attachments, timeline."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from care.contacts.services import customer_get_or_create_by_identity
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Attachment, Direction, Interaction, Ticket
from care.tickets.selectors import ticket_timeline
from care.tickets.services import attachment_store, interaction_add
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads

MESSAGE_ID = "<CAF=abc123@mail.example.com>"


@pytest.fixture
def stored_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def anna(tenant_a):
    _customer, identity, _created = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="email", value="anna@example.com", display_name="Anna"
    )
    return identity


@pytest.fixture
def ticket(tenant_a, anna):
    return make_ticket(tenant=tenant_a, customer=anna.customer)


def _inbound(ticket, identity, **kwargs):
    kwargs.setdefault("channel", Channel.EMAIL)
    return interaction_add(ticket=ticket, direction=Direction.INBOUND, author_identity=identity, **kwargs)


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_message_delivered_twice_is_stored_once(ticket, anna):
    first, created = _inbound(ticket, anna, body_text="My meter reading is wrong.", external_id=MESSAGE_ID)
    again, created_again = _inbound(ticket, anna, body_text="(retry)", external_id=MESSAGE_ID)

    assert created is True
    assert created_again is False
    assert again.pk == first.pk
    assert again.body_text == "My meter reading is wrong."
    assert Interaction.objects.filter(external_id=MESSAGE_ID).count() == 1


@pytest.mark.django_db
def test_same_external_id_on_another_channel_is_another_message(ticket, anna):
    mail, _ = _inbound(ticket, anna, external_id="42")
    message, created = _inbound(ticket, anna, channel=Channel.SOCIAL, external_id="42")

    assert created is True
    assert message.pk != mail.pk
    assert Interaction.objects.filter(external_id="42").count() == 2


@pytest.mark.django_db
def test_messages_without_external_id_are_never_deduplicated(ticket, agent):
    for _ in range(2):
        _, created = interaction_add(
            ticket=ticket, channel=Channel.PHONE, direction=Direction.NOTE, author_user=agent.user
        )
        assert created is True
    assert ticket.interactions.count() == 2


@pytest.mark.django_db
def test_the_same_message_sent_to_two_tenants_is_stored_for_each(ticket, anna, tenant_b):
    # One mail addressed to two clients' mailboxes carries one Message-ID; each tenant keeps its copy
    # and neither ever gets the other's row back.
    mine, _ = _inbound(ticket, anna, body_text="for Energie Nord", external_id=MESSAGE_ID)
    ticket_b = make_ticket(tenant=tenant_b)

    theirs, created = interaction_add(
        ticket=ticket_b,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        body_text="for Telco Sur",
        external_id=MESSAGE_ID,
    )

    assert created is True
    assert theirs.pk != mine.pk
    assert theirs.tenant_id == tenant_b.pk
    assert Interaction.objects.filter(external_id=MESSAGE_ID).count() == 2
    again, created = interaction_add(
        ticket=ticket_b, channel=Channel.EMAIL, direction=Direction.INBOUND, external_id=MESSAGE_ID
    )
    assert (again.pk, created) == (theirs.pk, False)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_store_one_row():
    tenant = TenantFactory(code="RACE", slug="race")
    _, identity, _ = customer_get_or_create_by_identity(tenant=tenant, kind="email", value="a@example.com")
    ticket = make_ticket(tenant=tenant, customer=identity.customer)

    def deliver(index):
        interaction, created = _inbound(
            ticket, identity, body_text=f"delivery {index}", external_id=MESSAGE_ID
        )
        return interaction.pk, created

    results = run_in_threads(deliver, 8)

    assert len({pk for pk, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    assert Interaction.objects.filter(external_id=MESSAGE_ID).count() == 1


# --- what may be stored --------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_html_is_sanitised(ticket, anna):
    html = (
        '<p onclick="steal()">Hello <b>team</b></p>'
        "<script>alert('x')</script>"
        '<a href="javascript:alert(1)">click</a>'
        '<a href="https://example.com/bill">bill</a>'
        '<img src="cid:meter-photo@example.com" alt="meter">'
        '<img src="https://tracker.example/pixel.gif?agent=1" alt="">'
        '<iframe src="https://evil.example"></iframe>'
        '<div style="position:fixed">overlay</div>'
    )

    interaction, _ = _inbound(ticket, anna, body_html=html)

    stored = Interaction.objects.get(pk=interaction.pk).body_html
    for removed in ("<script", "alert(", "onclick", "steal", "javascript:", "<iframe", "style="):
        assert removed not in stored
    assert "<p>Hello <b>team</b></p>" in stored
    assert '<a href="https://example.com/bill" rel="noopener noreferrer nofollow">bill</a>' in stored
    assert '<a rel="noopener noreferrer nofollow">click</a>' in stored
    assert '<img src="cid:meter-photo@example.com" alt="meter">' in stored
    assert "tracker.example" not in stored  # remote images (tracking pixels) lose their source
    assert "<div>overlay</div>" in stored


@pytest.mark.django_db
def test_naive_times_are_refused(ticket, anna):
    with pytest.raises(ValidationError, match="must carry a time zone"):
        _inbound(ticket, anna, occurred_at=dt.datetime(2025, 3, 1, 9, 30))  # noqa: DTZ001 - the point
    assert not ticket.interactions.exists()


@pytest.mark.django_db
def test_aware_times_are_kept(ticket, anna):
    sent = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    interaction, _ = _inbound(ticket, anna, occurred_at=sent)
    assert Interaction.objects.get(pk=interaction.pk).occurred_at == sent


@pytest.mark.django_db
def test_notes_cannot_come_from_customer_identities(ticket, anna):
    with pytest.raises(BusinessRuleViolation, match="Internal notes are written by agents, not customers"):
        interaction_add(ticket=ticket, channel=Channel.EMAIL, direction=Direction.NOTE, author_identity=anna)
    assert not ticket.interactions.exists()


@pytest.mark.django_db
def test_identity_of_another_tenant_cannot_author_an_interaction(ticket, tenant_b):
    _, foreign, _ = customer_get_or_create_by_identity(tenant=tenant_b, kind="email", value="ana@example.es")
    with pytest.raises(BusinessRuleViolation, match="identity belongs to another tenant"):
        _inbound(ticket, foreign)


@pytest.mark.django_db
def test_first_outbound_message_sets_first_response_once(ticket, anna, agent):
    _inbound(ticket, anna, body_text="Help!")
    interaction_add(ticket=ticket, channel=Channel.EMAIL, direction=Direction.NOTE, author_user=agent.user)
    assert Ticket.objects.get(pk=ticket.pk).first_response_at is None

    answered_at = timezone.now()
    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        author_user=agent.user,
        occurred_at=answered_at,
    )
    interaction_add(
        ticket=Ticket.objects.get(pk=ticket.pk),
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        author_user=agent.user,
        occurred_at=answered_at + dt.timedelta(hours=1),
    )
    # A stale ticket object (first_response_at still None) must not move it either.
    interaction_add(
        ticket=ticket,
        channel=Channel.PHONE,
        direction=Direction.OUTBOUND,
        author_user=agent.user,
        occurred_at=answered_at + dt.timedelta(hours=2),
    )

    assert Ticket.objects.get(pk=ticket.pk).first_response_at == answered_at


# --- attachments ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_attachment_is_stored_with_its_digest_and_size(ticket, anna, stored_files):
    interaction, _ = _inbound(ticket, anna, body_text="See the photo.")
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

    attachment = attachment_store(
        interaction=interaction,
        filename="meter.png",
        content=content,
        content_type="image/png",
        content_id="meter-photo@example.com",
        is_inline=True,
    )

    stored = Attachment.objects.get(pk=attachment.pk)
    digest = hashlib.sha256(content).hexdigest()
    assert stored.sha256 == digest
    assert stored.size == len(content) == 1032
    assert (stored.filename, stored.content_type, stored.is_inline) == ("meter.png", "image/png", True)
    assert stored.tenant_id == ticket.tenant_id
    assert stored.file.name == f"attachments/{ticket.tenant_id}/{digest[:2]}/{digest}"
    assert (stored_files / stored.file.name).read_bytes() == content
    with stored.file.open("rb") as handle:
        assert handle.read() == content


@pytest.mark.django_db
def test_identical_content_shares_one_file(ticket, anna, stored_files):
    first_mail, _ = _inbound(ticket, anna, external_id="<1@example.com>")
    second_mail, _ = _inbound(ticket, anna, external_id="<2@example.com>")

    first = attachment_store(interaction=first_mail, filename="invoice.pdf", content=b"%PDF-1.7 same")
    second = attachment_store(interaction=second_mail, filename="copy.pdf", content=b"%PDF-1.7 same")
    other = attachment_store(interaction=second_mail, filename="other.pdf", content=b"%PDF-1.7 other")

    assert first.pk != second.pk
    assert first.file.name == second.file.name
    assert other.file.name != first.file.name
    assert len([p for p in stored_files.rglob("*") if p.is_file()]) == 2


@pytest.mark.django_db
def test_empty_file_name_falls_back_to_the_digest(ticket, anna, stored_files):
    interaction, _ = _inbound(ticket, anna)
    attachment = attachment_store(interaction=interaction, filename="", content=b"", content_type="")
    assert attachment.filename == hashlib.sha256(b"").hexdigest()
    assert attachment.size == 0
    assert attachment.content_type == "application/octet-stream"


# --- the timeline --------------------------------------------------------------------------------


def _conversation(ticket, identity, agent, count):
    start = timezone.now() - dt.timedelta(days=1)
    for index in range(count):
        outbound = index % 2 == 1
        interaction, _ = interaction_add(
            ticket=ticket,
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            author_identity=None if outbound else identity,
            author_user=agent.user if outbound else None,
            body_text=f"message {index}",
            external_id=f"<{ticket.pk}.{index}@example.com>",
            occurred_at=start + dt.timedelta(minutes=index),
        )
        for part in range(2):
            attachment_store(
                interaction=interaction, filename=f"{index}-{part}.txt", content=f"{index}/{part}".encode()
            )


def _render(timeline):
    """What a page shows of each entry: author, text and attachment names."""
    return [
        (entry.author_label, entry.body_text, [a.filename for a in entry.attachments.all()])
        for entry in timeline
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 20])
def test_timeline_loads_in_a_fixed_number_of_queries(
    tenant_a, anna, agent, stored_files, django_assert_num_queries, count
):
    ticket = make_ticket(tenant=tenant_a, customer=anna.customer)
    _conversation(ticket, anna, agent, count)

    with django_assert_num_queries(2):  # interactions with their authors, then all attachments
        rows = _render(ticket_timeline(ticket=ticket))

    assert len(rows) == count
    assert rows[0] == ("anna@example.com", "message 0", ["0-0.txt", "0-1.txt"])
    assert rows[1] == (str(agent.user), "message 1", ["1-0.txt", "1-1.txt"])
    assert [body for _, body, _ in rows] == [f"message {i}" for i in range(count)]


@pytest.mark.django_db
def test_timeline_is_in_the_order_things_happened(ticket, anna, agent):
    now = timezone.now()
    _inbound(ticket, anna, body_text="second", occurred_at=now)
    _inbound(ticket, anna, body_text="first", occurred_at=now - dt.timedelta(hours=1))
    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.NOTE,
        author_user=agent.user,
        body_text="third",
    )

    assert [i.body_text for i in ticket_timeline(ticket=ticket)] == ["first", "second", "third"]
