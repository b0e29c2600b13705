"""Fixtures of the phone tests: a line of tenant A with an IVR menu, and an agent on extension 201."""

from __future__ import annotations

import datetime as dt

import pytest

from care.calls.events import CallEvent, CallEventKind
from care.calls.models import PhoneLine, Provider

CALLER = "+4930123456"
NUMBER = "+4940111222"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def line(tenant_a):
    return PhoneLine.objects.create(
        tenant=tenant_a,
        number=NUMBER,
        name="ENN hotline",
        provider=Provider.GENERIC,
        default_language="de",
        ivr_menu={"1": {"language": "de"}, "2": {"language": "en", "tags": ["billing"]}},
    )


@pytest.fixture
def phone_agent(agent):
    """The tenant A agent (alice), known to the telephone system as extension 201, online."""
    agent.phone_extension = "201"
    agent.presence = "online"
    agent.save(update_fields=["phone_extension", "presence"])
    return agent


def event(kind: str, seconds: float, *, call_id: str = "call-1", **fields) -> CallEvent:
    """An event of ``call_id`` ``seconds`` after T0 from the caller to the line."""
    return CallEvent(
        provider=Provider.GENERIC,
        call_id=call_id,
        kind=CallEventKind(kind),
        occurred_at=T0 + dt.timedelta(seconds=seconds),
        caller=fields.pop("caller", CALLER),
        dialled=fields.pop("dialled", NUMBER),
        **fields,
    )


def answered_call(call_id: str = "call-1", start: float = 0, agent_ref: str = "201") -> list[CallEvent]:
    """Five events of one answered call: offered with IVR choice 2, queued, answered, held, ended."""
    return [
        event("offered", start, call_id=call_id, ivr_digits="2"),
        event("queued", start + 10, call_id=call_id),
        event("answered", start + 40, call_id=call_id, agent_ref=agent_ref),
        event("held", start + 60, call_id=call_id, agent_ref=agent_ref),
        event("ended", start + 220, call_id=call_id, talk_seconds=180, hold_seconds=20),
    ]
