"""Asterisk cdr_csv (Master.csv): the real, pseudonymised samples of fafeitsch/cdrcsv-report-generator.

Proves: cdr.csv parses and re-exports byte for byte (upstream parse_test.go); collapsing parallel
legs of smallcdr.csv gives exactly smallcdr_wo_parallelcalls.csv, every field of every record
(upstream normalize_test.go); times become aware UTC; records become the right call events; bad
rows raise ParseError naming the line, and no input crashes the parser.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from care.calls.events import CallEventKind, ParseError
from care.connectors.phone.asterisk_cdr import (
    COLUMNS,
    CdrRecord,
    collapse_parallel_calls,
    parse_rows,
    to_call_events,
    write_rows,
)
from tests.phone.corpus import corpus_file

TZ = "America/New_York"


def _read(name: str) -> str:
    return corpus_file(f"asterisk-cdr-csv/{name}").read_text(encoding="utf-8")


def _row(**changes: str) -> str:
    """One valid line (first line of cdr.csv) with some columns replaced."""
    values = {
        "accountcode": "",
        "src": "791-445-9811",
        "dst": "715-413-9112",
        "dcontext": "hq",
        "clid": '"" <791-445-9811>',
        "channel": "NOT_AVAILABLE",
        "dstchannel": "NOT_AVAILABLE",
        "lastapp": "Dial",
        "lastdata": "NOT_AVAILABLE",
        "start": "2017-06-20 09:49:22",
        "answer": "",
        "end": "2017-06-20 09:49:32",
        "duration": "10",
        "billsec": "0",
        "disposition": "NO ANSWER",
        "amaflags": "DOCUMENTATION",
        "uniqueid": "1497952162.0",
        "userfield": "",
    } | changes
    cells = [
        values[c] if c in ("duration", "billsec") else '"' + values[c].replace('"', '""') + '"'
        for c in COLUMNS
    ]
    return ",".join(cells) + "\n"


def test_cdr_csv_parses_with_the_counts_source_md_states():
    records = parse_rows(_read("cdr.csv"), tz=TZ)
    assert len(records) == 218
    assert Counter(r.disposition for r in records) == {"ANSWERED": 133, "NO ANSWER": 83, "BUSY": 2}


def test_cdr_csv_round_trips_byte_for_byte():
    text = _read("cdr.csv")
    assert write_rows(parse_rows(text, tz=TZ)) == text


def test_first_record_fields_and_times_in_utc():
    first, second = parse_rows(_read("cdr.csv"), tz=TZ)[:2]
    assert first.clid == '"" <791-445-9811>'
    assert first.start == datetime(2017, 6, 20, 13, 49, 22, tzinfo=UTC)  # EDT is UTC-4
    assert first.answer is None
    assert (first.duration, first.billsec, first.disposition) == (10, 0, "NO ANSWER")
    assert (first.uniqueid, first.userfield, first.amaflags) == ("1497952162.0", "", "DOCUMENTATION")
    assert first.line == 1
    assert len(first.raw) == 18
    assert second.answer == datetime(2017, 6, 20, 13, 49, 32, tzinfo=UTC)


def test_the_time_zone_given_decides_the_utc_instant():
    [berlin] = parse_rows(_row(), tz="Europe/Berlin")
    assert berlin.start == datetime(2017, 6, 20, 7, 49, 22, tzinfo=UTC)
    assert write_rows([berlin]) == _row()


def test_collapsing_smallcdr_gives_exactly_the_expected_file():
    collapsed = collapse_parallel_calls(parse_rows(_read("smallcdr.csv"), tz=TZ))
    expected = parse_rows(_read("smallcdr_wo_parallelcalls.csv"), tz=TZ)
    assert len(collapsed) == len(expected) == 34
    for index, (got, want) in enumerate(zip(collapsed, expected, strict=True)):
        assert got == want, f"record {index + 1}"
        # The 18 raw columns too (equality above leaves out provenance): upstream compares them all.
        assert got.raw == want.raw, f"record {index + 1}"
    assert write_rows(collapsed) == write_rows(expected)


def test_collapse_keeps_the_answered_leg_else_busy_else_first():
    small = parse_rows(_read("smallcdr.csv"), tz=TZ)
    collapsed = collapse_parallel_calls(small)
    by_id = {r.uniqueid: r for r in collapsed}
    # 1498571580.45 (answered) and 1498571581.45 (no answer) rang one second apart: one call.
    assert "1498571580.45" in by_id
    assert "1498571581.45" not in by_id
    # Two unanswered legs of one call: the first one stays.
    assert by_id["1498580626.84"].start == datetime(2017, 6, 27, 20, 23, 46, tzinfo=UTC)
    assert "1498580627.84" not in by_id


def test_a_transferred_call_sharing_the_uniqueid_is_not_collapsed():
    first = _row(disposition="ANSWERED", answer="2017-06-20 09:49:25", billsec="7")
    later = _row(start="2017-06-20 09:55:00", end="2017-06-20 09:56:00", duration="60")
    records = parse_rows(first + later, tz=TZ)
    assert collapse_parallel_calls(records) == records


def test_collapse_is_idempotent_on_the_big_file():
    records = parse_rows(_read("cdr.csv"), tz=TZ)
    once = collapse_parallel_calls(records)
    assert collapse_parallel_calls(once) == once
    assert len(once) < len(records)


def test_answered_record_becomes_offered_answered_ended():
    record = parse_rows(_read("smallcdr.csv"), tz=TZ)[1]  # 10:29:03 answered 10:29:14, 402/390 s
    offered, answered, ended = to_call_events(record, region="US")
    assert [e.kind for e in (offered, answered, ended)] == [
        CallEventKind.OFFERED,
        CallEventKind.ANSWERED,
        CallEventKind.ENDED,
    ]
    assert {e.call_id for e in (offered, answered, ended)} == {"1498559343.3"}
    assert offered.occurred_at == datetime(2017, 6, 27, 14, 29, 3, tzinfo=UTC)
    assert answered.occurred_at == datetime(2017, 6, 27, 14, 29, 14, tzinfo=UTC)
    assert ended.occurred_at == datetime(2017, 6, 27, 14, 35, 45, tzinfo=UTC)
    assert (offered.caller, offered.caller_raw) == ("+19173750980", "917-375-0980")
    assert (offered.dialled, offered.dialled_raw) == ("+13344428436", "334-442-8436")
    # dstchannel is NOT_AVAILABLE in the pseudonymised data, so the agent is dst.
    assert answered.agent_ref == ended.agent_ref == "334-442-8436"
    assert ended.talk_seconds == 390
    assert ended.wait_seconds == 12
    assert offered.extra["clid"] == '"Leanna Cuphus" <609-326-2780>'
    assert offered.provider == "asterisk"


def test_agent_is_the_dstchannel_when_recorded():
    [record] = parse_rows(
        _row(
            disposition="ANSWERED",
            answer="2017-06-20 09:49:25",
            billsec="7",
            dstchannel="SIP/agent-0042-00000001",
        ),
        tz=TZ,
    )
    assert to_call_events(record)[1].agent_ref == "SIP/agent-0042-00000001"


def test_no_answer_is_abandoned_with_the_wait_and_busy_is_rejected():
    small = parse_rows(_read("smallcdr.csv"), tz=TZ)
    no_answer = small[0]
    busy = next(r for r in small if r.disposition == "BUSY")
    offered, abandoned = to_call_events(no_answer)
    assert offered.kind is CallEventKind.OFFERED
    assert abandoned.kind is CallEventKind.ABANDONED
    assert abandoned.wait_seconds == no_answer.duration == 0
    offered, rejected = to_call_events(busy)
    assert rejected.kind is CallEventKind.REJECTED
    assert rejected.wait_seconds == 16
    assert rejected.occurred_at == datetime(2017, 6, 27, 20, 46, 29, tzinfo=UTC)


def test_parallel_legs_share_their_offered_event_id_and_collapsed_events_are_unique():
    small = parse_rows(_read("smallcdr.csv"), tz=TZ)
    legs = [r for r in small if r.uniqueid == "1498559927.9"]
    assert len(legs) == 2
    assert to_call_events(legs[0])[0].event_id == to_call_events(legs[1])[0].event_id
    ids = [e.event_id for r in collapse_parallel_calls(small) for e in to_call_events(r)]
    assert len(ids) == len(set(ids))


def test_every_corpus_record_maps_to_events_without_error():
    for record in collapse_parallel_calls(parse_rows(_read("cdr.csv"), tz=TZ)):
        events = to_call_events(record, region="US")
        assert events[0].kind is CallEventKind.OFFERED
        assert all(e.occurred_at.tzinfo is UTC for e in events)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_row() + _row() + '"a","b"\n', "Line 3 has 2 columns; an Asterisk CDR line has 18"),
        (_row()[:-4] + "\n", "Line 1 has 17 columns"),
        (
            _row(start="2017-06-31 09:49:22"),
            "Line 1: the start time '2017-06-31 09:49:22' is not a real date",
        ),
        (_row(end="20.6.2017 09:49"), "Line 1: the end time '20.6.2017 09:49' is not in the form"),
        (_row(answer="soon"), "Line 1: the answer time 'soon'"),
        (_row(duration="-4"), "Line 1: duration must be a whole number"),
        (_row(billsec="1.5"), "Line 1: billsec must be a whole number"),
        (_row() + '"x"y,' + _row()[4:], "Line 2 is not valid CSV"),
        ("\n" + _row() + "\n" + _row(duration="x"), "Line 4: duration"),
    ],
)
def test_malformed_rows_raise_parse_error_naming_the_line(text, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_rows(text, tz=TZ)


def test_a_quoted_newline_counts_for_the_next_line_number():
    text = _row(userfield="two\nlines") + _row(duration="x")
    with pytest.raises(ParseError, match="Line 3: duration"):
        parse_rows(text, tz=TZ)


def test_unknown_time_zone_and_daylight_saving_gap_are_refused():
    with pytest.raises(ParseError, match="not a known time zone"):
        parse_rows(_row(), tz="Mars/Olympus_Mons")
    gap = _row(start="2017-03-12 02:30:00")  # clocks in New York jumped from 02:00 to 03:00
    with pytest.raises(ParseError, match="does not exist in the time zone America/New_York"):
        parse_rows(gap, tz=TZ)


def test_unknown_disposition_is_a_parse_error_in_events_not_in_parsing():
    [record] = parse_rows(_row(disposition="EXPLODED"), tz=TZ)
    with pytest.raises(ParseError, match="Line 1: the disposition 'EXPLODED'"):
        to_call_events(record)


@given(st.text(max_size=300))
def test_no_text_crashes_the_parser(text):
    try:
        records = parse_rows(text, tz=TZ)
    except ParseError:
        return
    assert all(isinstance(r, CdrRecord) for r in records)


_FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_LOCAL = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(  # noqa: DTZ001
    lambda value: value.replace(microsecond=0)
)


@st.composite
def _records(draw: st.DrawFn) -> CdrRecord:
    zone_name = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
    zone = ZoneInfo(zone_name)

    def moment(local: datetime) -> datetime:
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        assume(instant.astimezone(zone).replace(tzinfo=None) == local)  # not in a DST gap
        return instant

    start = draw(_LOCAL)
    answered = draw(st.booleans())
    text = {
        name: draw(_FIELD)
        for name in COLUMNS
        if name not in ("start", "answer", "end", "duration", "billsec")
    }
    return CdrRecord(
        **text,
        start=moment(start),
        answer=moment(start + timedelta(seconds=draw(st.integers(0, 60)))) if answered else None,
        end=moment(start + timedelta(seconds=draw(st.integers(0, 7200)))),
        duration=draw(st.integers(0, 10**6)),
        billsec=draw(st.integers(0, 10**6)),
        time_zone=zone_name,
    )


@given(st.lists(_records(), max_size=5))
def test_parse_of_write_gives_back_the_records(records):
    by_zone: dict[str, list[CdrRecord]] = {}
    for record in records:
        by_zone.setdefault(record.time_zone, []).append(record)
    for zone_name, group in by_zone.items():
        assert parse_rows(write_rows(group), tz=zone_name) == group
