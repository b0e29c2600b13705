"""Queues, relaxation steps over waiting time, service hours, fallback language and overflow."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from care.accounts.models import Skill, TenantAuthorisation
from care.core.languages import Proficiency
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep, StepHours, TeamKind
from care.routing.services import route_item, routing_enqueue
from care.tenants.models import ServiceHours, Weekday
from care.tickets.models import Ticket
from tests.factories.tickets import make_ticket
from tests.routing.conftest import waited

BERLIN = ZoneInfo("Europe/Berlin")


def _queue(tenant, name="Main", *, steps=(), **fields) -> RoutingQueue:
    queue = RoutingQueue(tenant=tenant, name=name, **fields)
    queue.full_clean()
    queue.save()
    for position, step_fields in enumerate(steps):
        step = RoutingStep(queue=queue, position=position, **step_fields)
        step.full_clean()
        step.save()
    return queue


def _route(ticket, seconds=0.0):
    return route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk, now=waited(ticket, seconds))


def _assignee(ticket):
    return Ticket.objects.get(pk=ticket.pk).assignee_id


@pytest.fixture
def bullseye(tenant_a, in_house_team, provider_team):
    """The issue's example: in-house natives first; after 30 s anyone at B2; after 60 s the provider."""
    return _queue(
        tenant_a,
        steps=[
            {"team_kind": TeamKind.IN_HOUSE, "min_proficiency": Proficiency.NATIVE},
            {"after_seconds": 30, "team_kind": TeamKind.IN_HOUSE},
            {"after_seconds": 60, "team_kind": TeamKind.PROVIDER},
        ],
    )


def test_work_waits_for_the_narrow_ring_then_widens_with_time(
    tenant_a, bullseye, online_agent, in_house_team, provider_team
):
    fluent = online_agent(tenants=[tenant_a], languages=(("de", Proficiency.B2),), team=in_house_team)
    provider = online_agent(tenants=[tenant_a], team=provider_team)
    ticket = make_ticket(tenant=tenant_a, language="de")

    first = _route(ticket, 5)
    assert first.kind == RoutingDecision.Kind.WAITING
    reasons = {c["agent"]: c["rejected"] for c in first.candidates}
    assert reasons[fluent.pk] == ["speaks de at B2, needs Native"]
    assert reasons[provider.pk] == ["team Provider is not one of the in-house teams"]

    second = _route(ticket, 31)
    assert second.kind == RoutingDecision.Kind.ASSIGNED
    assert second.agent_id == fluent.pk == _assignee(ticket)
    assert second.step.startswith("after 30 s")
    assert second.waited_seconds >= 31


def test_the_narrowest_ring_with_someone_free_wins_even_when_wider_rings_are_active(
    tenant_a, bullseye, online_agent, in_house_team, provider_team
):
    online_agent(tenants=[tenant_a], team=provider_team)
    native = online_agent(tenants=[tenant_a], team=in_house_team)
    ticket = make_ticket(tenant=tenant_a, language="de")
    decision = _route(ticket, 90)
    assert decision.agent_id == native.pk
    assert decision.step.startswith("after 0 s")


def test_after_sixty_seconds_the_provider_team_takes_it(tenant_a, bullseye, online_agent, provider_team):
    provider = online_agent(tenants=[tenant_a], team=provider_team)
    ticket = make_ticket(tenant=tenant_a, language="de")
    assert _route(ticket, 59).kind == RoutingDecision.Kind.WAITING
    decision = _route(ticket, 61)
    assert (decision.kind, decision.agent_id) == (RoutingDecision.Kind.ASSIGNED, provider.pk)


def test_the_tenants_required_level_is_the_floor(tenant_a, online_agent):
    tenant_a.required_proficiency = Proficiency.C1
    tenant_a.save()
    online_agent(tenants=[tenant_a], languages=(("de", Proficiency.B2),))
    ticket = make_ticket(tenant=tenant_a, language="de")
    decision = _route(ticket)
    assert decision.kind == RoutingDecision.Kind.WAITING
    assert decision.candidates[0]["rejected"] == ["speaks de at B2, needs C1"]


def test_a_fallback_language_the_tenant_allows(tenant_b, online_agent):
    _queue(tenant_b, steps=[{}, {"after_seconds": 120, "language": "en"}])
    english = online_agent(tenants=[tenant_b], languages=(("en", 7),))
    ticket = make_ticket(tenant=tenant_b, language="es")
    assert _route(ticket, 60).kind == RoutingDecision.Kind.WAITING
    decision = _route(ticket, 121)
    assert decision.agent_id == english.pk
    assert "en" in decision.step


def test_out_of_hours_work_goes_straight_to_the_provider(
    tenant_a, online_agent, in_house_team, provider_team
):
    for day in range(Weekday.MONDAY, Weekday.FRIDAY + 1):
        ServiceHours.objects.create(tenant=tenant_a, weekday=day, opens_at=dt.time(8), closes_at=dt.time(18))
    _queue(
        tenant_a,
        steps=[
            {"hours": StepHours.OPEN, "team_kind": TeamKind.IN_HOUSE},
            {"hours": StepHours.CLOSED, "team_kind": TeamKind.PROVIDER},
        ],
    )
    in_house = online_agent(tenants=[tenant_a], team=in_house_team)
    provider = online_agent(tenants=[tenant_a], team=provider_team)
    day_ticket, night_ticket = make_ticket(tenant=tenant_a), make_ticket(tenant=tenant_a)
    thursday_noon = dt.datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN)
    saturday_night = dt.datetime(2026, 11, 28, 23, 0, tzinfo=BERLIN)
    QueuedItem.objects.update(queue_entered_at=thursday_noon - dt.timedelta(seconds=1))
    assert route_item(item_id=day_ticket.queued_item.pk, now=thursday_noon).agent_id == in_house.pk
    QueuedItem.objects.update(queue_entered_at=saturday_night - dt.timedelta(seconds=1))
    assert route_item(item_id=night_ticket.queued_item.pk, now=saturday_night).agent_id == provider.pk


