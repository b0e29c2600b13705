"""A breach escalates through routing: unstarted work goes back to the queue the policy names."""

from __future__ import annotations

import datetime as dt

from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue
from care.routing.services import route_item
from care.sla.models import SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_event_apply_actions, sla_fire
from care.tickets.models import Direction, Ticket
from care.tickets.services import interaction_add
from tests.factories.tickets import make_ticket


def _breach(ticket) -> SlaEvent:
    clock = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    sla_fire(clock_ids=[clock.pk], now=clock.due_at + dt.timedelta(seconds=1))
    return SlaEvent.objects.get(ticket=ticket, kind=SlaEvent.Kind.BREACH)


def _policy(tenant, queue):
    return SlaPolicy.objects.create(
        tenant=tenant,
        name="Escalating",
        first_response_minutes=10,
        business_hours=False,
        escalate_to_queue=queue,
    )


def test_unstarted_assigned_work_is_taken_back_into_the_escalation_queue(tenant_a, online_agent):
    pool = RoutingQueue.objects.create(tenant=tenant_a, name="Overflow pool", position=9, languages=["fr"])
    _policy(tenant_a, pool)
    holder = online_agent(tenants=[tenant_a])
    ticket = make_ticket(tenant=tenant_a)
    assert route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk).agent_id == holder.pk

    actions = sla_event_apply_actions(event_id=_breach(ticket).pk)

    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.queue_id == pool.pk
    decision = RoutingDecision.objects.filter(ticket=ticket).latest("id")
    assert (decision.kind, decision.queue_name, decision.reason) == (
        "overflowed",
        "Overflow pool",
        "SLA breached",
    )
    assert any("Overflow pool" in action for action in actions)


def test_started_work_stays_with_its_agent(tenant_a, online_agent):
    pool = RoutingQueue.objects.create(tenant=tenant_a, name="Overflow pool", position=9)
    _policy(tenant_a, pool)
    holder = online_agent(tenants=[tenant_a])
    ticket = make_ticket(tenant=tenant_a)
    route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk)
    interaction_add(
        ticket=ticket, channel="email", direction=Direction.NOTE, body_text="Looking", author_user=holder.user
    )
    actions = sla_event_apply_actions(event_id=_breach(ticket).pk)
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == holder.pk
    assert not any("Overflow pool" in action for action in actions)


def test_escalating_into_the_queue_the_work_already_waits_in_keeps_its_place(tenant_a):
    pool = RoutingQueue.objects.create(tenant=tenant_a, name="Overflow pool", position=0)
    _policy(tenant_a, pool)
    ticket = make_ticket(tenant=tenant_a)  # nobody online: it waits in the pool already
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.queue_id == pool.pk
    actions = sla_event_apply_actions(event_id=_breach(ticket).pk)
    assert QueuedItem.objects.get(ticket=ticket).queue_entered_at == item.queue_entered_at
    assert not any("Overflow pool" in action for action in actions)
