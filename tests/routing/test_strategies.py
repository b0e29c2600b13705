"""Strategies order the eligible agents: longest idle, least loaded, round robin, and plug-ins."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from care.accounts.models import Agent
from care.core.languages import Proficiency
from care.routing.eligibility import AgentFacts
from care.routing.models import RoutingQueue, TeamKind
from care.routing.services import route_item
from care.routing.strategies import STRATEGIES, Strategy, register, strategy_for
from care.tickets.models import Ticket
from tests.factories.tickets import make_ticket

T0 = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def facts(agent_id, *, load=0, capacity=8, online_since=T0, routed=None, released=None) -> AgentFacts:
    return AgentFacts(
        agent_id=agent_id,
        name=f"A{agent_id}",
        team_id=1,
        team_name="T",
        team_kind=TeamKind.PROVIDER,
        presence="online",
        on_shift=True,
        accepts_offers=False,
        languages={"de": Proficiency.NATIVE},
        capacity=capacity,
        load=load,
        has_skill=True,
        presence_changed_at=online_since,
        last_routed_at=routed,
        last_released_at=released,
    )


def ids(ordered):
    return [f.agent_id for f in ordered]


def test_longest_idle_prefers_the_free_agent_who_has_waited_longest():
    minutes = dt.timedelta(minutes=1)
    agents = [
        facts(1, released=T0 + 5 * minutes),  # free since 08:05
        facts(2, released=T0 + 1 * minutes),  # free since 08:01: longest idle
        facts(3, load=1, routed=T0),  # busy: after every idle agent
        facts(4, online_since=T0 + 3 * minutes),  # came online at 08:03
    ]
    assert ids(STRATEGIES["longest_idle"].order(agents)) == [2, 4, 1, 3]


def test_least_loaded_compares_the_share_of_capacity_in_use():
    agents = [facts(1, load=4, capacity=8), facts(2, load=1, capacity=2), facts(3, load=1, capacity=8)]
    assert ids(STRATEGIES["least_loaded"].order(agents)) == [3, 1, 2]


def test_least_loaded_breaks_ties_by_who_was_given_work_longest_ago():
    agents = [facts(1, routed=T0), facts(2, routed=T0 - dt.timedelta(hours=1)), facts(3)]
    assert ids(STRATEGIES["least_loaded"].order(agents)) == [3, 2, 1]


def test_round_robin_ignores_load_and_rotates():
    agents = [facts(1, routed=T0), facts(2, load=5, routed=T0 - dt.timedelta(minutes=1)), facts(3, routed=T0)]
    assert ids(STRATEGIES["round_robin"].order(agents)) == [2, 1, 3]


def test_defaults_by_channel():
    assert strategy_for("", "phone").name == "longest_idle"
    assert strategy_for("", "email").name == "least_loaded"
    assert strategy_for("", "social").name == "least_loaded"
    assert strategy_for("round_robin", "phone").name == "round_robin"


def test_round_robin_rotates_real_assignments(tenant_a, online_agent):
    RoutingQueue.objects.create(tenant=tenant_a, name="RR", strategy="round_robin")
    agents = [online_agent(tenants=[tenant_a], capacity=10) for _ in range(3)]
    given = []
    for _ in range(6):
        ticket = make_ticket(tenant=tenant_a)
        given.append(route_item(item_id=ticket.queued_item.pk).agent_id)
    assert given[:3] == given[3:]
    assert sorted(given[:3]) == sorted(a.pk for a in agents)


def test_least_loaded_spreads_real_work(tenant_a, online_agent):
    agents = [online_agent(tenants=[tenant_a], capacity=4) for _ in range(2)]
    for _ in range(4):
        route_item(item_id=make_ticket(tenant=tenant_a).queued_item.pk)
    loads = sorted(Ticket.objects.filter(assignee__in=agents).values_list("assignee", flat=True))
    assert [loads.count(a.pk) for a in agents] == [2, 2]


def test_longest_idle_gives_the_call_to_the_agent_idle_longest(tenant_a, online_agent):
    early, late = (online_agent(tenants=[tenant_a], channels=("phone",)) for _ in range(2))
    Agent.objects.filter(pk=early.pk).update(presence_changed_at=T0, last_released_at=T0)
    Agent.objects.filter(pk=late.pk).update(
        presence_changed_at=T0, last_released_at=T0 + dt.timedelta(minutes=9)
    )
    ticket = make_ticket(tenant=tenant_a, channel="phone")
    assert route_item(item_id=ticket.queued_item.pk).agent_id == early.pk


@pytest.fixture
def best_speaker():
    @register
    class BestSpeaker(Strategy):
        """A plug-in: the agent with the best command of the language asked for (facts hold only the
        languages the decision is about)."""

        name = "best_speaker"
        label = "Best speaker"

        def sort_key(self, agent: AgentFacts):
            return (-max(agent.languages.values(), default=0),)

    yield STRATEGIES["best_speaker"]
    del STRATEGIES["best_speaker"]


def test_strategies_are_pluggable(tenant_a, online_agent, best_speaker):
    online_agent(tenants=[tenant_a], languages=(("de", Proficiency.C1), ("en", 7)))
    native = online_agent(tenants=[tenant_a], languages=(("de", Proficiency.NATIVE),))
    queue = RoutingQueue(tenant=tenant_a, name="Plug-in", strategy="best_speaker")
    queue.full_clean()  # a registered strategy is a valid choice
    queue.save()
    decision = route_item(item_id=make_ticket(tenant=tenant_a, language="de").queued_item.pk)
    assert (decision.strategy, decision.agent_id) == ("best_speaker", native.pk)
    unknown = RoutingQueue(tenant=tenant_a, name="Typo", strategy="fastest")
    with pytest.raises(ValidationError):
        unknown.full_clean()