def test_when_no_step_applies_the_item_waits_and_says_why(tenant_a, online_agent):
    ServiceHours.objects.create(
        tenant=tenant_a, weekday=Weekday.MONDAY, opens_at=dt.time(8), closes_at=dt.time(9)
    )
    _queue(tenant_a, steps=[{"hours": StepHours.OPEN}])
    online_agent(tenants=[tenant_a])
    ticket = make_ticket(tenant=tenant_a)
    sunday = dt.datetime(2026, 11, 29, 12, 0, tzinfo=BERLIN)
    QueuedItem.objects.update(queue_entered_at=sunday)
    decision = route_item(item_id=ticket.queued_item.pk, now=sunday)
    assert decision.kind == RoutingDecision.Kind.WAITING
    assert "no step applies now" in decision.reason
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.next_attempt_at == sunday + dt.timedelta(seconds=60)


def test_a_queue_can_require_a_product_skill(tenant_a, online_agent):
    skill = Skill.objects.create(tenant=tenant_a, code="heat", name="Heat pumps")
    _queue(tenant_a, "Heat pumps", tags=["heat"], required_skill=skill)
    untrained = online_agent(tenants=[tenant_a])
    trained = online_agent(tenants=[tenant_a])
    TenantAuthorisation.objects.get(agent=trained, tenant=tenant_a).skills.add(skill)
    ticket = make_ticket(tenant=tenant_a, tags=["heat"])
    decision = _route(ticket)
    assert decision.queue_name == "Heat pumps"
    assert decision.agent_id == trained.pk
    rejected = {c["agent"]: c["rejected"] for c in decision.candidates}
    assert rejected[untrained.pk] == ["lacks the skill Heat pumps"]


def test_work_goes_to_the_first_queue_that_matches_channel_language_and_tags(tenant_a):
    _queue(tenant_a, "Phone", channels=["phone"], position=1)
    _queue(tenant_a, "English mail", channels=["email"], languages=["en"], position=2)
    _queue(tenant_a, "Billing", tags=["billing"], position=3)
    queued = {
        name: routing_enqueue(ticket=make_ticket(tenant=tenant_a, **fields)).queue
        for name, fields in {
            "phone": {"channel": "phone", "language": "en"},
            "english": {"language": "en"},
            "billing": {"language": "de", "tags": ["billing", "x"]},
            "other": {"language": "de"},
        }.items()
    }
    assert {k: (v.name if v else None) for k, v in queued.items()} == {
        "phone": "Phone",
        "english": "English mail",
        "billing": "Billing",
        "other": None,  # the tenant's default routing
    }


def test_waiting_is_logged_once_per_set_of_active_steps(tenant_a, bullseye):
    ticket = make_ticket(tenant=tenant_a)
    for seconds in (1, 2, 3, 31, 32, 61):
        _route(ticket, seconds)
    waits = RoutingDecision.objects.filter(ticket=ticket, kind=RoutingDecision.Kind.WAITING)
    assert waits.count() == 3
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.attempts == 6


def test_the_next_attempt_is_scheduled_at_the_next_step(tenant_a, bullseye):
    ticket = make_ticket(tenant=tenant_a)
    _route(ticket, 5)
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.next_attempt_at == item.queue_entered_at + dt.timedelta(seconds=30)


def test_overflow_moves_waiting_work_to_another_queue(tenant_a, online_agent, provider_team):
    general = _queue(tenant_a, "General", position=2, steps=[{"team_kind": TeamKind.PROVIDER}])
    _queue(
        tenant_a,
        "Billing",
        position=1,
        tags=["billing"],
        steps=[{"language": "en"}],
        overflow_queue=general,
        overflow_after_seconds=45,
    )
    provider = online_agent(tenants=[tenant_a], team=provider_team)
    ticket = make_ticket(tenant=tenant_a, tags=["billing"])
    assert _route(ticket, 10).kind == RoutingDecision.Kind.WAITING  # nobody speaks en
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.next_attempt_at == item.queue_entered_at + dt.timedelta(seconds=45)
    decision = _route(ticket, 46)
    kinds = list(RoutingDecision.objects.filter(ticket=ticket).values_list("kind", "queue_name"))
    assert kinds[-2:] == [("overflowed", "General"), ("assigned", "General")]
    assert decision.agent_id == provider.pk


def test_declined_work_is_not_offered_to_the_same_agent_again(tenant_a, online_agent):
    decliner = online_agent(tenants=[tenant_a])
    ticket = make_ticket(tenant=tenant_a)
    QueuedItem.objects.filter(ticket=ticket).update(declined_by=[decliner.pk])
    decision = _route(ticket)
    assert decision.kind == RoutingDecision.Kind.WAITING
    assert decision.candidates[0]["rejected"] == ["declined this item"]


def test_an_inactive_tenants_work_is_not_queued(tenant_a):
    tenant_a.is_active = False
    tenant_a.save()
    ticket = make_ticket(tenant=tenant_a)
    assert not QueuedItem.objects.filter(ticket=ticket).exists()
