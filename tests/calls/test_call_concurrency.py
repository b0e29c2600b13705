"""Two workers applying events of one call at the same moment give the call one order would give."""

from __future__ import annotations

import pytest

from care.accounts.models import Agent, Presence
from care.calls.models import Call, CallOutcome, CallStatus
from care.calls.services import call_event_apply
from care.tickets.models import Interaction, Ticket
from tests.calls.conftest import answered_call
from tests.helpers import run_in_threads


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_build_one_call(line, phone_agent):
    events = answered_call()
    # Every event twice, spread over workers that start together: creation races on the unique key,
    # the rest on the row lock.
    batches = [events[i::3] + events[::-1][i::3] for i in range(3)]

    def work(index: int) -> list[bool]:
        return [call_event_apply(line=line, event=item).applied for item in batches[index]]

    applied = [flag for flags in run_in_threads(work, 3) for flag in flags]

    call = Call.objects.get()
    assert applied.count(True) == 5
    assert sorted(call.events_seen) == sorted(item.event_id for item in events)
    assert (call.status, call.outcome) == (CallStatus.ENDED, CallOutcome.ANSWERED)
    assert (call.queue_wait_seconds, call.talk_seconds, call.hold_seconds) == (30, 180, 20)
    assert call.agent_id == phone_agent.pk
    assert Ticket.objects.count() == 1
    assert Interaction.objects.count() == 1
    assert Agent.objects.get(pk=phone_agent.pk).presence == Presence.ONLINE
