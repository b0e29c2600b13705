"""The life of a call built from the telephone system's events: any order, repeats, agents, presence."""

from __future__ import annotations

import itertools
import random

import pytest

from care.accounts.models import Agent, Presence
from care.calls.models import Call, CallOutcome, CallStatus, Direction
from care.calls.services import call_event_apply
from care.contacts.models import Identity
from tests.calls.conftest import CALLER, T0, answered_call, event

pytestmark = pytest.mark.django_db

# The fields an order of events must not change (ids, bookkeeping and creation times aside).
MERGED_FIELDS = [
    "direction",
    "caller",
    "dialled",
    "customer_id",
    "status",
    "outcome",
    "offered_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "queue_wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "agent_id",
    "agent_ref",
    "ivr_path",
    "language",
    "last_event_at",
]


def apply_all(line, events) -> Call:
    for item in events:
        call_event_apply(line=line, event=item)
    return Call.objects.get(tenant=line.tenant, external_id=events[0].call_id)


def fields_of(call: Call) -> dict:
    return {name: getattr(call, name) for name in MERGED_FIELDS} | {"events": sorted(call.events_seen)}


def test_inbound_call_in_order(line, phone_agent):
    call = apply_all(line, answered_call())

    assert call.direction == Direction.INBOUND
    assert call.status == CallStatus.ENDED
    assert call.outcome == CallOutcome.ANSWERED
    assert call.offered_at == T0
    assert (call.queue_wait_seconds, call.talk_seconds, call.hold_seconds) == (30, 180, 20)
    assert call.agent == phone_agent
    assert (call.ivr_path, call.language) == ("2", "en")
    assert Identity.objects.get(customer=call.customer).value == CALLER
    assert len(call.events_seen) == 5


def test_reverse_order_gives_the_same_call(line, phone_agent):
    in_order = fields_of(apply_all(line, answered_call("a")))
    reversed_ = fields_of(apply_all(line, list(reversed(answered_call("b")))))
    in_order.pop("events"), reversed_.pop("events")
    assert reversed_ == in_order


def test_every_order_of_five_events_gives_the_same_call(line, phone_agent):
    events = answered_call("ref")
    expected = fields_of(apply_all(line, events))
    expected.pop("events")
    orders = list(itertools.permutations(range(5)))
    # All 120 orders cost a few seconds; a fixed random sample of them covers the rule as well.
    for number, order in enumerate(random.Random(7).sample(orders, 30)):
        call_id = f"perm-{number}"
        call = apply_all(line, [answered_call(call_id)[i] for i in order])
        got = fields_of(call)
        got.pop("events")
        assert got == expected | {"customer_id": got["customer_id"]}, order
        assert got["customer_id"] == expected["customer_id"]


def test_a_repeated_event_is_applied_once(line, phone_agent):
    first = call_event_apply(line=line, event=event("offered", 0))
    again = call_event_apply(line=line, event=event("offered", 0))

    assert (first.applied, again.applied) == (True, False)
    assert Call.objects.get().events_seen == [event("offered", 0).event_id]


def test_the_agent_is_on_call_while_answered_and_online_after(line, phone_agent):
    events = answered_call()
    for item in events[:3]:
        call_event_apply(line=line, event=item)
    assert Agent.objects.get(pk=phone_agent.pk).presence == Presence.ON_CALL

    for item in events[3:]:
        call_event_apply(line=line, event=item)
    assert Agent.objects.get(pk=phone_agent.pk).presence == Presence.ONLINE


def test_an_agent_who_chose_away_during_the_call_stays_away(line, phone_agent):
    events = answered_call()
    for item in events[:3]:
        call_event_apply(line=line, event=item)
    Agent.objects.filter(pk=phone_agent.pk).update(presence=Presence.AWAY)
    call_event_apply(line=line, event=events[4])
    assert Agent.objects.get(pk=phone_agent.pk).presence == Presence.AWAY


def test_an_unknown_agent_reference_is_kept_and_the_call_recorded(line, phone_agent):
    call = apply_all(line, answered_call(agent_ref="sip:nobody@pbx"))

    assert call.agent is None
    assert call.agent_ref == "sip:nobody@pbx"
    assert call.outcome == CallOutcome.ANSWERED
    assert "sip:nobody@pbx" in call.interaction.body_text


@pytest.mark.parametrize("ref", ["agent:{pk}", "sip:alice@pbx"])
def test_agents_are_found_by_pk_or_sip_uri(line, phone_agent, ref):
    Agent.objects.filter(pk=phone_agent.pk).update(sip_uri="sip:alice@pbx")
    call = apply_all(line, answered_call(agent_ref=ref.format(pk=phone_agent.pk)))
    assert call.agent == phone_agent


def test_an_agent_of_another_tenant_is_not_matched(line, phone_agent, outsider):
    Agent.objects.filter(pk=outsider.pk).update(phone_extension="777")
    call = apply_all(line, answered_call(agent_ref="777"))
    assert call.agent is None
    assert call.agent_ref == "777"


def test_a_voicemail_and_its_hang_up_give_voicemail_in_any_order(line):
    events = [event("offered", 0), event("voicemail", 30), event("ended", 90)]
    first = apply_all(line, events)
    second = apply_all(
        line, [item.__class__(**{**item.__dict__, "call_id": "vm-2"}) for item in reversed(events)]
    )
    assert first.outcome == second.outcome == CallOutcome.VOICEMAIL
    assert first.queue_wait_seconds == second.queue_wait_seconds


def test_a_reported_wait_wins_over_the_times(line, phone_agent):
    call = apply_all(line, [event("offered", 0), event("answered", 50, wait_seconds=12), event("ended", 60)])
    assert call.queue_wait_seconds == 12


def test_resumed_returns_a_held_call_to_answered(line, phone_agent):
    call = apply_all(
        line, [event("offered", 0), event("answered", 5), event("held", 10), event("resumed", 20)]
    )
    assert call.status == CallStatus.ANSWERED


def test_query_count_of_an_event_is_pinned(line, phone_agent, django_assert_num_queries):
    events = answered_call()
    call_event_apply(line=line, event=events[0])
    # A middle event of a known call: savepoint, lock, save, release; no customer lookup, no ticket.
    with django_assert_num_queries(4):
        call_event_apply(line=line, event=events[1])
    # The answer: savepoint, lock, agent, save, presence (the update, then the agent's tenants its
    # receivers share), release.
    with django_assert_num_queries(7):
        call_event_apply(line=line, event=events[2])
