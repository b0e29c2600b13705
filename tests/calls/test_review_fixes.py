"""Bugs found in review of the phone channel, each pinned by the test that failed before its fix:
presence around re-routing and transfers, wrap-up time, the agent of out-of-order transfers, and bad
input (out-of-range values) answering 400 rather than 503/500."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from care.accounts.models import Agent, Presence
from care.accounts.services import agent_set_presence
from care.calls.events import CallEvent, CallEventKind
from care.calls.models import Call, CallStatus, Campaign
from care.calls.services import call_event_apply
from care.connectors.models import InboundMessage, InboundStatus
from care.connectors.phone.twilio import compute_signature
from care.connectors.phone.views import care_signature
from tests.calls.conftest import T0, event
from tests.factories.accounts import make_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_agent(tenant_a) -> Agent:
    """Bob, tenant A, extension 202, online."""
    agent = make_agent(tenants=[tenant_a], email="bob@care.test")
    Agent.objects.filter(pk=agent.pk).update(phone_extension="202", presence=Presence.ONLINE)
    agent.refresh_from_db()
    return agent


def presence(agent: Agent) -> str:
    agent.refresh_from_db(fields=["presence"])
    return agent.presence


def apply(line, *events) -> Call:
    for item in events:
        call_event_apply(line=line, event=item)
    return Call.objects.get(tenant=line.tenant, external_id=events[0].call_id)


# --- presence -------------------------------------------------------------------------------------


def test_a_reserved_agent_is_freed_when_another_agent_answers(line, phone_agent, second_agent):
    # The router reserved alice (on_call from ringing); the PBX then gave the call to bob.
    agent_set_presence(agent=phone_agent, presence=Presence.ON_CALL)
    call = apply(
        line,
        event("ringing", 5, agent_ref=f"agent:{phone_agent.pk}"),
        event("answered", 20, agent_ref="202"),
    )
    assert call.agent_id == second_agent.pk
    assert presence(phone_agent) == Presence.ONLINE
    assert presence(second_agent) == Presence.ON_CALL


def test_a_transfer_puts_the_new_agent_on_call_and_frees_the_old(line, phone_agent, second_agent):
    call = apply(
        line,
        event("offered", 0),
        event("answered", 10, agent_ref="201"),
        event("transferred", 60, agent_ref="202"),
    )
    assert (call.status, call.agent_id) == (CallStatus.ANSWERED, second_agent.pk)
    assert presence(phone_agent) == Presence.ONLINE
    assert presence(second_agent) == Presence.ON_CALL
    apply(line, event("ended", 200, talk_seconds=180))
    assert presence(second_agent) == Presence.ONLINE


def test_a_late_transfer_event_names_the_same_agent_as_in_order(line, phone_agent, second_agent):
    answered, transferred, ended = (
        event("answered", 10, agent_ref="201"),
        event("transferred", 60, agent_ref="202"),
        event("ended", 200, talk_seconds=180),
    )
    in_order = apply(line, answered, transferred, ended)
    late = apply(
        line,
        *(
            event(
                e.kind,
                (e.occurred_at - answered.occurred_at).total_seconds() + 10,
                call_id="late",
                agent_ref=e.agent_ref,
            )
            for e in (answered, ended, transferred)
        ),
    )
    assert in_order.agent_id == late.agent_id == second_agent.pk
    assert late.agent_ref == "202"
    assert presence(phone_agent) == presence(second_agent) == Presence.ONLINE


# --- wrap-up --------------------------------------------------------------------------------------


def test_wrap_up_time_is_recorded_from_the_events(client, line, phone_agent):
    body = [
        {"call_id": "w-1", "event": "answered", "at": "2026-11-02T09:00:10Z", "agent": "201"},
        {
            "call_id": "w-1",
            "event": "ended",
            "at": "2026-11-02T09:03:10Z",
            "talk_seconds": 180,
            "wrapup_seconds": 45,
        },
    ]
    response = client.post(
        f"/inbound/phone/{line.inbound_token}/events", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert Call.objects.get(external_id="w-1").wrapup_seconds == 45


def test_wrap_up_merges_like_the_other_durations(line, phone_agent):
    call = apply(line, event("ended", 200, wrapup_seconds=30), event("answered", 10, agent_ref="201"))
    assert call.wrapup_seconds == 30
    call = apply(line, event("ended", 200, wrapup_seconds=20, sequence=9))  # a smaller report later
    assert call.wrapup_seconds == 30


def test_wrap_up_must_be_a_whole_number(client, line):
    body = {"call_id": "w-2", "event": "ended", "at": "2026-11-02T09:00:00Z", "wrapup_seconds": -1}
    response = client.post(
        f"/inbound/phone/{line.inbound_token}/events", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert "wrapup_seconds" in response.json()["error"]


# --- bad input is a 400 with a message, never a 500 or a "retry later" 503 ------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"talk_seconds": 10**12},
        {"wait_seconds": 2**31},
        {"at": "0001-01-01T00:30:00+01:00"},
        {"at": "9999-12-31T23:59:59-01:00"},
        {"recording_url": "https://rec.example/" + "a" * 2000},
        {"call_id": "c" * 201},
    ],
)
def test_out_of_range_values_are_refused_with_400(client, line, fields):
    body = {"call_id": "big", "event": "ended", "at": "2026-11-02T09:00:00Z", **fields}
    response = client.post(
        f"/inbound/phone/{line.inbound_token}/events", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert InboundMessage.objects.get().status == InboundStatus.FAILED
    assert not Call.objects.exists()


def test_deeply_nested_json_is_400(client, line):
    raw = b"[" * 100_000 + b"]" * 100_000
    signature = care_signature("", raw)  # unsigned line: the header is ignored
    response = client.post(
        f"/inbound/phone/{line.inbound_token}/events",
        raw,
        content_type="application/json",
        HTTP_X_CARE_SIGNATURE=signature,
    )
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_twilio_call_sid_too_long_for_the_records_is_400(client, tenant_a):
    from care.calls.models import PhoneLine

    line = PhoneLine.objects.create(
        tenant=tenant_a,
        number="+4940999003",
        name="Twilio",
        provider="twilio",
        default_language="de",
        signing_secret="tok",
    )
    params = {
        "CallSid": "CA" + "0" * 300,
        "CallStatus": "completed",
        "CallDuration": "99999999999",
        "From": "+4917612345678",
        "To": "+4940999003",
        "Timestamp": "Mon, 03 Mar 2025 08:05:00 +0000",
    }
    path = f"/inbound/phone/{line.inbound_token}/twilio"
    signature = compute_signature(auth_token="tok", url=f"http://testserver{path}", params=params)
    response = client.post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 400, response.content
    assert not Call.objects.exists()


def api_client(user) -> Client:
    client = Client()
    client.force_login(getattr(user, "user", user))
    return client


def test_outbound_with_a_huge_campaign_id_is_400(agent, tenant_a):
    Campaign.objects.create(tenant=tenant_a, name="Winter")
    body = {
        "tenant": "ENN",
        "dialled": "+4940123456789",
        "started_at": "2026-03-10T10:30:00+01:00",
        "talk_seconds": 10,
        "campaign": 10**20,
    }
    response = api_client(agent).post(
        "/api/calls/outbound", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert "campaign" in response.json()


def test_outbound_ending_after_the_last_representable_time_is_400(agent, tenant_a):
    body = {
        "tenant": "ENN",
        "dialled": "+4940123456789",
        "started_at": "9999-12-31T23:59:00Z",
        "talk_seconds": 3600,
    }
    response = api_client(agent).post(
        "/api/calls/outbound", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert "started_at" in response.json()


def test_codes_of_a_call_id_beyond_bigint_is_404(supervisor):
    response = api_client(supervisor).post(
        f"/api/calls/{10**25}/codes", json.dumps({"reason": ""}), content_type="application/json"
    )
    assert response.status_code == 404


# --- hold and resume out of order -----------------------------------------------------------------


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_held_then_resumed_gives_an_answered_call_in_any_order(line, phone_agent, order):
    events = [
        event("answered", 40, call_id=f"h-{order}", agent_ref="201"),
        event("held", 60, call_id=f"h-{order}"),
        event("resumed", 90, call_id=f"h-{order}"),
    ]
    call = apply(line, *(events[i] for i in order))
    assert call.status == CallStatus.ANSWERED
    assert call.answered_at == events[0].occurred_at


def test_a_call_still_on_hold_stays_on_hold_whatever_the_order(line, phone_agent):
    events = [
        event("answered", 40, call_id="h1", agent_ref="201"),
        event("held", 60, call_id="h1"),
        event("resumed", 90, call_id="h1"),
        event("held", 120, call_id="h1"),
    ]
    assert apply(line, *events).status == CallStatus.ON_HOLD
    late = [
        event(e.kind, (e.occurred_at - T0).total_seconds(), call_id="h2", agent_ref=e.agent_ref)
        for e in events
    ]
    assert apply(line, late[3], late[2], late[0], late[1]).status == CallStatus.ON_HOLD


# --- the router's reservation ---------------------------------------------------------------------


def _routed_line(tenant):
    from care.calls.models import PhoneLine

    PhoneLine.objects.create(
        tenant=tenant, number="+493012345678", name="Hotline", provider="generic", default_language="de"
    )
    return PhoneLine.objects.select_related("tenant").get(number="+493012345678")


def _free_phone_agent(tenant, idle_minutes: int) -> Agent:
    import datetime as dt

    from django.utils import timezone

    from care.core.channels import Channel

    agent = make_agent(tenants=[tenant], channels=[Channel.PHONE])
    Agent.objects.filter(pk=agent.pk).update(
        presence=Presence.ONLINE,
        presence_changed_at=timezone.now() - dt.timedelta(minutes=idle_minutes),
        phone_extension=f"{300 + agent.pk}",
    )
    agent.refresh_from_db()
    return agent


@pytest.mark.parametrize("ending", ["abandoned", "rejected", "voicemail", "ended"])
def test_a_routed_agent_is_freed_by_every_unanswered_end(tenant_a, ending):
    from django.utils import timezone

    from care.calls.routing import RingingCall, route_ringing_call

    line = _routed_line(tenant_a)
    agent = _free_phone_agent(tenant_a, 10)
    answer = route_ringing_call(line=line, ringing=RingingCall(call_id="r-1", caller="+4915112345678"))
    assert answer.agent is not None
    assert presence(agent) == Presence.ON_CALL
    call_event_apply(
        line=line,
        event=CallEvent(
            provider=line.provider, call_id="r-1", kind=CallEventKind(ending), occurred_at=timezone.now()
        ),
    )
    assert presence(agent) == Presence.ONLINE


def test_asking_again_for_an_unanswered_call_frees_the_first_agent(tenant_a):
    from care.calls.routing import RingingCall, route_ringing_call

    line = _routed_line(tenant_a)
    first, second = _free_phone_agent(tenant_a, 30), _free_phone_agent(tenant_a, 10)
    ringing = RingingCall(call_id="r-2", caller="+4915112345678")
    assert route_ringing_call(line=line, ringing=ringing).agent.pk == first.pk
    # The first agent did not pick up; the telephone system asks again and gets the second.
    assert route_ringing_call(line=line, ringing=ringing).agent.pk == second.pk
    assert presence(first) == Presence.ONLINE
    assert presence(second) == Presence.ON_CALL
    assert Call.objects.get(external_id="r-2").agent_id == second.pk


# --- CDR rows the call records cannot hold are row errors, the rest of the file imports ------------


def _cdr_row(uniqueid: str, *, billsec: str = "60", disposition: str = "ANSWERED") -> str:
    return (
        f'"","+4930123456","200","from-internal","","SIP/a","SIP/200-1","Dial","SIP/200",'
        f'"2025-03-03 09:00:00","2025-03-03 09:00:05","2025-03-03 09:01:05",65,{billsec},'
        f'"{disposition}","DOCUMENTATION","{uniqueid}",""\n'
    )


def test_cdr_rows_without_a_uniqueid_or_with_huge_numbers_are_row_errors(tenant_a, tmp_path):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from care.calls.models import PhoneLine

    PhoneLine.objects.create(
        tenant=tenant_a, number="+4940777000", name="PBX", provider="asterisk", default_language="de"
    )
    path = tmp_path / "Master.csv"
    path.write_text(
        _cdr_row("1700000000.1")
        + _cdr_row("")
        + _cdr_row("1700000100.3", billsec="99999999999")
        + _cdr_row("1700000200.4", disposition="NO ANSWER")
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 row"):
        call_command(
            "import_cdr", "--format", "asterisk", str(path), "--line", "+4940777000", "--json", stdout=out
        )
    result = json.loads(out.getvalue())
    assert result["status"] == "imported"
    assert len(result["errors"]) == 2
    assert all(error.startswith("Line ") for error in result["errors"]), result["errors"]
    assert sorted(Call.objects.values_list("external_id", flat=True)) == ["1700000000.1", "1700000200.4"]


@pytest.mark.parametrize(
    "raw",
    [b"[" * 5000 + b"]" * 5000, b'{"call_id": "\xff\xfe"}', b"null", b'{"call_id": null}', b"1e999"],
)
def test_odd_bodies_to_the_route_endpoint_are_400(client, tenant_a, raw):
    line = _routed_line(tenant_a)
    response = client.post(f"/inbound/phone/{line.inbound_token}/route", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]


# --- the wait, as the figures define it (care/reporting/call_figures.py) ----------------------------


def test_a_voicemail_or_rejected_call_has_no_computed_wait(line):
    # The end of a voicemail call includes the message; a rejected call never waited.
    voicemail = apply(line, event("offered", 0, call_id="v"), event("voicemail", 20, call_id="v"),
                      event("ended", 110, call_id="v"))  # fmt: skip
    rejected = apply(line, event("offered", 0, call_id="r"), event("rejected", 8, call_id="r"))
    assert voicemail.queue_wait_seconds is None
    assert rejected.queue_wait_seconds is None
    reported = apply(line, event("voicemail", 20, call_id="w", wait_seconds=14))
    assert reported.queue_wait_seconds == 14


def test_an_abandoned_call_exactly_at_the_short_threshold_is_short_and_gets_no_callback(line):
    # call_figures counts a wait of at most short_abandon_seconds as a short abandon.
    call = apply(line, event("offered", 0, call_id="a5"), event("abandoned", 5, call_id="a5"))
    assert call.queue_wait_seconds == 5
    assert call.ticket is None
    call = apply(line, event("offered", 0, call_id="a6"), event("abandoned", 6, call_id="a6"))
    assert call.ticket is not None


def test_a_twilio_timestamp_that_cannot_be_moved_to_utc_is_a_parse_error():
    from care.calls.events import ParseError
    from care.connectors.phone.twilio import parse_status_callback

    params = {"CallSid": "CA1", "CallStatus": "ringing", "Timestamp": "Fri, 31 Dec 9999 23:59:59 -0100"}
    with pytest.raises(ParseError, match="Timestamp"):
        parse_status_callback(params)


def test_a_line_of_a_deactivated_tenant_takes_no_events(client, line):
    # As the route endpoint: a client whose contract ended gets 404 and nothing is stored.
    line.tenant.is_active = False
    line.tenant.save(update_fields=["is_active"])
    body = {"call_id": "x", "event": "offered", "at": "2026-11-02T09:00:00Z"}
    response = client.post(
        f"/inbound/phone/{line.inbound_token}/events", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


def test_a_transferred_call_with_hold_and_wrap_up_is_the_same_in_any_order(line, phone_agent, second_agent):
    import itertools
    import random

    def events(call_id: str) -> list:
        return [
            event("offered", 0, call_id=call_id, ivr_digits="1"),
            event("answered", 10, call_id=call_id, agent_ref="201"),
            event("held", 30, call_id=call_id, agent_ref="201"),
            event("resumed", 50, call_id=call_id),
            event("transferred", 70, call_id=call_id, agent_ref="202"),
            event("ended", 200, call_id=call_id, talk_seconds=170, hold_seconds=20, wrapup_seconds=25),
        ]

    fields = ("status", "outcome", "agent_id", "agent_ref", "answered_at", "ended_at", "queue_wait_seconds",
              "talk_seconds", "hold_seconds", "wrapup_seconds", "agent_named_at")  # fmt: skip
    expected = apply(line, *events("in-order"))
    assert (expected.agent_id, expected.wrapup_seconds) == (second_agent.pk, 25)
    orders = list(itertools.permutations(range(6)))
    for number, order in enumerate(random.Random(11).sample(orders, 25)):
        items = events(f"p-{number}")
        call = apply(line, *(items[i] for i in order))
        assert [getattr(call, f) for f in fields] == [getattr(expected, f) for f in fields], order
    assert presence(phone_agent) == presence(second_agent) == Presence.ONLINE
