"""Care's JSON call events: parsed into CallEvent, every malformed input refused with a clear message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from care.calls.events import CallEventKind, ParseError
from care.connectors.phone.generic import parse_events


def body(**fields: object) -> bytes:
    event = {"call_id": "c-1", "event": "answered", "at": "2025-03-03T09:00:12+01:00"} | fields
    return json.dumps(event).encode()


def test_one_event_with_every_field() -> None:
    [event] = parse_events(
        body(
            sequence=3,
            caller="+49 30 1234567",
            dialled="+4940999000",
            agent="sip:201@pbx",
            ivr="1#",
            wait_seconds=12,
            talk_seconds=0,
            hold_seconds=None,
            recording_url="https://rec.example/1.mp3",
            direction="inbound",
            queue="billing",
        )
    )
    assert event.provider == "generic"
    assert (event.call_id, event.kind, event.sequence) == ("c-1", CallEventKind.ANSWERED, 3)
    assert event.occurred_at == datetime(2025, 3, 3, 8, 0, 12, tzinfo=UTC)
    assert (event.caller, event.caller_raw, event.dialled) == (
        "+49301234567",
        "+49 30 1234567",
        "+4940999000",
    )
    assert (event.agent_ref, event.ivr_digits, event.wait_seconds, event.talk_seconds) == (
        "sip:201@pbx",
        "1#",
        12,
        0,
    )
    assert event.hold_seconds is None
    assert event.recording_url == "https://rec.example/1.mp3"
    assert event.extra == {"queue": "billing"}


def test_a_list_of_events_and_z_offset() -> None:
    events = parse_events(
        json.dumps(
            [
                {"call_id": "c-1", "event": "offered", "at": "2025-03-03T08:00:00Z"},
                {"call_id": "c-1", "event": "ENDED", "at": "2025-03-03T08:05:00Z", "direction": "outbound"},
            ]
        )
    )
    assert [e.kind for e in events] == [CallEventKind.OFFERED, CallEventKind.ENDED]
    assert events[1].direction == "outbound"


def test_same_event_twice_has_the_same_id_whatever_the_offset_spelling() -> None:
    [a] = parse_events(body(at="2025-03-03T09:00:12+01:00"))
    [b] = parse_events(body(at="2025-03-03T08:00:12Z"))
    assert a.event_id == b.event_id


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"text"', "JSON object"),
        (b"[]", "empty"),
        (b"[1]", "Event 1 must be a JSON object"),
        (body(call_id=""), "call_id"),
        (body(call_id=None), "call_id"),
        (body(call_id=["x"]), "call_id must be a string"),
        (body(event="exploded"), "not one Care knows"),
        (body(event=None), "not one Care knows"),
        (body(at=None), '"at"'),
        (body(at="yesterday"), "ISO 8601"),
        (body(at="2025-03-03T09:00:12"), "no UTC offset"),
        (body(sequence=-1), "sequence"),
        (body(sequence="3"), "sequence"),
        (body(wait_seconds=-5), "wait_seconds"),
        (body(talk_seconds="10"), "talk_seconds"),
        (body(hold_seconds=True), "hold_seconds"),
        (body(direction="sideways"), "direction"),
        (body(ivr="1a"), "ivr"),
        (body(recording_url="ftp://x/y"), "recording_url"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(raw: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_events(raw)


def test_errors_name_the_event_in_a_list() -> None:
    good = {"call_id": "c-1", "event": "offered", "at": "2025-03-03T08:00:00Z"}
    with pytest.raises(ParseError, match="Event 2"):
        parse_events(json.dumps([good, good | {"event": "nope"}]))


def test_too_many_events_in_one_request() -> None:
    good = {"call_id": "c-1", "event": "offered", "at": "2025-03-03T08:00:00Z"}
    with pytest.raises(ParseError, match="at most"):
        parse_events(json.dumps([good] * 501))
