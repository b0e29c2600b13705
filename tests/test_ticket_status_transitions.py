"""Moving a ticket through its statuses: the transition table, timestamps and the audit trail.

The expected table is written out here on purpose instead of being read from ``TRANSITIONS``: a test
that derives its expectations from the code under test cannot catch a wrong edit of that code.
"""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from care.core.errors import BusinessRuleViolation
from care.tickets.models import TicketEvent
from care.tickets.services import ticket_change_status
from care.tickets.status import Status, can_transition, check_transition
from tests.factories.tickets import make_ticket

NEW, OPEN, PENDING, ON_HOLD, SOLVED, CLOSED = (
    "new",
    "open",
    "pending",
    "on_hold",
    "solved",
    "closed",
)

ALLOWED = {
    (NEW, OPEN),
    (NEW, PENDING),
    (NEW, ON_HOLD),
    (NEW, SOLVED),
    (NEW, CLOSED),
    (OPEN, PENDING),
    (OPEN, ON_HOLD),
    (OPEN, SOLVED),
    (OPEN, CLOSED),
    (PENDING, OPEN),
    (PENDING, ON_HOLD),
    (PENDING, SOLVED),
    (PENDING, CLOSED),
    (ON_HOLD, OPEN),
    (ON_HOLD, PENDING),
    (ON_HOLD, SOLVED),
    (ON_HOLD, CLOSED),
    (SOLVED, OPEN),
    (SOLVED, CLOSED),
}
ALL_PAIRS = list(itertools.product([NEW, OPEN, PENDING, ON_HOLD, SOLVED, CLOSED], repeat=2))
REFUSED = sorted(set(ALL_PAIRS) - ALLOWED)
# A "change" to the status a ticket already has is a no-op in the service, not an error.
REFUSED_CHANGES = [(current, target) for current, target in REFUSED if current != target]


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def _ticket_in(status, *, tenant, actor=None):
    """A ticket brought into ``status`` the way Care does it: created new, then moved by the service."""
    ticket = make_ticket(tenant=tenant)
    if status != NEW:
        ticket = ticket_change_status(ticket=ticket, status=status, actor=actor)
    return ticket


def test_the_table_covers_every_status():
    assert {s for pair in ALL_PAIRS for s in pair} == set(Status.values)
    assert len(ALLOWED) + len(REFUSED) == 36


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED), ids=_pair_id)
def test_allowed_transition_is_allowed_by_the_rules(current, target):
    assert can_transition(current, target) is True
    check_transition(current, target)  # does not raise


@pytest.mark.parametrize(("current", "target"), REFUSED, ids=_pair_id)
def test_refused_transition_is_refused_by_the_rules(current, target):
    assert can_transition(current, target) is False
    with pytest.raises(BusinessRuleViolation) as caught:
        check_transition(current, target)
    message = caught.value.messages[0]
    assert str(Status(current).label) in message
    assert str(Status(target).label) in message


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED), ids=_pair_id)
def test_agent_moves_ticket_along_an_allowed_transition(tenant_a, agent, current, target):
    ticket = _ticket_in(current, tenant=tenant_a)
    events_before = TicketEvent.objects.filter(ticket=ticket).count()

    changed = ticket_change_status(ticket=ticket, status=target, actor=agent.user)

    changed.refresh_from_db()
    assert changed.status == target
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert TicketEvent.objects.filter(ticket=ticket).count() == events_before + 1
    assert event.kind == TicketEvent.Kind.STATUS
    assert event.changes == {"status": [current, target]}
    assert event.actor == agent.user
    assert event.tenant_id == tenant_a.pk


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), REFUSED_CHANGES, ids=_pair_id)
def test_agent_cannot_move_ticket_along_a_refused_transition(tenant_a, agent, current, target):
    ticket = _ticket_in(current, tenant=tenant_a)
    events_before = TicketEvent.objects.filter(ticket=ticket).count()

    with pytest.raises(BusinessRuleViolation) as caught:
        ticket_change_status(ticket=ticket, status=target, actor=agent.user)

    message = caught.value.messages[0]
    assert f"from {Status(current).label} to {Status(target).label}" in message
    ticket.refresh_from_db()
    assert ticket.status == current
    assert TicketEvent.objects.filter(ticket=ticket).count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize("status", [NEW, OPEN, PENDING, ON_HOLD, SOLVED, CLOSED])
def test_setting_the_current_status_again_changes_nothing(tenant_a, agent, status):
    ticket = _ticket_in(status, tenant=tenant_a)
    changed_at = ticket.status_changed_at
    events_before = TicketEvent.objects.filter(ticket=ticket).count()

    same = ticket_change_status(ticket=ticket, status=status, actor=agent.user)

    assert same.status == status
    assert same.status_changed_at == changed_at
    assert TicketEvent.objects.filter(ticket=ticket).count() == events_before


