"""The phone inbound endpoints: authenticate, store raw first, apply; every bad input refused clearly."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from care.calls.models import Call, CallOutcome, PhoneLine
from care.connectors.dispatch import process_stored
from care.connectors.models import InboundMessage, InboundStatus
from care.connectors.phone.twilio import compute_signature
from care.connectors.phone.views import care_signature
from care.connectors.services import inbound_retry

pytestmark = pytest.mark.django_db

NUMBER_A = "+4940999000"
NUMBER_A2 = "+4940999001"
NUMBER_B = "+34911222333"


@pytest.fixture
def line_a(tenant_a):
    return PhoneLine.objects.create(
        tenant=tenant_a, number=NUMBER_A, name="ENN hotline", provider="generic", default_language="de"
    )


@pytest.fixture
def signed_line(tenant_a):
    return PhoneLine.objects.create(
        tenant=tenant_a,
        number="+4940999002",
        name="ENN signed",
        provider="generic",
        default_language="de",
        signing_secret="s3cret",
    )


@pytest.fixture
def line_b(tenant_b):
    return PhoneLine.objects.create(
        tenant=tenant_b, number=NUMBER_B, name="TSU linea", provider="generic", default_language="es"
    )


@pytest.fixture
def twilio_line(tenant_a):
    return PhoneLine.objects.create(
        tenant=tenant_a,
        number="+4940999003",
        name="ENN Twilio",
        provider="twilio",
        default_language="de",
        signing_secret="twilio-auth-token",
    )


def event(kind: str, at: str, *, call_id: str = "call-1", **fields: object) -> dict[str, object]:
    return {"call_id": call_id, "event": kind, "at": at, "caller": "+4917612345678", **fields}


CALL = [
    event("offered", "2025-03-03T09:00:00+01:00", dialled=NUMBER_A),
    event("answered", "2025-03-03T09:00:15+01:00", wait_seconds=15, dialled=NUMBER_A),
    event("ended", "2025-03-03T09:04:15+01:00", talk_seconds=240, dialled=NUMBER_A),
]


def post(client, line_or_token, payload, **headers):
    token = getattr(line_or_token, "inbound_token", line_or_token)
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(f"/inbound/phone/{token}/events", data=raw, content_type="application/json", **headers)


# --- success, repeats, order ----------------------------------------------------------------------


def test_events_build_one_call_and_store_the_raw_request(client, line_a):
    response = post(client, line_a, CALL)
    assert response.status_code == 200, response.content
    body = response.json()
    call = Call.objects.get()
    assert body == {"call": call.pk, "calls": [call.pk], "applied": 3, "duplicates": 0}
    assert (call.tenant_id, call.line_id, call.outcome, call.talk_seconds) == (
        line_a.tenant_id,
        line_a.pk,
        CallOutcome.ANSWERED,
        240,
    )
    stored = InboundMessage.objects.get()
    assert (stored.channel, stored.provider, stored.source, stored.status) == (
        "phone",
        "phone-generic",
        "webhook",
        InboundStatus.PROCESSED,
    )
    assert bytes(stored.raw) == json.dumps(CALL).encode()


def test_twice_delivered_request_changes_nothing(client, line_a):
    first = post(client, line_a, CALL)
    second = post(client, line_a, CALL)
    assert second.status_code == 200
    assert second.json() == {
        "call": first.json()["call"],
        "calls": [first.json()["call"]],
        "applied": 0,
        "duplicates": 3,
    }
    assert (Call.objects.count(), InboundMessage.objects.count()) == (1, 1)


def test_events_one_by_one_out_of_order_and_repeated_give_the_same_call(client, line_a):
    post(client, line_a, CALL)
    reference = Call.objects.values("outcome", "talk_seconds", "answered_at", "ended_at", "offered_at").get()
    Call.objects.all().delete()
    InboundMessage.objects.all().delete()
    for item in [CALL[2], CALL[0], CALL[2], CALL[1]]:
        assert post(client, line_a, item).status_code == 200
    assert Call.objects.count() == 1
    assert (
        Call.objects.values("outcome", "talk_seconds", "answered_at", "ended_at", "offered_at").get()
        == reference
    )
    # The repeat of "ended" is the same bytes: stored once, answered as a duplicate.
    assert InboundMessage.objects.count() == 3


def test_repeated_event_inside_different_requests_counts_as_duplicate(client, line_a):
    post(client, line_a, CALL[:2])
    response = post(client, line_a, CALL[1:])
    assert response.json()["applied"] == 1
    assert response.json()["duplicates"] == 1


# --- authentication: no side effects ---------------------------------------------------------------


def test_unknown_or_inactive_token_is_404_and_stores_nothing(client, line_a):
    assert post(client, "no-such-token", CALL).status_code == 404
    line_a.is_active = False
    line_a.save()
    response = post(client, line_a, CALL)
    assert response.status_code == 404
    assert "No active phone line" in response.json()["error"]
    assert InboundMessage.objects.count() == 0


def test_signed_line_missing_signature_401_wrong_403_nothing_stored(client, signed_line):
    raw = json.dumps(CALL[0]).encode()
    missing = post(client, signed_line, raw)
    wrong = post(client, signed_line, raw, HTTP_X_CARE_SIGNATURE="sha256=" + "0" * 64)
    other_body = post(client, signed_line, raw, HTTP_X_CARE_SIGNATURE=care_signature("s3cret", b"{}"))
    assert (missing.status_code, wrong.status_code, other_body.status_code) == (401, 403, 403)
    assert "X-Care-Signature" in missing.json()["error"]
    assert (InboundMessage.objects.count(), Call.objects.count()) == (0, 0)


def test_signed_line_with_the_right_signature(client, signed_line):
    raw = json.dumps(CALL[0] | {"dialled": "+4940999002"}).encode()
    response = post(client, signed_line, raw, HTTP_X_CARE_SIGNATURE=care_signature("s3cret", raw))
    assert response.status_code == 200
    assert Call.objects.get().line_id == signed_line.pk


# --- bad input: 400, stored and marked failed ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (json.dumps(event("exploded", "2025-03-03T09:00:00Z")).encode(), "not one Care knows"),
        (json.dumps(event("offered", "2025-03-03T09:00:00")).encode(), "no UTC offset"),
        (json.dumps([CALL[0], {"event": "ended"}]).encode(), "Event 2"),
        (b"[]", "empty"),
    ],
)
def test_malformed_input_is_400_stored_failed_and_applies_nothing(client, line_a, raw, message):
    response = post(client, line_a, raw)
    assert response.status_code == 400
    assert message in response.json()["error"]
    stored = InboundMessage.objects.get()
    assert stored.status == InboundStatus.FAILED
    assert message in stored.error
    assert bytes(stored.raw) == raw
    assert Call.objects.count() == 0  # an event list is applied whole or not at all


def test_empty_body_is_400_and_not_stored(client, line_a):
    response = post(client, line_a, b"  ")
    assert response.status_code == 400
    assert InboundMessage.objects.count() == 0


def test_get_is_not_allowed(client, line_a):
    assert client.get(f"/inbound/phone/{line_a.inbound_token}/events").status_code == 405


# --- the dialled number: lines of the same tenant only ----------------------------------------------


def test_dialled_number_of_another_line_of_the_tenant_goes_to_that_line(client, line_a, tenant_a):
    other = PhoneLine.objects.create(
        tenant=tenant_a, number=NUMBER_A2, name="ENN sales", provider="generic", default_language="de"
    )
    response = post(client, line_a, event("offered", "2025-03-03T09:00:00Z", dialled=NUMBER_A2))
    assert response.status_code == 200
    assert Call.objects.get().line_id == other.pk


def test_unknown_dialled_number_is_404_stored_failed_then_replayed_after_the_line_exists(
    client, line_a, tenant_a
):
    payload = event("offered", "2025-03-03T09:00:00Z", dialled=NUMBER_A2)
    response = post(client, line_a, payload)
    assert response.status_code == 404
    assert NUMBER_A2 in response.json()["error"]
    stored = InboundMessage.objects.get()
    assert stored.status == InboundStatus.FAILED
    assert Call.objects.count() == 0
    # Fix the cause (create the line), then replay the stored message as the admin's retry does.
    PhoneLine.objects.create(
        tenant=tenant_a, number=NUMBER_A2, name="ENN sales", provider="generic", default_language="de"
    )
    inbound_retry(message=stored)
    replayed = process_stored(stored.pk)
    assert replayed is not None
    assert replayed.status == InboundStatus.PROCESSED
    assert Call.objects.get().line.number == NUMBER_A2


def test_failed_message_is_reprocessed_when_the_provider_delivers_it_again(client, line_a, tenant_a):
    payload = event("offered", "2025-03-03T09:00:00Z", dialled=NUMBER_A2)
    assert post(client, line_a, payload).status_code == 404
    PhoneLine.objects.create(
        tenant=tenant_a, number=NUMBER_A2, name="ENN sales", provider="generic", default_language="de"
    )
    assert post(client, line_a, payload).status_code == 200
    assert (InboundMessage.objects.get().status, Call.objects.count()) == (InboundStatus.PROCESSED, 1)


def test_dialled_lookup_never_crosses_tenants(client, line_a, line_b):
    # Tenant B's number dialled on tenant A's token: not a line of A, so refused.
    response = post(client, line_a, event("offered", "2025-03-03T09:00:00Z", dialled=NUMBER_B))
    assert response.status_code == 404
    assert Call.objects.count() == 0


def test_token_of_tenant_b_cannot_create_calls_for_tenant_a(client, line_a, line_b):
    response = post(client, line_b, event("offered", "2025-03-03T09:00:00Z", dialled=NUMBER_A))
    assert response.status_code == 404
    response = post(client, line_b, event("offered", "2025-03-03T09:00:00Z", call_id="b-1"))
    assert response.status_code == 200
    assert list(Call.objects.values_list("tenant_id", flat=True)) == [line_b.tenant_id]
    assert not InboundMessage.objects.filter(tenant=line_a.tenant).exists()


# --- query count -----------------------------------------------------------------------------------


# Line, store (3), line on the summary, lock (2), line re-read, then call_event_apply's own queries.
QUERIES_ONE_EVENT = 18


def test_query_count_of_one_event(client, line_a, django_assert_num_queries):
    post(client, line_a, event("offered", "2025-03-03T08:59:00Z", call_id="warm-up"))
    with django_assert_num_queries(QUERIES_ONE_EVENT):
        response = post(client, line_a, event("offered", "2025-03-03T09:00:00Z"))
    assert response.status_code == 200


# --- Twilio ----------------------------------------------------------------------------------------

TWILIO_PARAMS = {
    "CallSid": "CA0123456789abcdef",
    "CallStatus": "completed",
    "CallDuration": "42",
    "From": "+4917612345678",
    "To": "+4940999003",
    "Direction": "inbound",
    "Timestamp": "Mon, 03 Mar 2025 08:05:00 +0000",
    "SequenceNumber": "3",
}


def post_twilio(client, line, params, signature=None, url=None):
    path = f"/inbound/phone/{line.inbound_token}/twilio"
    url = url or f"http://testserver{path}"
    if signature is None:
        signature = compute_signature(auth_token=line.signing_secret, url=url, params=params)
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def test_twilio_callback_with_a_valid_signature(client, twilio_line):
    response = post_twilio(client, twilio_line, TWILIO_PARAMS)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response/>" in response.content
    call = Call.objects.get()
    assert (call.provider, call.external_id, call.talk_seconds, call.line_id) == (
        "twilio",
        "CA0123456789abcdef",
        42,
        twilio_line.pk,
    )
    stored = InboundMessage.objects.get()
    assert (stored.provider, stored.source, stored.source_ref) == (
        "twilio-voice",
        "webhook",
        "CA0123456789abcdef",
    )
    # Twilio retries: the same callback again changes nothing.
    assert post_twilio(client, twilio_line, TWILIO_PARAMS).status_code == 200
    assert (Call.objects.count(), InboundMessage.objects.count()) == (1, 1)


def test_twilio_behind_a_tls_proxy_signs_the_https_url(client, twilio_line, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    path = f"/inbound/phone/{twilio_line.inbound_token}/twilio"
    url = f"https://testserver{path}"
    signature = compute_signature(auth_token=twilio_line.signing_secret, url=url, params=TWILIO_PARAMS)
    response = client.post(
        path,
        data=urlencode(TWILIO_PARAMS),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSBzaWduYXR1cmU="])
def test_twilio_bad_or_missing_signature_is_403_nothing_stored(client, twilio_line, signature):
    response = post_twilio(client, twilio_line, TWILIO_PARAMS, signature=signature)
    assert response.status_code == 403
    assert (InboundMessage.objects.count(), Call.objects.count()) == (0, 0)


def test_twilio_signature_over_other_params_is_403(client, twilio_line):
    url = f"http://testserver/inbound/phone/{twilio_line.inbound_token}/twilio"
    signature = compute_signature(auth_token=twilio_line.signing_secret, url=url, params=TWILIO_PARAMS)
    response = post_twilio(client, twilio_line, TWILIO_PARAMS | {"CallDuration": "4200"}, signature=signature)
    assert response.status_code == 403
    assert InboundMessage.objects.count() == 0


def test_twilio_endpoint_needs_a_twilio_line_with_an_auth_token(client, line_a, twilio_line):
    line_a.signing_secret = "x"
    line_a.save()
    assert post_twilio(client, line_a, TWILIO_PARAMS).status_code == 404
    twilio_line.signing_secret = ""
    twilio_line.save()
    assert post_twilio(client, twilio_line, TWILIO_PARAMS, signature="abc").status_code == 403
    assert InboundMessage.objects.count() == 0


def test_twilio_unknown_status_is_400_and_stored_failed(client, twilio_line):
    response = post_twilio(client, twilio_line, TWILIO_PARAMS | {"CallStatus": "exploded"})
    assert response.status_code == 400
    assert "exploded" in response.json()["error"]
    assert InboundMessage.objects.get().status == InboundStatus.FAILED
