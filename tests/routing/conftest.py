"""Helpers for routing tests: online agents with chosen languages, channels and capacities."""

from __future__ import annotations

import datetime as dt

import pytest

from care.accounts.models import Agent, AgentChannel, Presence, Team
from care.accounts.services import agent_set_presence
from care.routing.models import QueuedItem
from tests.factories.accounts import TeamFactory, make_agent


@pytest.fixture
def online_agent(db):
    """``online_agent(tenants=[...], languages=(("de", 7),), channels=("email",), capacity=None, ...)``"""

    def make(
        *,
        tenants,
        languages=(("de", 7),),
        channels=("email",),
        capacity: int | None = None,
        team: Team | None = None,
        accepts_offers: bool = False,
        email: str | None = None,
        presence: str = Presence.ONLINE,
    ) -> Agent:
        agent = make_agent(tenants=tenants, languages=languages, channels=channels, team=team, email=email)
        if capacity is not None:
            AgentChannel.objects.filter(agent=agent).update(capacity=capacity)
        if accepts_offers:
            Agent.objects.filter(pk=agent.pk).update(accepts_offers=True)
            agent.refresh_from_db()
        if presence != Presence.OFFLINE:
            agent_set_presence(agent=agent, presence=presence)
        return agent

    return make


@pytest.fixture
def in_house_team(tenant_a):
    return TeamFactory(name="ENN in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_a)


@pytest.fixture
def provider_team(db):
    return TeamFactory(name="Provider", kind=Team.Kind.PROVIDER)


def waited(ticket, seconds: float) -> dt.datetime:
    """The moment the ticket's queued item has waited ``seconds`` in its queue."""
    item = QueuedItem.objects.get(ticket=ticket)
    return item.queue_entered_at + dt.timedelta(seconds=seconds)