@pytest.mark.django_db
def test_unknown_status_is_refused_with_its_name(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    with pytest.raises(BusinessRuleViolation, match="archived is not a ticket status"):
        ticket_change_status(ticket=ticket, status="archived", actor=agent.user)
    ticket.refresh_from_db()
    assert ticket.status == NEW


@pytest.mark.django_db
def test_closed_is_final_and_says_so(tenant_a, agent):
    ticket = _ticket_in(CLOSED, tenant=tenant_a)
    for target in (NEW, OPEN, PENDING, ON_HOLD, SOLVED):
        with pytest.raises(BusinessRuleViolation) as caught:
            ticket_change_status(ticket=ticket, status=target, actor=agent.user)
        assert "the ticket is closed" in caught.value.messages[0]
    ticket.refresh_from_db()
    assert ticket.status == CLOSED


@pytest.mark.django_db
def test_refusal_lists_the_statuses_that_are_allowed(tenant_a, agent):
    ticket = _ticket_in(SOLVED, tenant=tenant_a)
    with pytest.raises(BusinessRuleViolation) as caught:
        ticket_change_status(ticket=ticket, status=PENDING, actor=agent.user)
    assert caught.value.messages == [
        "A ticket cannot go from Solved to Pending (waiting on the customer). Allowed: Closed, Open."
    ]


@pytest.mark.django_db
def test_solving_sets_solved_at_and_status_changed_at(tenant_a, agent):
    ticket = _ticket_in(OPEN, tenant=tenant_a)
    before = timezone.now()

    solved = ticket_change_status(ticket=ticket, status=SOLVED, actor=agent.user)

    solved.refresh_from_db()
    assert solved.solved_at is not None
    assert before <= solved.solved_at <= timezone.now()
    assert solved.status_changed_at == solved.solved_at
    assert solved.closed_at is None


@pytest.mark.django_db
def test_pending_and_on_hold_move_status_changed_at_only(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    created_changed_at = ticket.status_changed_at

    pending = ticket_change_status(ticket=ticket, status=PENDING, actor=agent.user)
    on_hold = ticket_change_status(ticket=pending, status=ON_HOLD, actor=agent.user)

    on_hold.refresh_from_db()
    assert pending.status_changed_at > created_changed_at
    assert on_hold.status_changed_at > pending.status_changed_at
    assert on_hold.solved_at is None
    assert on_hold.closed_at is None


@pytest.mark.django_db
def test_reopening_a_solved_ticket_clears_solved_at(tenant_a, agent):
    solved = _ticket_in(SOLVED, tenant=tenant_a)
    assert solved.solved_at is not None

    reopened = ticket_change_status(ticket=solved, status=OPEN, actor=agent.user)

    reopened.refresh_from_db()
    assert reopened.status == OPEN
    assert reopened.solved_at is None
    assert reopened.status_changed_at > solved.status_changed_at


@pytest.mark.django_db
def test_closing_a_solved_ticket_keeps_when_it_was_solved(tenant_a, agent):
    solved = _ticket_in(SOLVED, tenant=tenant_a)

    closed = ticket_change_status(ticket=solved, status=CLOSED, actor=agent.user)

    closed.refresh_from_db()
    assert closed.solved_at == solved.solved_at
    assert closed.closed_at is not None
    assert closed.closed_at > solved.solved_at
    assert closed.status_changed_at == closed.closed_at


@pytest.mark.django_db
def test_closing_an_unsolved_ticket_counts_as_solved_then(tenant_a, agent):
    ticket = _ticket_in(PENDING, tenant=tenant_a)

    closed = ticket_change_status(ticket=ticket, status=CLOSED, actor=agent.user)

    closed.refresh_from_db()
    assert closed.closed_at is not None
    assert closed.solved_at == closed.closed_at


@pytest.mark.django_db
def test_every_change_is_in_the_audit_trail_in_order(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    ticket = ticket_change_status(ticket=ticket, status=OPEN, actor=agent.user)
    ticket = ticket_change_status(ticket=ticket, status=SOLVED, actor=agent.user)
    ticket = ticket_change_status(ticket=ticket, status=OPEN, actor=None)  # the customer answered
    ticket = ticket_change_status(ticket=ticket, status=CLOSED, actor=supervisor.user)

    trail = [
        (e.kind, e.changes, e.actor)
        for e in TicketEvent.objects.filter(ticket=ticket).order_by("created_at", "id")
    ]
    assert trail == [
        (TicketEvent.Kind.CREATED, {"status": [None, NEW]}, None),
        (TicketEvent.Kind.STATUS, {"status": [NEW, OPEN]}, agent.user),
        (TicketEvent.Kind.STATUS, {"status": [OPEN, SOLVED]}, agent.user),
        (TicketEvent.Kind.STATUS, {"status": [SOLVED, OPEN]}, None),
        (TicketEvent.Kind.STATUS, {"status": [OPEN, CLOSED]}, supervisor.user),
    ]


@pytest.mark.django_db
def test_a_stale_ticket_object_is_checked_against_the_stored_status(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    ticket_change_status(ticket=ticket, status=CLOSED, actor=agent.user)
    assert ticket.status == NEW  # the caller's object is stale

    with pytest.raises(BusinessRuleViolation, match="from Closed to Open"):
        ticket_change_status(ticket=ticket, status=OPEN, actor=agent.user)
