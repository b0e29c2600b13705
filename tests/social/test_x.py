"""X (Twitter) adapter: Zammad's real Account Activity events, the CRC and the signature, API v2 DMs.

The events in ../shared/corpus/social/twitter/zammad/webhook_events/ are Zammad's test data (the
.json conversions of its .yml files); what Zammad's twitter_spec.rb asserts about them is in
EXPECTED-zammad.json and is asserted here, or, where Care deliberately differs, the difference is
asserted in one commented line. The CRC and signature vectors are computed with the algorithm of
X's documentation (no published vector exists in the corpus). X's HTTP API is mocked at the HTTP
boundary with ``responses``; the exact request is asserted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from care.connectors.social import x
from care.connectors.social.base import (
    Credentials,
    DeliveryState,
    MediaRef,
    OutboundMessage,
    Parsed,
    ParseError,
    SendError,
    SignatureError,
    WebhookRequest,
)
from care.connectors.social.x import ADAPTER
from tests.social.corpus import corpus_file, corpus_files, corpus_json

SECRET = "consumer-secret-0123456789"
BEARER = "user-context-bearer-token"
CREDENTIALS = Credentials(account_id="2975699229", app_secret=SECRET, access_token=BEARER)
ACCOUNT = "2975699229"  # @ScruffyMcG, the subscribed account in every sample
CUSTOMER = "1205290247124217856"  # @pennbrooke1
CONVERSATION = f"{ACCOUNT}-{CUSTOMER}"

SAMPLES = corpus_files("twitter/zammad/webhook_events")


def _parse(name: str) -> Parsed:
    return ADAPTER.parse(corpus_file(f"twitter/zammad/webhook_events/{name}.json").read_bytes())


def _facts() -> str:
    document = corpus_json("EXPECTED-zammad.json")
    section = next(value for key, value in document.items() if key.startswith("twitter/"))
    return str(section["note"])


def _sign(payload: bytes, secret: str = SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def session():
    with requests.Session() as client:
        yield client


# -- the corpus ---------------------------------------------------------------------------------


def test_the_corpus_is_there():
    assert len(SAMPLES) == 19


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.stem)
def test_every_event_parses_the_same_twice(path: Path):
    first, second = ADAPTER.parse(path.read_bytes()), ADAPTER.parse(path.read_bytes())
    assert first == second  # the same event posted twice gives the same external ids: no duplicate
    assert first.messages or first.statuses or first.ignored
    for message in first.messages:
        assert (message.platform, message.account_id) == ("x", ACCOUNT)
        assert message.sender_id != ACCOUNT  # always the customer, even on the account's own messages
        assert message.occurred_at.tzinfo is not None
        assert message.text or message.attachments


def test_an_incoming_dm_is_one_message_from_the_unknown_sender():
    assert "direct_message-incoming creates 1 ticket" in _facts()
    (message,) = _parse("direct_message-incoming").messages
    assert message.external_id == "1206724334791753732"
    assert (message.sender_id, message.sender_name, message.data["screen_name"]) == (
        CUSTOMER,
        "pennbrooke",
        "pennbrooke1",
    )
    assert message.text == "Yes, you are!"
    assert (message.kind, message.from_account) == ("text", False)
    assert message.conversation_id == CONVERSATION  # X's dm_conversation_id: the two ids sorted
    assert message.occurred_at == dt.datetime(2019, 12, 16, 23, 54, 35, 925000, tzinfo=dt.UTC)


def test_the_second_dm_is_the_same_sender_and_conversation():
    assert "direct_message-incoming_2 is a reply in the same thread" in _facts()
    (first,) = _parse("direct_message-incoming").messages
    (second,) = _parse("direct_message-incoming_2").messages
    assert (second.sender_id, second.conversation_id) == (first.sender_id, first.conversation_id)
    assert second.external_id != first.external_id
    assert second.text == "and I'm a hungry, hungry hippo!"


def test_an_outgoing_dm_is_imported_as_the_accounts_own():
    assert "direct_message-outgoing (sent by the connected account) is imported" in _facts()
    (message,) = _parse("direct_message-outgoing").messages
    assert message.from_account is True
    assert (message.sender_id, message.sender_name) == (CUSTOMER, "pennbrooke")  # the customer it went to
    assert message.text == "I'm a banana!"
    assert message.conversation_id == CONVERSATION
    assert message.data["source_app_id"] == "3033300"


def test_a_dm_link_is_expanded():
    assert "*_with_url expands t.co short links" in _facts()
    (message,) = _parse("direct_message-incoming_with_url").messages
    assert message.text == "Did you know about this? https://en.wikipedia.org/wiki/Frankenstein#Composition"
    assert "t.co" not in message.text


def test_a_dm_with_media_carries_the_jpg():
    assert "*_with_media carries a JPG attachment" in _facts()
    (message,) = _parse("direct_message-incoming_with_media").messages
    (attachment,) = message.attachments
    assert attachment.url.startswith("https://pbs.twimg.com/dm_gif_preview/1209117874389843969/")
    assert attachment.filename.endswith(".jpg")
    assert attachment.mime_type == "image/jpeg"
    assert attachment.kind == "image"
    assert message.data["video_url"].endswith(".mp4")  # the GIF itself, for the agent
    # Care differs: the t.co link standing for the attachment is dropped, not expanded into the text.
    assert message.text == ""
    assert message.kind == "image"


def test_a_mention_is_a_message():
    assert "tweet_create-user_mention creates 1 ticket" in _facts()
    (message,) = _parse("tweet_create-user_mention").messages
    assert (message.external_id, message.kind, message.sender_id) == (
        "1205348660982083584",
        "mention",
        CUSTOMER,
    )
    assert message.text == "@ScruffyMcG This is a test of Twitter API webhooks."
    assert message.data["public"] is True
    assert message.conversation_id == CONVERSATION


def test_a_response_to_a_mention_continues_from_the_same_sender():
    assert "tweet_create-response continues the thread" in _facts()
    (mention,) = _parse("tweet_create-user_mention").messages
    (response,) = _parse("tweet_create-response").messages
    assert response.sender_id == mention.sender_id
    assert response.reply_to == mention.external_id == response.data["in_reply_to_status_id"]
    assert response.text == "@ScruffyMcG This is only a test."


def test_a_mention_link_is_expanded():
    (message,) = _parse("tweet_create-user_mention_with_url").messages
    assert message.text == "@ScruffyMcG https://zammad.org/"


def test_an_extended_mention_has_its_full_text():
    (message,) = _parse("tweet_create-user_mention_extended").messages
    assert message.text.endswith('The full tweet body is passed in an "extended_tweet" property.')
    assert "…" not in message.text


def test_a_mention_with_media_carries_the_jpg():
    (message,) = _parse("tweet_create-user_mention_with_media").messages
    (attachment,) = message.attachments
    assert attachment.url == "https://pbs.twimg.com/tweet_video_thumb/EMeXU-7UYAEm71w.jpg"
    assert attachment.filename == "EMeXU-7UYAEm71w.jpg"
    assert message.text == "@ScruffyMcG"


def test_a_mention_of_several_accounts():
    (message,) = _parse("tweet_create-user_mention_multiple").messages
    assert message.sender_id == CUSTOMER


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("tweet_create-retweet", "tweet_create_events (retweet)"),
        ("tweet_create-outgoing", "tweet_create_events (the account's own tweet)"),
        ("tweet_create-user_mention_outgoing", "tweet_create_events (the account's own tweet)"),
        ("direct_message_indicate_typing", "direct_message_indicate_typing_events"),
        ("favorited", "favorite_events"),
        ("follow", "follow_events"),
        ("follow-unfollow", "follow_events"),
    ],
)
def test_what_is_not_a_customer_message_is_ignored_and_named(name: str, label: str):
    assert _parse(name) == Parsed(ignored=(label,))


def test_mark_read_is_a_read_status_of_the_last_read_dm():
    (status,) = _parse("direct_message_mark_read").statuses
    (outgoing,) = _parse("direct_message-outgoing").messages
    assert status.external_id == outgoing.external_id == "1206724203514228741"
    assert (status.state, status.recipient_id, status.account_id) == (DeliveryState.READ, CUSTOMER, ACCOUNT)
    assert status.occurred_at == dt.datetime(2019, 12, 16, 23, 54, 5, 711000, tzinfo=dt.UTC)


def test_the_account_reading_is_not_a_status():
    event = {
        "created_timestamp": "1",
        "sender_id": ACCOUNT,
        "target": {"recipient_id": CUSTOMER},
        "last_read_event_id": "5",
    }
    parsed = ADAPTER.parse(
        json.dumps({"for_user_id": ACCOUNT, "direct_message_mark_read_events": [event]}).encode()
    )
    assert parsed.statuses == ()
    assert len(parsed.ignored) == 1


def test_a_tweet_not_addressed_to_the_account_is_ignored():
    tweet = {
        "id_str": "9",
        "text": "hello world",
        "timestamp_ms": "1",
        "user": {"id_str": "77"},
        "entities": {"user_mentions": []},
    }
    parsed = ADAPTER.parse(json.dumps({"for_user_id": ACCOUNT, "tweet_create_events": [tweet]}).encode())
    assert parsed == Parsed(ignored=("tweet_create_events (not addressed to the account)",))


def test_the_accounts_reply_to_a_customer_is_imported_as_its_own():
    tweet = {
        "id_str": "10",
        "text": "@pennbrooke1 We are on it",
        "timestamp_ms": "1577113612532",
        "user": {"id_str": ACCOUNT, "name": "Ryan Lue"},
        "in_reply_to_user_id_str": CUSTOMER,
        "in_reply_to_screen_name": "pennbrooke1",
        "in_reply_to_status_id_str": "1205348660982083584",
    }
    (message,) = ADAPTER.parse(
        json.dumps({"for_user_id": ACCOUNT, "tweet_create_events": [tweet]}).encode()
    ).messages
    assert (message.from_account, message.sender_id, message.reply_to) == (
        True,
        CUSTOMER,
        "1205348660982083584",
    )


def test_several_events_in_one_body_come_in_order():
    dm = corpus_json("twitter/zammad/webhook_events/direct_message-incoming.json")
    dm2 = corpus_json("twitter/zammad/webhook_events/direct_message-incoming_2.json")
    body = {**dm, "direct_message_events": dm["direct_message_events"] + dm2["direct_message_events"]}
    parsed = ADAPTER.parse(json.dumps(body).encode())
    assert [message.external_id for message in parsed.messages] == [
        "1206724334791753732",
        "1207556329834835973",
    ]


def test_unknown_event_kinds_are_named():
    parsed = ADAPTER.parse(json.dumps({"for_user_id": ACCOUNT, "brand_new_events": [{}]}).encode())
    assert parsed == Parsed(ignored=("brand_new_events",))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"direct_message_events": []}',
        b'{"for_user_id": "1", "direct_message_events": {}}',
        b'{"for_user_id": "1", "direct_message_events": ["x"]}',
        b'{"for_user_id": "1", "direct_message_events": [{"type": "message_create", "id": "1"}]}',
        b'{"for_user_id": "1", "direct_message_events": [{"type": "message_create", "id": "1",'
        b' "message_create": {"sender_id": "2", "target": {"recipient_id": "1"}}}]}',
        b'{"for_user_id": "1", "tweet_create_events": [{"text": "no id"}]}',
        b'{"for_user_id": "1", "direct_message_mark_read_events": [{"sender_id": "2"}]}',
        b"\x80",
    ],
)
def test_malformed_events_are_parse_errors(body: bytes):
    with pytest.raises(ParseError):
        ADAPTER.parse(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
_dm_like = st.fixed_dictionaries(
    {"type": st.just("message_create") | _json, "id": st.text(max_size=5) | st.integers()},
    optional={
        "created_timestamp": st.integers() | st.text(max_size=20) | _json,
        "message_create": st.fixed_dictionaries(
            {},
            optional={
                "sender_id": st.sampled_from([ACCOUNT, CUSTOMER]) | _json,
                "target": st.fixed_dictionaries(
                    {}, optional={"recipient_id": st.sampled_from([ACCOUNT, CUSTOMER]) | _json}
                ),
                "message_data": st.fixed_dictionaries(
                    {},
                    optional={
                        "text": _json,
                        "entities": _json,
                        "attachment": _json,
                        "quick_reply_response": _json,
                    },
                ),
            },
        )
        | _json,
    },
)
_tweet_like = st.fixed_dictionaries(
    {
        "id_str": st.text(max_size=5),
        "user": st.fixed_dictionaries({"id_str": st.sampled_from([ACCOUNT, CUSTOMER])}),
    },
    optional={
        "text": _json,
        "timestamp_ms": st.text(max_size=20) | st.integers(),
        "entities": _json,
        "extended_tweet": _json,
        "extended_entities": _json,
        "in_reply_to_user_id_str": st.sampled_from([ACCOUNT, CUSTOMER]) | _json,
        "retweeted_status": _json,
    },
)
_payload_like = st.fixed_dictionaries(
    {"for_user_id": st.just(ACCOUNT) | _json},
    optional={
        "direct_message_events": st.lists(_dm_like, max_size=2) | _json,
        "tweet_create_events": st.lists(_tweet_like, max_size=2) | _json,
        "direct_message_mark_read_events": _json,
        "users": _json,
    },
)


def _parse_or_error(body: bytes) -> None:
    try:
        parsed = ADAPTER.parse(body)
    except ParseError:
        return
    assert isinstance(parsed, Parsed)
    for message in parsed.messages:
        assert message.external_id
        assert message.sender_id
        assert message.occurred_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_parses_or_is_a_parse_error(value: Any):
    _parse_or_error(json.dumps(value).encode())


@settings(max_examples=150, deadline=None)
@given(_payload_like)
def test_any_activity_shaped_body_parses_or_is_a_parse_error(value: Any):
    _parse_or_error(json.dumps(value).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_a_parse_error(body: bytes):
    _parse_or_error(body)


# -- CRC and signature ---------------------------------------------------------------------------


def _get(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="GET", body=b"", headers={}, query=query)


def test_the_crc_answer_is_the_hmac_of_the_token():
    answer = ADAPTER.handshake(_get({"crc_token": "9b4507b3-9040-4669-9ca3-6b7ba1a3c2f6"}), CREDENTIALS)
    assert (answer.status, answer.content_type) == (200, "application/json")
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"9b4507b3-9040-4669-9ca3-6b7ba1a3c2f6", hashlib.sha256).digest()
    ).decode()
    assert json.loads(answer.body) == {"response_token": f"sha256={expected}"}


def test_a_crc_without_a_token_is_a_parse_error():
    with pytest.raises(ParseError):
        ADAPTER.handshake(_get({}), CREDENTIALS)


def test_a_crc_without_a_secret_is_refused():
    with pytest.raises(SignatureError):
        ADAPTER.handshake(_get({"crc_token": "abc"}), Credentials(account_id=ACCOUNT))


def _post(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", body=body, headers=headers, query={})


def test_a_signed_body_passes():
    body = corpus_file("twitter/zammad/webhook_events/direct_message-incoming.json").read_bytes()
    ADAPTER.verify(_post(body, {"x-twitter-webhooks-signature": _sign(body)}), CREDENTIALS)
    ADAPTER.verify(_post(body, {"X-Twitter-Webhooks-Signature": _sign(body)}), CREDENTIALS)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-twitter-webhooks-signature": ""},
        {"x-twitter-webhooks-signature": _sign(b'{"other": 1}')},
        {"x-twitter-webhooks-signature": _sign(b'{"for_user_id": "1"}', secret="another secret")},
        {"x-twitter-webhooks-signature": _sign(b'{"for_user_id": "1"}').replace("sha256=", "")},
    ],
)
def test_a_wrong_or_missing_signature_is_refused(headers: dict[str, str]):
    with pytest.raises(SignatureError) as error:
        ADAPTER.verify(_post(b'{"for_user_id": "1"}', headers), CREDENTIALS)
    assert error.value.status == 403


def test_no_secret_refuses_even_a_signed_body():
    body = b'{"for_user_id": "1"}'
    with pytest.raises(SignatureError):
        ADAPTER.verify(
            _post(body, {"x-twitter-webhooks-signature": _sign(body, secret="")}), Credentials(account_id="1")
        )


def test_platform_rules():
    assert (ADAPTER.platform, ADAPTER.reply_window) == ("x", None)
    assert 0 < ADAPTER.rate_per_second <= 1


# -- sending -----------------------------------------------------------------------------------

SEND_URL = f"https://api.x.com/2/dm_conversations/with/{CUSTOMER}/messages"


def test_send_a_dm(api, session):
    api.post(
        SEND_URL,
        status=201,
        json={"data": {"dm_conversation_id": CONVERSATION, "dm_event_id": "1582838360656244736"}},
    )
    result = ADAPTER.send(
        session,
        CREDENTIALS,
        OutboundMessage(recipient_id=CUSTOMER, conversation_id=CONVERSATION, text="Hello!"),
    )
    assert result.external_id == "1582838360656244736"
    (call,) = api.calls
    assert call.request.url == SEND_URL
    assert call.request.headers["Authorization"] == f"Bearer {BEARER}"
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {"text": "Hello!"}


def test_send_uses_the_accounts_api_base(api, session):
    api.post(
        f"https://x.example/2/dm_conversations/with/{CUSTOMER}/messages",
        status=201,
        json={"data": {"dm_event_id": "1"}},
    )
    credentials = Credentials(account_id=ACCOUNT, access_token=BEARER, api_base="https://x.example/2/")
    assert (
        ADAPTER.send(session, credentials, OutboundMessage(recipient_id=CUSTOMER, text="Hi")).external_id
        == "1"
    )


def test_media_goes_out_as_a_link(api, session):
    api.post(SEND_URL, status=201, json={"data": {"dm_event_id": "2"}})
    message = OutboundMessage(
        recipient_id=CUSTOMER,
        text="Your label",
        media_url="https://cdn.example/label.pdf",
        media_kind="document",
    )
    ADAPTER.send(session, CREDENTIALS, message)
    assert json.loads(api.calls[0].request.body) == {"text": "Your label\nhttps://cdn.example/label.pdf"}


def test_too_many_requests_waits_for_the_reset(api, session):
    reset = int(time.time()) + 120
    api.post(
        SEND_URL,
        status=429,
        json={
            "title": "Too Many Requests",
            "detail": "Too Many Requests",
            "type": "about:blank",
            "status": 429,
        },
        headers={"x-rate-limit-reset": str(reset)},
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert error.value.retryable is True
    assert error.value.retry_after is not None
    assert 100 <= error.value.retry_after <= 120


def test_a_server_error_is_retryable(api, session):
    api.post(SEND_URL, status=503, body="Service Unavailable")
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert error.value.retryable is True


def test_a_refusal_is_final_with_xs_detail(api, session):
    detail = "You are not permitted to send Direct Messages to this user."
    api.post(
        SEND_URL,
        status=403,
        json={"detail": detail, "title": "Forbidden", "type": "about:blank", "status": 403},
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert error.value.retryable is False
    assert detail in str(error.value)


def test_a_refusal_with_an_errors_list(api, session):
    api.post(SEND_URL, status=400, json={"errors": [{"message": "text: must not be blank"}], "title": ""})
    with pytest.raises(SendError, match="must not be blank"):
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))


def test_a_network_error_is_retryable(api, session):
    api.post(SEND_URL, body=requests.ConnectTimeout("timed out"))
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert error.value.retryable is True
    assert BEARER not in str(error.value)


@pytest.mark.parametrize(
    ("message", "credentials"),
    [
        (OutboundMessage(recipient_id=CUSTOMER, text=" "), CREDENTIALS),
        (OutboundMessage(recipient_id="", text="Hi"), CREDENTIALS),
        (OutboundMessage(recipient_id=CUSTOMER, text="x" * 10_001), CREDENTIALS),
        (OutboundMessage(recipient_id=CUSTOMER, text="Hi"), Credentials(account_id=ACCOUNT)),
    ],
)
def test_what_cannot_be_sent_is_refused_before_any_request(api, session, message, credentials):
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, credentials, message)
    assert error.value.retryable is False
    assert len(api.calls) == 0


# -- downloading -------------------------------------------------------------------------------


def test_download_the_attachment_with_the_bearer(api, session):
    (message,) = _parse("direct_message-incoming_with_media").messages
    media = message.attachments[0]
    api.get(media.url, body=b"\xff\xd8\xff", content_type="image/jpeg")
    downloaded = ADAPTER.download(session, CREDENTIALS, media)
    assert (downloaded.content, downloaded.mime_type) == (b"\xff\xd8\xff", "image/jpeg")
    assert downloaded.filename == media.filename
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {BEARER}"


def test_download_over_the_cap_is_refused(api, session, monkeypatch):
    monkeypatch.setattr(x, "MAX_DOWNLOAD", 4)
    api.get("https://ton.twitter.com/i/ton/data/dm/1/2/a.mp4", body=b"12345", content_type="video/mp4")
    with pytest.raises(SendError) as error:
        ADAPTER.download(
            session,
            CREDENTIALS,
            MediaRef(kind="video", url="https://ton.twitter.com/i/ton/data/dm/1/2/a.mp4"),
        )
    assert error.value.retryable is False


def test_download_failures(api, session):
    url = "https://pbs.twimg.com/media/a.jpg"
    api.get(url, status=404)
    with pytest.raises(SendError) as missing:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="image", url=url))
    assert missing.value.retryable is False
    api.get(url, status=500)
    with pytest.raises(SendError) as failed:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="image", url=url))
    assert failed.value.retryable is True
    with pytest.raises(SendError):
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="image", media_id="no-url"))
