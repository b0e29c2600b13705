"""FreeSWITCH mod_json_cdr: the two real CDRs from cgrates' fscdr_test.go, checked against expected.json.

Also: the events an answered and a partial CDR give, hangup causes for unanswered legs (small
SYNTHETIC documents, labelled as such), and ParseError for unusable input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from care.calls.events import CallEventKind, ParseError
from care.connectors.phone.freeswitch import parse_cdr, to_call_events
from tests.phone.corpus import corpus_file

BODY = "cgrates/fscdr_test.body.json"
SIMPLE = "cgrates/fscdr_test.simpleJSONCdr.json"


def _expected(name: str) -> dict[str, Any]:
    data = json.loads(corpus_file("freeswitch-json-cdr/expected.json").read_text())
    return data[name]["expected"]


def _cdr_bytes(name: str) -> bytes:
    return corpus_file(f"freeswitch-json-cdr/{name}").read_bytes()


def _epoch(moment: datetime | None) -> str:
    assert moment is not None
    return str(int(moment.timestamp()))


def test_answered_cdr_matches_expected_json():
    expected = _expected(BODY)
    cdr = parse_cdr(_cdr_bytes(BODY))
    assert cdr.call_id == expected["call_id"]
    assert cdr.caller == expected["from"] == expected["sip_from_user"]
    assert cdr.destination == expected["to"] == expected["sip_to_user"]
    assert cdr.direction == "inbound"
    assert _epoch(cdr.start) == expected["start_epoch"]
    assert _epoch(cdr.answer) == expected["answer_epoch"]
    assert _epoch(cdr.end) == expected["end_epoch"]
    assert cdr.duration == expected["duration_s"]
    assert cdr.billsec == expected["billsec_s"]
    assert cdr.hangup_cause == expected["hangup_cause"]
    answer_usec = int(expected["answer_stamp_usec_per_cgrates_test"])
    assert cdr.answer == datetime.fromtimestamp(answer_usec // 1_000_000, tz=UTC).replace(
        microsecond=answer_usec % 1_000_000
    )
    assert cdr.user_agent.startswith(expected["sip_user_agent_prefix_per_cgrates_test"])
    assert cdr.caller_name == expected["caller_id_name_per_cgrates_test"]


def test_answered_cdr_becomes_offered_answered_ended():
    cdr = parse_cdr(_cdr_bytes(BODY))
    offered, answered, ended = to_call_events(cdr)
    assert [e.kind for e in (offered, answered, ended)] == [
        CallEventKind.OFFERED,
        CallEventKind.ANSWERED,
        CallEventKind.ENDED,
    ]
    assert {e.call_id for e in (offered, answered, ended)} == {"3da8bf84-c133-4959-9e24-e72875cb33a1"}
    assert offered.provider == "freeswitch"
    assert offered.occurred_at == datetime(2018, 1, 11, 10, 25, 44, 534355, tzinfo=UTC)
    assert answered.agent_ref == "1002"
    assert answered.wait_seconds == 3
    assert (ended.talk_seconds, ended.hold_seconds) == (68, 67)
    # Extensions are not phone numbers: no E.164, the raw value is kept.
    assert (offered.caller, offered.caller_raw, offered.dialled_raw) == ("", "1001", "1002")
    assert offered.extra["hangup_cause"] == "NORMAL_CLEARING"
    assert len({e.event_id for e in (offered, answered, ended)}) == 3


def test_partial_unanswered_cdr_matches_expected_json_and_gives_only_offered():
    expected = _expected(SIMPLE)
    cdr = parse_cdr(_cdr_bytes(SIMPLE).decode())
    assert cdr.call_id == expected["call_id"]
    assert cdr.accountcode == expected["accountcode"]
    assert (cdr.answer is not None) is expected["answered"]
    assert cdr.caller == expected["effective_caller_id_number"]
    assert cdr.end is None
    # times.created_time, in microseconds, is the only start it has.
    assert cdr.start == datetime(2014, 4, 8, 19, 10, 21, 278217, tzinfo=UTC)
    [offered] = to_call_events(cdr, region="DE")
    assert offered.kind is CallEventKind.OFFERED
    assert offered.caller == "+4986517174963"  # as cgrates rewrites it, once a region is known


def _synthetic(hangup_cause: str) -> dict[str, Any]:
    """SYNTHETIC minimal mod_json_cdr of an unanswered leg (not from the corpus)."""
    return {
        "variables": {
            "uuid": "u-1",
            "start_epoch": "1700000000",
            "answer_epoch": "0",
            "end_epoch": "1700000020",
            "duration": "20",
            "billsec": "0",
            "hangup_cause": hangup_cause,
            "caller_id_number": "+4930123456",
            "destination_number": "+4940654321",
        }
    }


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        ("USER_BUSY", CallEventKind.REJECTED),
        ("CALL_REJECTED", CallEventKind.REJECTED),
        ("ORIGINATOR_CANCEL", CallEventKind.ABANDONED),
        ("NO_ANSWER", CallEventKind.ABANDONED),
    ],
)
def test_unanswered_legs_by_hangup_cause(cause, kind):
    offered, ending = to_call_events(parse_cdr(_synthetic(cause)))
    assert offered.caller == "+4930123456"
    assert offered.dialled == "+4940654321"
    assert ending.kind is kind
    assert ending.wait_seconds == 20
    assert ending.occurred_at == datetime(2023, 11, 14, 22, 13, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"variables": {"start_epoch": "1700000000"}}, "has no call uuid"),
        ({"variables": {"uuid": "u-2"}}, "u-2 has no start time"),
        ({"variables": {"uuid": "u-3", "start_epoch": "soon"}}, "start_epoch must be a whole number"),
        (
            {"variables": {"uuid": "u-4", "start_epoch": "1700000000", "billsec": "x"}},
            "billsec must be a whole number",
        ),
    ],
)
def test_unusable_documents_raise_parse_error(source, message):
    with pytest.raises(ParseError, match=message):
        parse_cdr(source)
