"""A day of phone calls for the demo: yesterday's calls of every demo tenant, as Care's JSON events.

Pure and deterministic: the same ``now`` gives the same events on every machine. Every tenant's line
gets the same eight calls (``DAY``) at the same local times, answered by the line's agent, so that a
reader can count the figures by hand:

| slot | local | what happens                          | wait | talk+hold | ticket                       |
|------|-------|---------------------------------------|------|-----------|------------------------------|
| 1    | 09:05 | answered (caller 01)                  | 12   | 240+0     | new                          |
| 2    | 09:40 | answered, IVR "2" (second language)   | 28   | 410+30    | new                          |
| 3    | 10:15 | abandoned, short                      | 3    |           | none (hung up at once)       |
| 4    | 11:00 | rejected (queue full)                 | 0    |           | none                         |
| 5    | 11:30 | answered (caller 01 again)            | 45   | 180+0     | caller 01's ticket of slot 1 |
| 6    | 13:20 | abandoned, long                       | 95   |           | new (worth a call back)      |
| 7    | 14:10 | voicemail                             | 60   |           | new                          |
| 8    | 15:45 | answered                              | 8    | 300+60    | new                          |

So per tenant: 8 calls, 4 answered, 2 abandoned (1 short), 1 rejected, 1 voicemail; 5 tickets and 6
timeline entries. Events of one call come in order here; the pipeline would not mind otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from care.calls.events import CallEvent, CallEventKind
from care.demo.data import PHONE_EXTENSIONS, PHONE_LINES, TENANTS, PhoneLineSpec

PROVIDER = "generic"
IVR_SECONDS = 8  # the caller's time in the menu before the queue


@dataclass(frozen=True)
class Slot:
    number: int
    local: str  # the time the call is offered, in the tenant's zone
    kind: str  # "answered", "abandoned", "rejected" or "voicemail"
    caller: int  # two digits after the line's ``callers`` prefix
    wait: int = 0
    talk: int = 0
    hold: int = 0
    digits: str = "1"


DAY = (
    Slot(1, "09:05", "answered", 1, wait=12, talk=240),
    Slot(2, "09:40", "answered", 2, wait=28, talk=410, hold=30, digits="2"),
    Slot(3, "10:15", "abandoned", 3, wait=3),
    Slot(4, "11:00", "rejected", 4),
    Slot(5, "11:30", "answered", 1, wait=45, talk=180),
    Slot(6, "13:20", "abandoned", 5, wait=95),
    Slot(7, "14:10", "voicemail", 6, wait=60, talk=35),
    Slot(8, "15:45", "answered", 7, wait=8, talk=300, hold=60),
)


def call_id(code: str, day: dt.date, slot: Slot) -> str:
    return f"demo-{code}-{day:%Y%m%d}-{slot.number}"


def caller_number(line: PhoneLineSpec, slot: Slot) -> str:
    return f"{line.callers}{slot.caller:02d}"


def _slot_events(line: PhoneLineSpec, day: dt.date, zone: ZoneInfo, slot: Slot) -> list[dict[str, Any]]:
    offered = dt.datetime.combine(day, dt.time.fromisoformat(slot.local), tzinfo=zone).astimezone(dt.UTC)
    base = {
        "provider": PROVIDER,
        "call_id": call_id(line.tenant, day, slot),
        "caller": caller_number(line, slot),
        "dialled": line.number,
    }
    queued = offered + dt.timedelta(seconds=IVR_SECONDS)
    waited = queued + dt.timedelta(seconds=slot.wait)
    steps: list[tuple[CallEventKind, dt.datetime, dict[str, Any]]] = [
        (CallEventKind.OFFERED, offered, {"ivr_digits": slot.digits})
    ]
    if slot.kind == "rejected":
        steps.append((CallEventKind.REJECTED, offered + dt.timedelta(seconds=1), {}))
    else:
        steps.append((CallEventKind.QUEUED, queued, {"ivr_digits": slot.digits}))
    if slot.kind == "answered":
        agent = {"agent_ref": PHONE_EXTENSIONS[line.answered_by]}
        ended = waited + dt.timedelta(seconds=slot.talk + slot.hold)
        steps.append((CallEventKind.ANSWERED, waited, {**agent, "wait_seconds": slot.wait}))
        times = {"talk_seconds": slot.talk, "hold_seconds": slot.hold}
        steps.append((CallEventKind.ENDED, ended, {**agent, **times}))
    elif slot.kind == "abandoned":
        steps.append((CallEventKind.ABANDONED, waited, {"wait_seconds": slot.wait}))
    elif slot.kind == "voicemail":
        steps.append((CallEventKind.VOICEMAIL, waited, {"wait_seconds": slot.wait}))
        steps.append((CallEventKind.ENDED, waited + dt.timedelta(seconds=slot.talk), {}))
    return [
        {**base, "kind": str(kind), "occurred_at": at.isoformat(), "sequence": sequence, **fields}
        for sequence, (kind, at, fields) in enumerate(steps, start=1)
    ]


def demo_call_events(now: dt.datetime) -> list[dict[str, Any]]:
    """Yesterday's calls (each tenant's own yesterday) of every demo line, oldest event first."""
    zones = {spec.code: ZoneInfo(spec.time_zone) for spec in TENANTS}
    events: list[dict[str, Any]] = []
    for line in PHONE_LINES:
        zone = zones[line.tenant]
        day = now.astimezone(zone).date() - dt.timedelta(days=1)
        for slot in DAY:
            events += _slot_events(line, day, zone, slot)
    events.sort(key=lambda event: (event["occurred_at"], event["call_id"], event["sequence"]))
    return events


def to_call_event(data: dict[str, Any]) -> CallEvent:
    """A demo event as the pipeline takes it (the demo's JSON is always well formed)."""
    fields = dict(data)
    return CallEvent(
        **{
            **fields,
            "kind": CallEventKind(fields["kind"]),
            "occurred_at": dt.datetime.fromisoformat(fields["occurred_at"]),
        }
    )
