"""Asterisk AMI streams: the real captures from panoramisk's fixtures, checked against expected.json.

Proves: every file parses; the count of each event type equals expected.json; the Newchannel and
Hangup events carry exactly the listed fields, in order; CRLF and the banner are handled; bad lines
raise ParseError naming the line.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from care.calls.events import ParseError
from care.connectors.phone.asterisk_ami import events, parse_stream
from tests.phone.corpus import TELEPHONY, corpus_file


def _expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(corpus_file("asterisk-ami/expected.json").read_text())
    return data


FILES = (
    sorted(json.loads((TELEPHONY / "asterisk-ami" / "expected.json").read_text()))
    if (TELEPHONY / "asterisk-ami" / "expected.json").is_file()
    else []
)


@pytest.mark.parametrize("name", FILES)
def test_event_counts_match_expected_json(name):
    """expected.json counted lines starting with "Event:", so it misses the two events of
    agent_loggued_in whose "Event:" line follows a capture-gap marker; they are whole, and counted
    here separately (test_capture_gaps_are_recorded_and_the_message_after_them_kept)."""
    expected = _expected()[name]
    messages = parse_stream(corpus_file(f"asterisk-ami/{name}").read_text())
    counted_by_corpus = [m for m in events(messages) if not m.missing_bytes_before]
    assert Counter(m.name for m in counted_by_corpus) == expected["event_counts"]


@pytest.mark.parametrize("name", FILES)
def test_newchannel_and_hangup_fields_match_expected_json(name):
    expected = _expected()[name]
    messages = parse_stream(corpus_file(f"asterisk-ami/{name}").read_text())
    for event_name, key in (("Newchannel", "newchannel"), ("Hangup", "hangup")):
        found = events(messages, event_name)
        assert len(found) == len(expected[key])
        for got, want in zip(found, expected[key], strict=True):
            assert {field: got.get(field) for field in want} == want


def test_all_six_files_are_covered():
    assert len(FILES) == 6


def test_login_capture_skips_the_banner_and_keeps_actions_and_responses():
    messages = parse_stream(corpus_file("asterisk-ami/panoramisk/login_ok.ami.txt").read_text())
    assert [(m.kind, m.name) for m in messages] == [
        ("action", "login"),
        ("response", "Success"),
        ("event", "FullyBooted"),
    ]
    assert messages[1].get("Message") == "Authentication accepted"
    assert messages[2].line == 12


def test_capture_gaps_are_recorded_and_the_message_after_them_kept():
    messages = parse_stream(corpus_file("asterisk-ami/panoramisk/agent_loggued_in.ami.txt").read_text())
    gaps = [(m.line, m.name, m.missing_bytes_before) for m in messages if m.missing_bytes_before]
    assert gaps == [(140, "Newexten", 218), (405, "AGIExec", 1613)]


def test_a_gap_inside_a_message_ends_it():
    first, second = parse_stream("Event: A\nKey: 1\n[5 bytes missing in capture file]Event: B\n")
    assert (first.name, first.get("Key"), first.missing_bytes_before) == ("A", "1", 0)
    assert (second.name, second.missing_bytes_before) == ("B", 5)


def test_keys_are_matched_without_regard_to_case():
    messages = parse_stream(corpus_file("asterisk-ami/panoramisk/asyncagi_get_var.ami.txt").read_text())
    agi = events(messages, "agiexec")[0]
    assert agi.get("CommandID") == agi.get("CommandId") == "2095882815"
    assert agi.get("Missing", "none") == "none"


def test_crlf_stream_and_repeated_keys():
    text = "Event: VarSet\r\nVariable: A\r\nVariable: B\r\nValue: \r\n\r\nEvent: Hangup\r\nCause: 16\r\n"
    varset, hangup = parse_stream(text)
    assert varset.headers == {"Event": "VarSet", "Variable": "A", "Value": ""}
    assert varset.fields[1:3] == (("Variable", "A"), ("Variable", "B"))
    assert hangup.get("Cause") == "16"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Event: Hangup\nthis is not a header\n", "Line 2 is not an AMI 'Key: Value' line"),
        ("Event: A\n\nPing: Pong\n", "Line 3: an AMI message must begin with Event, Response or Action"),
        ("Event: A\n: no key\n", "Line 2 is not an AMI"),
    ],
)
def test_bad_lines_raise_parse_error_naming_the_line(text, message):
    with pytest.raises(ParseError, match=message):
        parse_stream(text)


def test_empty_stream_is_no_messages():
    assert parse_stream("") == []
    assert parse_stream("Asterisk Call Manager/5.0.1\r\n") == []
