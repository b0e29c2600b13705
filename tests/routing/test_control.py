"""Supervisors assign by hand, agents who leave return unstarted work, freed agents pull the most
urgent item, and ticket changes keep the queue in step."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.accounts.models import Presence, Role
from care.accounts.services import agent_set_presence
from care.core.errors import BusinessRuleViolation
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.services import (
    route_for_agent,
    route_item,
    routing_assign_by_hand,
    routing_sweep,
)
from care.tickets.models import Direction, Ticket, TicketEvent
from care.tickets.services import interaction_add, ticket_assign, ticket_change_status, ticket_update
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket


def _queued(ticket) -> bool:
    return QueuedItem.objects.filter(ticket=ticket).exists()


# --- By hand -------------------------------------------------------------------------------------


def test_a_supervisor_assigns_and_reassigns_by_hand_with_an_audit_trail(tenant_a, supervisor, online_agent):
    first = online_agent(tenants=[tenant_a])
    second = make_agent(tenants=[tenant_a])  # offline: allowed by hand, but noted
    ticket = make_ticket(tenant=tenant_a)
    routing_assign_by_hand(ticket=ticket, agent=first, actor=supervisor.user)
    routing_assign_by_hand(ticket=ticket, agent=second, actor=supervisor.user, note="knows the customer")
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == second.pk
    assert not _queued(ticket)
    events = TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.ASSIGNED).order_by("id")
    assert [(e.changes["assignee"], e.actor_id) for e in events] == [
        ([None, first.pk], supervisor.user_id),
        ([first.pk, second.pk], supervisor.user_id),
    ]
    manual = RoutingDecision.objects.filter(ticket=ticket, kind=RoutingDecision.Kind.MANUAL).order_by("id")
    assert [d.agent_id for d in manual] == [first.pk, second.pk]
    assert manual[1].reason == "knows the customer"
    assert manual[1].candidates[0]["rejected"] == ["is offline"]


def test_returning_a_ticket_to_the_queue_by_hand(tenant_a, supervisor, online_agent):
    worker = online_agent(tenants=[tenant_a])
    ticket = make_ticket(tenant=tenant_a)
    route_item(item_id=ticket.queued_item.pk)
    routing_assign_by_hand(ticket=ticket, agent=None, actor=supervisor.user)
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    assert _queued(ticket)
    returned = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.RETURNED)
    assert (returned.agent_id, returned.actor_id) == (worker.pk, supervisor.user_id)


def test_only_supervisors_of_the_tenant_assign_by_hand(tenant_a, tenant_b, agent, outsider, online_agent):
    ticket = make_ticket(tenant=tenant_a)
    with pytest.raises(BusinessRuleViolation, match="Only supervisors"):
        routing_assign_by_hand(ticket=ticket, agent=agent, actor=agent.user)
    other_supervisor = make_agent(tenants=[tenant_b], role=Role.SUPERVISOR)
    with pytest.raises(BusinessRuleViolation, match="not authorised for this tenant"):
        routing_assign_by_hand(ticket=ticket, agent=agent, actor=other_supervisor.user)


def test_work_cannot_be_given_by_hand_to_an_agent_not_trained_for_the_tenant(tenant_a, supervisor, outsider):
    ticket = make_ticket(tenant=tenant_a)
    with pytest.raises(BusinessRuleViolation, match="not authorised for Energie Nord"):
        routing_assign_by_hand(ticket=ticket, agent=outsider, actor=supervisor.user)
    assert _queued(ticket)


# --- Going offline ---------------------------------------------------------------------------------


def test_an_agent_going_offline_returns_unstarted_work_and_keeps_started_work(tenant_a, online_agent):
    leaver = online_agent(tenants=[tenant_a])
    untouched, answered = make_ticket(tenant=tenant_a), make_ticket(tenant=tenant_a)
    waiting_since = timezone.now() - dt.timedelta(minutes=5)
    QueuedItem.objects.filter(ticket=untouched).update(enqueued_at=waiting_since)
    for ticket in (untouched, answered):
        assert route_item(item_id=ticket.queued_item.pk).agent_id == leaver.pk
    interaction_add(
        ticket=answered,
        channel="email",
        direction=Direction.OUTBOUND,
        body_text="On it.",
        author_user=leaver.user,
    )

    agent_set_presence(agent=leaver, presence=Presence.OFFLINE)

    assert Ticket.objects.get(pk=untouched.pk).assignee_id is None
    item = QueuedItem.objects.get(ticket=untouched)
    assert item.enqueued_at == waiting_since  # it keeps its place in the queue
    assert Ticket.objects.get(pk=answered.pk).assignee_id == leaver.pk
    returned = RoutingDecision.objects.get(ticket=untouched, kind=RoutingDecision.Kind.RETURNED)
    assert returned.reason == "the agent went offline"


def test_going_offline_withdraws_pending_offers(tenant_a, online_agent):
    chooser = online_agent(tenants=[tenant_a], accepts_offers=True)
    ticket = make_ticket(tenant=tenant_a)
    assert route_item(item_id=ticket.queued_item.pk).kind == RoutingDecision.Kind.OFFERED
    agent_set_presence(agent=chooser, presence=Presence.OFFLINE)
    item = QueuedItem.objects.get(ticket=ticket)
    assert (item.state, item.offered_to_id) == (QueuedItem.State.WAITING, None)


# --- Pull ----------------------------------------------------------------------------------------


def test_a_freed_agent_gets_the_most_urgent_item_of_all_their_tenants(tenant_a, tenant_b, online_agent):
    night = online_agent(tenants=[tenant_a, tenant_b], languages=(("de", 7), ("es", 7)), capacity=2)
    agent_set_presence(agent=night, presence=Presence.AWAY)
    now = timezone.now()
    relaxed = make_ticket(tenant=tenant_a, language="de")
    due_soon = make_ticket(tenant=tenant_b, language="es", sla_due_at=now + dt.timedelta(minutes=10))
    urgent_later = make_ticket(tenant=tenant_a, language="de", sla_due_at=now + dt.timedelta(minutes=20))
    make_ticket(tenant=tenant_a, language="fr", sla_due_at=now)  # most urgent, but not in a language spoken

    agent_set_presence(agent=night, presence=Presence.ONLINE)
    first = route_for_agent(agent_id=night.pk)
    second = route_for_agent(agent_id=night.pk)
    assert route_for_agent(agent_id=night.pk) is None  # capacity 2 reached
    assert [first.ticket_id, second.ticket_id] == [due_soon.pk, urgent_later.pk]
    assert {first.tenant_id, second.tenant_id} == {tenant_a.pk, tenant_b.pk}
    assert first.strategy == "agent_freed_up"
    assert _queued(relaxed)


def test_an_agent_who_is_not_online_pulls_nothing(tenant_a, online_agent):
    away = online_agent(tenants=[tenant_a], presence=Presence.AWAY)
    make_ticket(tenant=tenant_a)
    assert route_for_agent(agent_id=away.pk) is None


# --- The queue follows the tickets ------------------------------------------------------------------


def test_solved_work_leaves_the_queue_and_reopened_work_returns(tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    assert _queued(ticket)
    ticket_change_status(ticket=ticket, status="solved", actor=None)
    assert not _queued(ticket)
    ticket_change_status(ticket=ticket, status="open", actor=None)
    assert _queued(ticket)
    ticket_change_status(ticket=ticket, status="pending", actor=None)
    assert not _queued(ticket)


def test_assigning_outside_routing_takes_the_item_out_and_unassigning_puts_it_back(tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a)
    ticket_assign(ticket=ticket, agent=agent, actor=None)
    assert not _queued(ticket)
    ticket_assign(ticket=ticket, agent=None, actor=None)
    assert _queued(ticket)


def test_priority_and_language_changes_reach_the_queue(tenant_a):
    ticket = make_ticket(tenant=tenant_a, language="de")
    ticket_update(ticket=ticket, actor=None, priority=4, language="en")
    item = QueuedItem.objects.get(ticket=ticket)
    assert (item.priority, item.language) == (4, "en")


# --- Safety net -----------------------------------------------------------------------------------


def test_the_sweep_requeues_lost_work_and_expires_forgotten_offers(tenant_a, online_agent):
    chooser = online_agent(tenants=[tenant_a], accepts_offers=True)
    offered = make_ticket(tenant=tenant_a)
    route_item(item_id=offered.queued_item.pk)
    lost = make_ticket(tenant=tenant_a)
    QueuedItem.objects.filter(ticket=lost).delete()  # as if the enqueueing transaction's hook was lost
    later = timezone.now() + dt.timedelta(minutes=5)

    counts = routing_sweep(now=later)

    assert counts["expired_offers"] == 1
    assert counts["enqueued"] == 1
    assert _queued(lost)
    assert QueuedItem.objects.get(ticket=offered).state == QueuedItem.State.WAITING
    assert chooser.pk in QueuedItem.objects.get(ticket=offered).declined_by


def test_assignments_made_outside_routing_are_logged_as_by_hand(tenant_a, agent, supervisor):
    ticket = make_ticket(tenant=tenant_a)
    ticket_assign(ticket=ticket, agent=agent, actor=supervisor.user)  # as the admin's assignee field does
    ticket_assign(ticket=ticket, agent=None, actor=supervisor.user)
    logged = list(
        RoutingDecision.objects.filter(ticket=ticket).order_by("id").values_list("kind", "agent", "actor")
    )
    assert logged == [
        (RoutingDecision.Kind.MANUAL, agent.pk, supervisor.user_id),
        (RoutingDecision.Kind.RETURNED, agent.pk, supervisor.user_id),
    ]


def test_a_freed_agent_finds_work_behind_many_items_in_languages_they_do_not_speak(tenant_a, online_agent):
    from care.routing.services import PULL_WINDOW

    agent = online_agent(tenants=[tenant_a], languages=(("de", 7),), presence=Presence.AWAY)
    soon = timezone.now() + dt.timedelta(minutes=5)
    for _ in range(PULL_WINDOW + 5):
        make_ticket(tenant=tenant_a, language="fr", sla_due_at=soon)
    german = make_ticket(tenant=tenant_a, language="de", sla_due_at=soon + dt.timedelta(hours=1))
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    assert route_for_agent(agent_id=agent.pk).ticket_id == german.pk
