"""Merging one ticket into another: the timeline moves, both audit trails and a link say so, the
source closes (its clocks and queue entry go), rows that point at it follow, and a later email or
social message lands on the surviving ticket."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from care.calls.models import Call
from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundMessage, Mailbox, SocialAccount, SocialConversation
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.realtime import log
from care.routing.models import QueuedItem
from care.sla.models import ClockState, SlaClock, SlaPolicy
from care.tickets.models import Attachment, Direction, Interaction, TicketEvent, TicketLink
from care.tickets.services import (
    attachment_store,
    interaction_add,
    merge_followers,
    ticket_change_status,
    ticket_merge,
)
from care.tickets.status import Status
from tests.email_factory import raw_email
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(tenant_a, media_root):
    """Two tickets of one customer of A: the source with a mail and an attachment, and the target."""
    customer = CustomerFactory(tenant=tenant_a)
    source = make_ticket(tenant=tenant_a, customer=customer, subject="Rechnung doppelt")
    target = make_ticket(tenant=tenant_a, customer=customer, subject="Rechnung falsch")
    mail, _ = interaction_add(
        ticket=source, channel=Channel.EMAIL, direction=Direction.INBOUND, body_text="Zweimal abgebucht"
    )
    attachment_store(
        interaction=mail, filename="rechnung.pdf", content=b"%PDF-1", content_type="application/pdf"
    )
    interaction_add(ticket=target, channel=Channel.EMAIL, direction=Direction.INBOUND, body_text="Falsch")
    return source, target, mail


def test_merge_moves_the_timeline_records_it_and_closes_the_source(pair, agent):
    source, target, mail = pair

    result = ticket_merge(source=source, target=target, actor=agent.user)

    assert result.pk == target.pk
    assert list(Interaction.objects.filter(ticket=source)) == []
    assert Interaction.objects.filter(ticket=target).count() == 2
    assert Attachment.objects.get(interaction=mail).interaction.ticket_id == target.pk
    link = TicketLink.objects.get(source=source, kind=TicketLink.Kind.MERGED)
    assert link.target_id == target.pk
    source.refresh_from_db()
    assert source.status == Status.CLOSED
    merged = {e.ticket_id: e for e in TicketEvent.objects.filter(kind=TicketEvent.Kind.MERGED)}
    assert set(merged) == {source.pk, target.pk}
    assert merged[source.pk].changes["merged_into"][1]["reference"] == target.reference
    assert merged[target.pk].changes["merged_from"][1]["reference"] == source.reference
    assert merged[target.pk].changes["interactions"] == [0, 1]
    assert merged[source.pk].actor_id == agent.user.pk
    # The closing is an ordinary, audited status change (routing and SLA follow it).
    assert TicketEvent.objects.filter(ticket=source, kind=TicketEvent.Kind.STATUS).last().changes == {
        "status": ["new", "closed"]
    }
    assert not QueuedItem.objects.filter(ticket=source).exists()


def test_merge_stops_the_source_clocks(tenant_a, pair):
    SlaPolicy.objects.create(tenant=tenant_a, name="Standard", first_response_minutes=60)
    source, target, _mail = pair
    source = make_ticket(tenant=tenant_a, customer=source.customer, subject="Neu mit SLA")
    assert SlaClock.objects.filter(ticket=source, state=ClockState.RUNNING).exists()

    ticket_merge(source=source, target=target, actor=None)

    assert not SlaClock.objects.filter(ticket=source, state=ClockState.RUNNING).exists()


def test_repeating_a_merge_changes_nothing(pair, agent):
    source, target, _mail = pair
    ticket_merge(source=source, target=target, actor=agent.user)
    events = TicketEvent.objects.count()

    again = ticket_merge(source=source, target=target, actor=agent.user)

    assert again.pk == target.pk
    assert TicketEvent.objects.count() == events
    assert TicketLink.objects.filter(kind=TicketLink.Kind.MERGED).count() == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("self", "cannot be merged into itself"),
        ("other_tenant", "different clients"),
        ("closed_target", "cannot be merged into a closed one"),
        ("closed_source", "A closed ticket cannot be merged"),
        ("merged_target", "was merged into another ticket"),
        ("already_elsewhere", "was already merged into"),
    ],
)
def test_merge_refusals(pair, tenant_a, tenant_b, case, message):
    source, target, _mail = pair
    if case == "self":
        target = source
    elif case == "other_tenant":
        target = make_ticket(tenant=tenant_b)
    elif case == "closed_target":
        ticket_change_status(ticket=target, status=Status.CLOSED, actor=None)
    elif case == "closed_source":
        ticket_change_status(ticket=source, status=Status.CLOSED, actor=None)
    elif case == "merged_target":
        third = make_ticket(tenant=tenant_a)
        ticket_merge(source=target, target=third, actor=None)
        target.refresh_from_db()
        # target is closed by its merge; the merge check speaks first.
    elif case == "already_elsewhere":
        third = make_ticket(tenant=tenant_a)
        ticket_merge(source=source, target=third, actor=None)

    with pytest.raises(BusinessRuleViolation, match=message):
        ticket_merge(source=source, target=target, actor=None)


def test_rows_pointing_at_the_source_follow_it(pair, tenant_a):
    source, target, _mail = pair
    call = Call.objects.create(
        tenant=tenant_a, external_id="call-1", ticket=source, offered_at=timezone.now(), direction="inbound"
    )

    ticket_merge(source=source, target=target, actor=None)

    call.refresh_from_db()
    assert call.ticket_id == target.pk
    followers = {(model._meta.label, name) for model, name in merge_followers()}
    # Every nullable pointer from another app is a decision: these follow the merge. A new foreign
    # key to Ticket must be added here knowingly (or made CASCADE if it is history).
    assert followers == {
        ("calls.Call", "ticket"),
        ("connectors.InboundMessage", "ticket"),
        ("connectors.SocialConversation", "ticket"),
        ("mentions.Mention", "ticket"),
    }


@pytest.mark.django_db(transaction=True)
def test_two_opposite_merges_at_once_one_wins_without_deadlock(pair):
    source, target, _mail = pair

    def merge(index):
        a, b = (source, target) if index % 2 == 0 else (target, source)
        try:
            ticket_merge(source=a, target=b, actor=None)
        except BusinessRuleViolation as exc:
            return str(exc)
        return "merged"

    results = run_in_threads(merge, 2)

    assert sorted(r == "merged" for r in results) == [False, True]
    assert TicketLink.objects.filter(kind=TicketLink.Kind.MERGED).count() == 1


def test_merge_locks_both_rows_in_id_order(pair):
    source, target, _mail = pair
    assert source.pk < target.pk
    with CaptureQueriesContext(connection) as queries:
        ticket_merge(source=target, target=source, actor=None)  # the higher id is the source
    lock = next(q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"])
    assert 'ORDER BY "tickets_ticket"."id" ASC' in lock


@pytest.fixture
def mailbox(tenant_a, media_root):
    return Mailbox.objects.create(
        tenant=tenant_a,
        name="Energie Nord support",
        address="support@energie-nord.test",
        default_language="de",
    )


def _ingest(mailbox, raw) -> InboundMessage:
    message, _created = email_receive(mailbox=mailbox, raw=raw, source="cli", process=False)
    return process_stored(message.pk)


def test_later_email_threads_to_the_target(mailbox):
    first = _ingest(mailbox, raw_email(message_id="a1@example.com", subject="Erste Sache"))
    second = _ingest(mailbox, raw_email(message_id="b1@example.com", subject="Zweite Sache"))
    source, target = first.ticket, second.ticket
    ticket_merge(source=source, target=target, actor=None)

    by_header = _ingest(
        mailbox, raw_email(message_id="a2@example.com", subject="Re: x", in_reply_to="a1@example.com")
    )
    by_subject = _ingest(
        mailbox, raw_email(message_id="a3@example.com", subject=f"Noch was [{source.reference}]")
    )

    assert by_header.ticket_id == target.pk
    assert by_subject.ticket_id == target.pk
    assert by_subject.summary["threaded_by"] == "subject"
    first.refresh_from_db()
    assert first.ticket_id == target.pk  # the record of the first mail follows its interaction
    assert TicketLink.objects.filter(kind=TicketLink.Kind.FOLLOW_UP).count() == 0


def test_social_conversation_follows_to_the_target(pair, tenant_a):
    """The customer's next social message goes to the conversation's current ticket: the target."""
    source, target, _mail = pair
    account = SocialAccount.objects.create(
        tenant=tenant_a, platform="other", name="Chat", account_id="chat-1"
    )
    identity = IdentityFactory(customer=source.customer, value="chat@example.com")
    conversation = SocialConversation.objects.create(
        tenant=tenant_a, account=account, identity=identity, sender_id="chat-user-1", ticket=source
    )

    ticket_merge(source=source, target=target, actor=None)

    conversation.refresh_from_db()
    assert conversation.ticket_id == target.pk


def test_merge_publishes_for_both_tickets(pair, django_capture_on_commit_callbacks):
    source, target, _mail = pair

    with django_capture_on_commit_callbacks(execute=True):
        ticket_merge(source=source, target=target, actor=None)

    for ticket, field in ((source, "merged_into"), (target, "merged_from")):
        events = [dict(e) for e in log.since(f"ticket:{ticket.pk}", 0).events]
        merged = [e for e in events if e["type"] == "ticket.updated" and e["data"]["kind"] == "merged"]
        assert len(merged) == 1, ticket
        assert field in merged[0]["data"]["changes"]
    closed = [dict(e) for e in log.since(f"ticket:{source.pk}", 0).events][-1]
    assert closed["data"]["ticket"]["status"] == "closed"
