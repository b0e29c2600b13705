"""Twilio Voice adapter: X-Twilio-Signature against twilio-python's vectors, status callbacks.

The signature vectors are real (tests/unit/test_request_validator.py of twilio-python, in the shared
corpus). No captured status callback exists in the corpus, so the callbacks below are SYNTHETIC:
built from the parameter names in twilio-voice/status-callback-parameters.md and signed with the
algorithm the vectors prove.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.http import QueryDict
from hypothesis import assume, given
from hypothesis import strategies as st

from care.calls.events import CallEvent, CallEventKind, ParseError
from care.connectors.phone.twilio import compute_signature, parse_status_callback, verify_signature
from tests.phone.corpus import corpus_file


def _vectors() -> tuple[str, list[dict[str, Any]]]:
    data = json.loads(corpus_file("twilio-voice/x-twilio-signature-vectors.json").read_text())
    base = data["vectors"][0]["params"]
    vectors = []
    for vector in data["vectors"]:
        params = vector.get("params_multi", vector.get("params"))
        vectors.append({**vector, "params": base if params == "same as above" else params})
    return data["auth_token"], vectors


def _verify(vector: dict[str, Any], token: str, **changes: Any) -> bool:
    arguments = {
        "url": vector["url"],
        "params": vector["params"],
        "signature": vector["signature"],
        "body": vector.get("body"),
        **changes,
    }
    return verify_signature(auth_token=token, **arguments)


@pytest.mark.parametrize("index", range(7))
def test_every_corpus_vector_gives_its_expected_validity(index):
    token, vectors = _vectors()
    assert len(vectors) == 7
    assert _verify(vectors[index], token) is vectors[index]["valid"]


@pytest.mark.parametrize("index", range(7))
def test_a_wrong_auth_token_rejects_every_vector(index):
    token, vectors = _vectors()
    assert _verify(vectors[index], token + "6") is False


def test_json_body_must_match_its_bodysha256():
    token, vectors = _vectors()
    json_vector = vectors[6]
    assert _verify(json_vector, token, body=json_vector["body"].encode()) is True
    assert _verify(json_vector, token, body=json_vector["body"].replace("true", "false")) is False
    # The same URL without a body cannot be checked, and a body without bodySHA256 is not Twilio's.
    assert _verify(json_vector, token, body=None) is False
    assert _verify(vectors[0], token, body=json_vector["body"]) is False


def test_repeated_keys_in_a_django_querydict_are_all_signed():
    token, vectors = _vectors()
    multi = vectors[5]
    form = QueryDict(mutable=True)
    for name, value in multi["params"]:
        form.appendlist(name, value)
    assert form["Digits"] == "1234"  # items() alone would lose "5678"
    assert _verify(multi, token, params=form) is True
    assert _verify(multi, token, params=form.dict()) is False


def test_non_standard_https_port_is_checked_without_it_but_http_port_with_it():
    token, vectors = _vectors()
    params = vectors[0]["params"]
    assert _verify(vectors[1], token) is True  # signed as https://mycompany.com/... (port removed)
    signed = compute_signature(auth_token=token, url=vectors[2]["url"], params=params)
    assert vectors[2]["signature"] == signed  # http://mycompany.com:1234/... signed with its port


def test_empty_or_garbage_input_is_invalid_not_an_error():
    token, vectors = _vectors()
    assert _verify(vectors[0], token, signature="") is False
    assert verify_signature(auth_token="", url=vectors[0]["url"], params={}, signature="x") is False
    assert _verify(vectors[0], token, url="https://mycompany.com:99999999/x") is False
    assert _verify(vectors[0], token, url="https://[::1/x") is False
    assert _verify(vectors[0], token, signature="ü" * 28) is False


_CHARS = st.characters(min_codepoint=32, max_codepoint=0x2FF)


@given(position=st.integers(min_value=0), replacement=_CHARS)
def test_any_single_character_change_of_the_signature_is_rejected(position, replacement):
    token, vectors = _vectors()
    signature = vectors[0]["signature"]
    position %= len(signature)
    assume(signature[position] != replacement)
    changed = signature[:position] + replacement + signature[position + 1 :]
    assert _verify(vectors[0], token, signature=changed) is False


@given(position=st.integers(min_value=0), replacement=_CHARS)
def test_any_single_character_change_of_the_url_is_rejected(position, replacement):
    token, vectors = _vectors()
    url = vectors[0]["url"]
    position %= len(url)
    assume(url[position] != replacement)
    assert _verify(vectors[0], token, url=url[:position] + replacement + url[position + 1 :]) is False


@given(key_index=st.integers(min_value=0), position=st.integers(min_value=0), replacement=_CHARS)
def test_any_single_character_change_of_a_parameter_value_is_rejected(key_index, position, replacement):
    token, vectors = _vectors()
    params = dict(vectors[0]["params"])
    key = sorted(params)[key_index % len(params)]
    position %= len(params[key])
    assume(params[key][position] != replacement)
    params[key] = params[key][:position] + replacement + params[key][position + 1 :]
    assert _verify(vectors[0], token, params=params) is False


# --- status callbacks (SYNTHETIC, see the module docstring) -------------------------------------

CALLBACK_URL = "https://care.example/inbound/phone/tok/twilio"


def _callback(status: str, **overrides: str) -> dict[str, str]:
    params = {
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "ApiVersion": "2010-04-01",
        "CallSid": "CA42f0c0ffee42f0c0ffee42f0c0ffee42",
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Direction": "inbound",
        "From": "+14158675309",
        "To": "+18005551212",
        "FromCountry": "US",
        "Timestamp": "Mon, 16 Aug 2010 03:45:01 +0000",
        "SequenceNumber": "0",
    }
    params.update(overrides)
    return params


def test_a_signed_synthetic_callback_verifies_and_parses():
    params = _callback(
        "completed", CallDuration="127", SequenceNumber="3", RecordingUrl="https://api.twilio.com/rec/RE1"
    )
    signature = compute_signature(auth_token="12345", url=CALLBACK_URL, params=params)
    assert verify_signature(auth_token="12345", url=CALLBACK_URL, params=params, signature=signature)

    [event] = parse_status_callback(params)
    assert event.provider == "twilio"
    assert event.call_id == "CA42f0c0ffee42f0c0ffee42f0c0ffee42"
    assert event.kind is CallEventKind.ENDED
    assert event.talk_seconds == 127
    assert event.sequence == 3
    assert event.occurred_at == datetime(2010, 8, 16, 3, 45, 1, tzinfo=UTC)
    assert (event.caller, event.caller_raw) == ("+14158675309", "+14158675309")
    assert (event.dialled, event.dialled_raw) == ("+18005551212", "+18005551212")
    assert event.recording_url == "https://api.twilio.com/rec/RE1"
    assert event.direction == "inbound"
    assert event.extra["AccountSid"] == "AC0123456789abcdef0123456789abcdef"
    assert event.extra["CallStatus"] == "completed"
    assert "CallSid" not in event.extra


@pytest.mark.parametrize(
    ("status", "direction", "kind"),
    [
        ("queued", "inbound", CallEventKind.QUEUED),
        ("initiated", "outbound-api", CallEventKind.OFFERED),
        ("ringing", "inbound", CallEventKind.RINGING),
        ("in-progress", "inbound", CallEventKind.ANSWERED),
        ("completed", "inbound", CallEventKind.ENDED),
        ("busy", "outbound-dial", CallEventKind.REJECTED),
        ("failed", "inbound", CallEventKind.REJECTED),
        ("no-answer", "inbound", CallEventKind.ABANDONED),
        ("canceled", "inbound", CallEventKind.ABANDONED),
        ("no-answer", "outbound-api", CallEventKind.ENDED),
        ("canceled", "outbound-dial", CallEventKind.ENDED),
    ],
)
def test_call_status_maps_to_the_documented_kind(status, direction, kind):
    [event] = parse_status_callback(_callback(status, Direction=direction))
    assert event.kind is kind
    assert event.direction == ("inbound" if direction == "inbound" else "outbound")
    if kind is CallEventKind.ENDED and status != "completed":
        assert event.talk_seconds == 0


def test_a_call_dialled_to_an_agent_client_names_the_agent():
    [event] = parse_status_callback(_callback("in-progress", Direction="outbound-dial", To="client:agent-7"))
    assert event.agent_ref == "client:agent-7"
    assert event.dialled == ""


def test_anonymous_caller_has_no_e164_but_keeps_the_raw_value():
    [event] = parse_status_callback(_callback("ringing", From="anonymous"))
    assert (event.caller, event.caller_raw) == ("", "anonymous")


def test_the_same_callback_twice_has_the_same_event_id_and_others_differ():
    first = parse_status_callback(_callback("ringing", SequenceNumber="1"))[0]
    again = parse_status_callback(_callback("ringing", SequenceNumber="1"))[0]
    answered = parse_status_callback(_callback("in-progress", SequenceNumber="2"))[0]
    other_call = parse_status_callback(_callback("ringing", SequenceNumber="1", CallSid="CA2"))[0]
    assert first == again
    assert first.event_id == again.event_id
    assert len({first.event_id, answered.event_id, other_call.event_id}) == 3


def test_event_id_without_sequence_uses_the_instant_whatever_the_offset():
    utc = CallEvent(
        provider="p",
        call_id="c",
        kind=CallEventKind.ENDED,
        occurred_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
    )
    plus_two = CallEvent(
        provider="p",
        call_id="c",
        kind=CallEventKind.ENDED,
        occurred_at=datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    assert plus_two.occurred_at.tzinfo is UTC
    assert utc.event_id == plus_two.event_id


def test_call_event_refuses_a_naive_time():
    naive = datetime(2024, 3, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        CallEvent(provider="p", call_id="c", kind=CallEventKind.ENDED, occurred_at=naive)


def test_missing_timestamp_uses_received_at_or_is_refused():
    params = _callback("ringing")
    del params["Timestamp"]
    received = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert parse_status_callback(params, received_at=received)[0].occurred_at == received
    with pytest.raises(ParseError, match="no Timestamp"):
        parse_status_callback(params)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CallSid": ""}, "has no CallSid"),
        ({"CallStatus": "exploded"}, "'exploded' is not one Care knows"),
        ({"CallStatus": ""}, "is not one Care knows"),
        ({"Timestamp": "yesterday"}, "not an RFC 2822 date"),
        ({"Timestamp": "Mon, 16 Aug 2010 03:45:01"}, "not an RFC 2822 date"),
        ({"SequenceNumber": "two"}, "SequenceNumber must be a whole number"),
    ],
)
def test_malformed_callbacks_raise_a_clear_parse_error(overrides, message):
    with pytest.raises(ParseError, match=message):
        parse_status_callback(_callback("ringing", **overrides))


def test_a_completed_call_with_a_bad_duration_is_refused():
    with pytest.raises(ParseError, match="CallDuration must be a whole number"):
        parse_status_callback(_callback("completed", CallDuration="1.5"))


def test_a_callback_without_callsid_key_at_all_is_refused():
    params = _callback("ringing")
    del params["CallSid"]
    with pytest.raises(ParseError, match="has no CallSid"):
        parse_status_callback(params)
