"""Agents who are offered work accept or decline it; unanswered offers time out back to the queue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from care.accounts.models import Agent, Presence
from care.core.errors import BusinessRuleViolation
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.services import offer_accept, offer_decline, offer_expire, route_item
from care.tickets.models import Ticket, TicketEvent
from tests.factories.tickets import make_ticket


@pytest.fixture
def offered(tenant_a, online_agent):
    """A ticket offered to an agent who accepts offers, with a colleague who assigns directly."""
    chooser = online_agent(tenants=[tenant_a], accepts_offers=True)
    ticket = make_ticket(tenant=tenant_a)
    decision = route_item(item_id=ticket.queued_item.pk)
    assert (decision.kind, decision.agent_id) == (RoutingDecision.Kind.OFFERED, chooser.pk)
    return chooser, ticket, QueuedItem.objects.get(ticket=ticket)


def test_an_offer_leaves_the_ticket_unassigned_until_accepted(offered):
    chooser, ticket, item = offered
    assert item.state == QueuedItem.State.OFFERED
    assert item.offered_to_id == chooser.pk
    assert item.offer_expires_at == pytest.approx(
        timezone.now() + dt.timedelta(seconds=30), abs=dt.timedelta(seconds=5)
    )
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None

    offer_accept(item_id=item.pk, agent=chooser)
    ticket.refresh_from_db()
    assert ticket.assignee_id == chooser.pk
    assert ticket.status == "open"
    assert not QueuedItem.objects.filter(ticket=ticket).exists()
    kinds = list(RoutingDecision.objects.filter(ticket=ticket).values_list("kind", flat=True))
    assert kinds == ["offered", "accepted"]
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEvent.Kind.ASSIGNED)
    assert event.actor_id == chooser.user_id


def test_only_the_agent_offered_to_can_accept(offered, tenant_a, online_agent):
    _chooser, _ticket, item = offered
    colleague = online_agent(tenants=[tenant_a])
    with pytest.raises(BusinessRuleViolation, match="no longer open"):
        offer_accept(item_id=item.pk, agent=colleague)


def test_a_declined_offer_goes_to_someone_else(offered, tenant_a, online_agent):
    chooser, ticket, item = offered
    colleague = online_agent(tenants=[tenant_a])
    offer_decline(item_id=item.pk, agent=chooser, reason="not my topic")
    item.refresh_from_db()
    assert (item.state, item.offered_to_id, item.declined_by) == ("waiting", None, [chooser.pk])
    decision = route_item(item_id=item.pk)
    assert decision.agent_id == colleague.pk
    declined = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.DECLINED)
    assert (declined.agent_id, declined.reason) == (chooser.pk, "not my topic")
    with pytest.raises(BusinessRuleViolation):
        offer_accept(item_id=item.pk, agent=chooser)


def test_an_unanswered_offer_times_out_once_and_the_silent_agent_is_set_away(offered):
    chooser, ticket, item = offered
    assert offer_expire(item_id=item.pk) is False  # not due yet
    later = item.offer_expires_at + dt.timedelta(seconds=1)
    assert offer_expire(item_id=item.pk, now=later) is True
    assert offer_expire(item_id=item.pk, now=later) is False  # idempotent
    item.refresh_from_db()
    assert item.state == QueuedItem.State.WAITING
    assert item.declined_by == [chooser.pk]
    assert Agent.objects.get(pk=chooser.pk).presence == Presence.AWAY
    assert RoutingDecision.objects.filter(ticket=ticket, kind=RoutingDecision.Kind.EXPIRED).count() == 1


def test_accepting_after_the_timeout_is_refused(offered):
    chooser, _ticket, item = offered
    QueuedItem.objects.filter(pk=item.pk).update(offer_expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(BusinessRuleViolation, match="timed out"):
        offer_accept(item_id=item.pk, agent=chooser)


def test_an_offer_for_a_ticket_solved_meanwhile_is_gone(offered):
    from care.tickets.services import ticket_change_status

    chooser, ticket, item = offered
    ticket_change_status(ticket=ticket, status="solved", actor=None)
    assert not QueuedItem.objects.filter(pk=item.pk).exists()
    with pytest.raises(BusinessRuleViolation):
        offer_accept(item_id=item.pk, agent=chooser)


def test_accepting_an_offer_for_work_taken_meanwhile_is_refused_and_the_offer_is_gone(
    offered, tenant_a, agent
):
    chooser, ticket, item = offered
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)  # taken by some other path
    with pytest.raises(BusinessRuleViolation, match="no longer waits"):
        offer_accept(item_id=item.pk, agent=chooser)
    assert not QueuedItem.objects.filter(pk=item.pk).exists()  # and will not time out later
