"""Assigning tickets to agents and editing a ticket's plain fields, with their audit trail."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from care.accounts.models import Team
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Priority, TicketEvent
from care.tickets.services import ticket_assign, ticket_change_status, ticket_update
from care.tickets.status import Status
from tests.factories.accounts import TeamFactory, make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def _events(ticket, kind=None):
    events = TicketEvent.objects.filter(ticket=ticket).order_by("created_at", "id")
    return list(events.filter(kind=kind) if kind else events)


# --- ticket_assign -------------------------------------------------------------------------------


def test_assigning_a_new_ticket_opens_it_and_is_audited(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    assert ticket.status == Status.NEW

    assigned = ticket_assign(ticket=ticket, agent=agent, actor=supervisor.user)

    assigned.refresh_from_db()
    assert assigned.assignee == agent
    assert assigned.status == Status.OPEN
    assert assigned.status_changed_at > ticket.status_changed_at
    [assignment] = _events(ticket, TicketEvent.Kind.ASSIGNED)
    assert assignment.changes == {"assignee": [None, agent.pk]}
    assert assignment.actor == supervisor.user
    # The implicit opening is part of the status history like any other status change.
    [opening] = _events(ticket, TicketEvent.Kind.STATUS)
    assert opening.changes == {"status": [Status.NEW, Status.OPEN]}
    assert opening.actor == supervisor.user


def test_assigning_a_pending_ticket_keeps_its_status(tenant_a, agent, supervisor):
    ticket = ticket_change_status(ticket=make_ticket(tenant=tenant_a), status=Status.PENDING, actor=None)

    assigned = ticket_assign(ticket=ticket, agent=agent, actor=supervisor.user)

    assert assigned.status == Status.PENDING
    assert assigned.status_changed_at == ticket.status_changed_at
    assert [e.changes for e in _events(ticket, TicketEvent.Kind.ASSIGNED)] == [{"assignee": [None, agent.pk]}]


def test_agent_not_authorised_for_the_tenant_is_refused(tenant_a, outsider, supervisor):
    ticket = make_ticket(tenant=tenant_a)

    with pytest.raises(BusinessRuleViolation) as caught:
        ticket_assign(ticket=ticket, agent=outsider, actor=supervisor.user)

    assert caught.value.messages == [f"{outsider} is not authorised for Energie Nord."]
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert ticket.status == Status.NEW
    assert _events(ticket, TicketEvent.Kind.ASSIGNED) == []


def test_agent_authorised_for_several_tenants_may_take_either(tenant_a, tenant_b, supervisor):
    both = make_agent(tenants=[tenant_a, tenant_b])
    ticket_a, ticket_b = make_ticket(tenant=tenant_a), make_ticket(tenant=tenant_b)

    assert ticket_assign(ticket=ticket_a, agent=both, actor=supervisor.user).assignee == both
    assert ticket_assign(ticket=ticket_b, agent=both, actor=None).assignee == both


def test_reassigning_and_unassigning_are_audited(tenant_a, agent, supervisor):
    colleague = make_agent(tenants=[tenant_a])
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a), agent=agent, actor=supervisor.user)

    ticket = ticket_assign(ticket=ticket, agent=colleague, actor=supervisor.user)
    assert ticket.assignee == colleague
    ticket = ticket_assign(ticket=ticket, agent=None, actor=agent.user)

    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert ticket.status == Status.OPEN  # unassigning does not reopen or re-queue as new
    assert [(e.changes, e.actor) for e in _events(ticket, TicketEvent.Kind.ASSIGNED)] == [
        ({"assignee": [None, agent.pk]}, supervisor.user),
        ({"assignee": [agent.pk, colleague.pk]}, supervisor.user),
        ({"assignee": [colleague.pk, None]}, agent.user),
    ]


def test_assigning_the_same_agent_again_changes_nothing(tenant_a, agent, supervisor):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a), agent=agent, actor=supervisor.user)
    events_before = len(_events(ticket))

    again = ticket_assign(ticket=ticket, agent=agent, actor=supervisor.user)

    assert again.assignee == agent
    assert len(_events(ticket)) == events_before


def test_closed_ticket_cannot_be_assigned_or_unassigned(tenant_a, agent, supervisor):
    ticket = ticket_assign(ticket=make_ticket(tenant=tenant_a), agent=agent, actor=supervisor.user)
    ticket = ticket_change_status(ticket=ticket, status=Status.CLOSED, actor=agent.user)
    colleague = make_agent(tenants=[tenant_a])

    for new_assignee in (colleague, None):
        with pytest.raises(BusinessRuleViolation, match="A closed ticket cannot be assigned"):
            ticket_assign(ticket=ticket, agent=new_assignee, actor=supervisor.user)

    ticket.refresh_from_db()
    assert ticket.assignee == agent


# --- ticket_update -------------------------------------------------------------------------------


def test_update_records_only_the_fields_that_changed(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")

    updated = ticket_update(
        ticket=ticket,
        actor=agent.user,
        subject="Meter reading wrong",  # unchanged
        priority=Priority.HIGH,
        language="en",
    )

    updated.refresh_from_db()
    assert updated.priority == Priority.HIGH
    assert updated.language == "en"
    [event] = _events(ticket, TicketEvent.Kind.UPDATED)
    assert event.changes == {"priority": [Priority.NORMAL, Priority.HIGH], "language": ["de", "en"]}
    assert event.actor == agent.user


def test_update_without_a_real_change_writes_no_event(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a, tags=["billing"])

    ticket_update(ticket=ticket, actor=agent.user, subject=ticket.subject, tags=["Billing "])

    assert _events(ticket, TicketEvent.Kind.UPDATED) == []


@pytest.mark.parametrize("field", ["status", "assignee", "customer", "tenant", "number", "colour"])
def test_update_rejects_fields_it_does_not_own(tenant_a, agent, field):
    ticket = make_ticket(tenant=tenant_a)

    with pytest.raises(ValueError, match=f"cannot change \\['{field}'\\]"):
        ticket_update(ticket=ticket, actor=agent.user, **{field: None})

    assert _events(ticket, TicketEvent.Kind.UPDATED) == []


def test_update_normalises_tags(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)

    updated = ticket_update(
        ticket=ticket, actor=agent.user, tags=[" Billing", "billing", "URGENT ", "", "  ", "Meter"]
    )

    updated.refresh_from_db()
    assert updated.tags == ["billing", "meter", "urgent"]
    [event] = _events(ticket, TicketEvent.Kind.UPDATED)
    assert event.changes == {"tags": [[], ["billing", "meter", "urgent"]]}


def test_creation_normalises_tags_too(tenant_a):
    ticket = make_ticket(tenant=tenant_a, tags=["Roaming", " roaming ", "SIM"])
    ticket.refresh_from_db()
    assert ticket.tags == ["roaming", "sim"]


def test_update_accepts_own_in_house_team_and_provider_team(tenant_a, agent):
    own = Team.objects.create(name="Energie Nord back office", kind=Team.Kind.IN_HOUSE, tenant=tenant_a)
    provider = TeamFactory(name="Provider first level", kind=Team.Kind.PROVIDER)
    ticket = make_ticket(tenant=tenant_a)

    ticket = ticket_update(ticket=ticket, actor=agent.user, team=own)
    ticket = ticket_update(ticket=ticket, actor=agent.user, team=provider)
    ticket = ticket_update(ticket=ticket, actor=agent.user, team=None)

    ticket.refresh_from_db()
    assert ticket.team is None
    assert [e.changes for e in _events(ticket, TicketEvent.Kind.UPDATED)] == [
        {"team": [None, own.pk]},
        {"team": [own.pk, provider.pk]},
        {"team": [provider.pk, None]},
    ]


def test_update_refuses_an_in_house_team_of_another_tenant(tenant_a, tenant_b, agent):
    foreign = Team.objects.create(name="Telco Sur in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b)
    ticket = make_ticket(tenant=tenant_a)

    with pytest.raises(BusinessRuleViolation, match="in-house team belongs to another tenant"):
        ticket_update(ticket=ticket, actor=agent.user, team=foreign, priority=Priority.URGENT)

    ticket.refresh_from_db()
    assert ticket.team is None
    assert ticket.priority == Priority.NORMAL
    assert _events(ticket, TicketEvent.Kind.UPDATED) == []


@pytest.mark.parametrize(
    ("field", "value"), [("language", "xx"), ("priority", 9), ("subject", ""), ("tags", ["x" * 51])]
)
def test_update_refuses_invalid_values_and_keeps_the_ticket(tenant_a, agent, field, value):
    ticket = make_ticket(tenant=tenant_a)

    with pytest.raises(ValidationError) as caught:
        ticket_update(ticket=ticket, actor=agent.user, **{field: value})

    assert field in caught.value.message_dict
    ticket.refresh_from_db()
    assert ticket.language == "de"
    assert _events(ticket, TicketEvent.Kind.UPDATED) == []
