"""The one eligibility rule, and the facts it is fed from the database."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.utils import timezone

from care.accounts.models import Presence, Shift, Skill, TenantAuthorisation
from care.core.languages import Proficiency
from care.routing.eligibility import AgentFacts, Requirement, agent_facts, rejections
from care.routing.models import TeamKind
from care.routing.services import route_item
from care.tickets.models import Ticket
from tests.factories.tickets import make_ticket

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

FIT = AgentFacts(
    agent_id=1,
    name="Ana",
    team_id=10,
    team_name="Provider",
    team_kind=TeamKind.PROVIDER,
    presence=Presence.ONLINE,
    on_shift=True,
    accepts_offers=False,
    languages={"es": Proficiency.NATIVE, "en": Proficiency.B2},
    capacity=3,
    load=1,
    has_skill=True,
    presence_changed_at=NOW,
    last_routed_at=None,
    last_released_at=None,
)
NEED = Requirement(channel="email", language="es", min_proficiency=Proficiency.B2)


def test_an_agent_who_fits_has_no_rejections():
    assert rejections(FIT, NEED) == []


@pytest.mark.parametrize(
    ("change", "need_change", "reason"),
    [
        ({"languages": {"en": 7}}, {}, "does not speak es"),
        ({"languages": {"es": Proficiency.B1}}, {}, "speaks es at B1, needs B2"),
        ({"capacity": None}, {}, "does not work email"),
        ({"presence": Presence.AWAY}, {}, "is away"),
        ({"presence": Presence.ON_CALL}, {}, "is on a call"),
        ({"on_shift": False}, {}, "is not on shift"),
        ({"load": 3}, {}, "at capacity (3 of 3)"),
        ({"has_skill": False}, {"skill_name": "Tariffs"}, "lacks the skill Tariffs"),
        ({}, {"team_kind": TeamKind.IN_HOUSE}, "team Provider is not one of the in-house teams"),
        ({}, {"team_id": 99}, "not in the team required by the step"),
        ({}, {"declined_by": frozenset({1})}, "declined this item"),
        ({}, {"language": "en", "min_proficiency": Proficiency.C1}, "speaks en at B2, needs C1"),
    ],
)
def test_each_rule_rejects_with_a_reason(change, need_change, reason):
    facts = dataclasses.replace(FIT, **change)
    need = dataclasses.replace(NEED, **need_change)
    assert reason in rejections(facts, need)


def test_all_reasons_are_given_not_only_the_first():
    facts = dataclasses.replace(FIT, presence=Presence.OFFLINE, languages={}, load=3)
    assert len(rejections(facts, NEED)) == 3


def test_facts_come_from_the_database_in_one_query(
    tenant_a, tenant_b, online_agent, django_assert_num_queries
):
    fits = online_agent(tenants=[tenant_a], languages=(("de", 7), ("en", 4)), channels=("email",), capacity=2)
    online_agent(tenants=[tenant_b], languages=(("de", 7),))  # not authorised for A: not a candidate
    retired = online_agent(tenants=[tenant_a])
    retired.user.is_active = False
    retired.user.save()
    skill = Skill.objects.create(tenant=tenant_a, code="tariffs", name="Tariffs")
    TenantAuthorisation.objects.get(agent=fits, tenant=tenant_a).skills.add(skill)
    make_ticket(tenant=tenant_a, language="de")  # waits, assigned to nobody
    assigned = make_ticket(tenant=tenant_a, language="de")
    Ticket.objects.filter(pk=assigned.pk).update(assignee=fits)
    with django_assert_num_queries(1):
        facts = agent_facts(
            tenant_id=tenant_a.pk, channel="email", languages={"de", "en", "es"}, skill_id=skill.pk, now=NOW
        )
    assert [f.agent_id for f in facts] == [fits.pk]
    (f,) = facts
    assert f.languages == {"de": 7, "en": 4}
    assert (f.capacity, f.load, f.has_skill, f.on_shift) == (2, 1, True, True)


def test_pending_offers_count_as_load(tenant_a, online_agent):
    offered_to = online_agent(tenants=[tenant_a], accepts_offers=True, capacity=1)
    ticket = make_ticket(tenant=tenant_a, language="de")
    assert route_item(item_id=ticket.queued_item.pk).kind == "offered"
    (f,) = agent_facts(
        tenant_id=tenant_a.pk, channel="email", languages={"de"}, skill_id=None, now=timezone.now()
    )
    assert f.load == 1
    second = make_ticket(tenant=tenant_a, language="de")
    decision = route_item(item_id=second.queued_item.pk)
    assert decision.kind == "waiting"
    assert decision.candidates[0]["rejected"] == ["at capacity (1 of 1)"]
    assert offered_to.pk == decision.candidates[0]["agent"]


def test_an_agent_with_a_shift_plan_is_eligible_only_during_a_shift(tenant_a, online_agent):
    planned = online_agent(tenants=[tenant_a])
    Shift.objects.create(
        agent=planned, starts_at=NOW - dt.timedelta(hours=1), ends_at=NOW + dt.timedelta(hours=7)
    )
    unplanned = online_agent(tenants=[tenant_a])
    during = {
        f.agent_id: f.on_shift
        for f in agent_facts(tenant_id=tenant_a.pk, channel="email", languages={"de"}, skill_id=None, now=NOW)
    }
    after = {
        f.agent_id: f.on_shift
        for f in agent_facts(
            tenant_id=tenant_a.pk,
            channel="email",
            languages={"de"},
            skill_id=None,
            now=NOW + dt.timedelta(hours=8),
        )
    }
    assert during == {planned.pk: True, unplanned.pk: True}
    assert after == {planned.pk: False, unplanned.pk: True}


def _queries_of_one_decision(tenant, language: str) -> tuple[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ticket = make_ticket(tenant=tenant, language=language)
    with CaptureQueriesContext(connection) as queries:
        decision = route_item(item_id=ticket.queued_item.pk)
    return decision.kind, len(queries)


@pytest.mark.parametrize(("speaks", "outcome"), [("fr", "waiting"), ("de", "assigned")])
def test_the_decision_query_count_does_not_grow_with_the_number_of_agents(
    tenant_a, online_agent, speaks, outcome
):
    for _ in range(2):
        online_agent(tenants=[tenant_a], languages=((speaks, 7),))
    few = _queries_of_one_decision(tenant_a, "de")
    for _ in range(20):
        online_agent(tenants=[tenant_a], languages=((speaks, 7),))
    many = _queries_of_one_decision(tenant_a, "de")
    assert few[0] == many[0] == outcome
    assert few[1] == many[1], (few, many)
