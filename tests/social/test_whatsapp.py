"""WhatsApp Cloud API adapter: the shared corpus against its expectations, webhook authentication,
malformed input, and the Graph API calls for replies and media (mocked at the HTTP boundary)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses import matchers

from care.connectors.social.base import (
    Credentials,
    InboundSocialMessage,
    MediaRef,
    OutboundMessage,
    Parsed,
    ParseError,
    SendError,
    SignatureError,
    WebhookRequest,
)
from care.connectors.social.whatsapp import ADAPTER, GRAPH_API, MAX_MEDIA_BYTES
from tests.social.corpus import corpus_files, corpus_json

SAMPLES = corpus_files("whatsapp/pywa")
SECRET = "app-secret"
CREDENTIALS = Credentials(
    account_id="1122334455667", app_secret=SECRET, verify_token="verify-me", access_token="token-123"
)
AUTH = {"Authorization": "Bearer token-123"}
SEND_URL = f"{GRAPH_API}/1122334455667/messages"


def _expected() -> dict[str, Any]:
    return corpus_json("whatsapp/expected.json")  # type: ignore[no-any-return]


def _utc(seconds: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def _post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {} if signature is None else {"x-hub-signature-256": signature}
    return WebhookRequest(method="POST", body=body, headers=headers, query={})


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _wrap(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1122334455667"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "491701234567"}],
        "messages": list(messages),
    }
    if statuses is not None:
        value["statuses"] = statuses
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def _one(message: dict[str, Any]) -> InboundSocialMessage:
    base = {"from": "491701234567", "id": "wamid.1", "timestamp": "1700000000"}
    parsed = ADAPTER.parse(_wrap({**base, **message}))
    assert len(parsed.messages) == 1
    return parsed.messages[0]


# -- the corpus ------------------------------------------------------------------------------------


def test_every_sample_has_an_expectation() -> None:
    if not SAMPLES:
        pytest.skip("social corpus missing")
    names = {f"pywa/{path.name}" for path in SAMPLES}
    assert names == set(_expected())


def _check_message(message: InboundSocialMessage, event: dict[str, Any]) -> None:
    data = message.data
    assert message.platform == "whatsapp"
    assert message.account_id == event["phone_number_id"]
    assert data["waba_id"] == event["waba_id"]
    assert message.sender_id == event["sender"]
    assert message.conversation_id == event["sender"]
    assert message.sender_name == (event["sender_name"] or "")
    assert message.occurred_at == _utc(event["timestamp"])
    assert message.occurred_at.tzinfo is not None
    assert not message.from_account
    assert message.text or message.attachments  # never empty: a caption, a file or a description
    media = event.get("media")
    if event["type"] == "audio" and media and media.get("voice"):
        assert message.kind == "voice"  # Care deliberately names recorded voice notes "voice", not "audio"
    else:
        assert message.kind == event["type"]
    if "text" in event:
        assert message.text == event["text"]
    if "button_payload" in event:
        assert data["payload"] == event["button_payload"]
    if "interactive" in event:
        for key, value in event["interactive"].items():
            assert data["interactive"].get(key) == value, key
    if media:
        (attachment,) = message.attachments
        assert attachment.media_id == media["id"]
        assert attachment.mime_type == media["mime_type"]
        assert attachment.filename == (media.get("filename") or "")
        assert attachment.url == (media.get("url") or "")
        assert attachment.caption == (media.get("caption") or "")
        assert bool(data.get("animated")) == bool(media.get("animated"))
    else:
        assert message.attachments == ()
    if "location" in event:
        assert data["location"] == {k: v for k, v in event["location"].items() if v is not None}
        assert message.text.startswith("📍")
    if "contacts" in event:
        # Every name, phone or address the expectation names is in Care's data and text.
        leaves = _string_leaves(event["contacts"])
        dumped = json.dumps(data["contacts"], ensure_ascii=False)
        assert all(leaf in dumped for leaf in leaves)
    if "reaction" in event:
        assert data["reaction"] == event["reaction"]
    if "reply_to" in event:
        assert message.reply_to == (event["reply_to"] or "")
    if "forwarded" in event:
        assert data.get("forwarded", False) is event["forwarded"]
    if "errors" in event:
        assert [{"code": e["code"], "title": e["title"]} for e in data["errors"]] == event["errors"]
    if event["type"] == "unsupported":
        assert "131051" in message.text
    handled = {
        "kind", "field", "waba_id", "phone_number_id", "sender", "sender_name", "message_id",
        "timestamp", "type", "text", "button_payload", "interactive", "media", "location", "contacts",
        "reaction", "reply_to", "forwarded", "errors",
    }  # fmt: skip
    for key in set(event) - handled:  # anything else expected (a referral, an order) is kept somewhere
        assert all(leaf in json.dumps(data, ensure_ascii=False) for leaf in _string_leaves(event[key])), key


def _string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [json.dumps(value, ensure_ascii=False)[1:-1]]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _string_leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _string_leaves(item)]
    return []


def _check_status(parsed: Parsed, event: dict[str, Any]) -> None:
    (status,) = [s for s in parsed.statuses if s.external_id == event["message_id"]]
    assert status.platform == "whatsapp"
    assert status.account_id == event["phone_number_id"]
    if event["status"] == "played":
        assert status.state == "read"  # Care counts a played voice message as read (no "played" state)
    else:
        assert status.state == event["status"]
    assert status.recipient_id == event["recipient_id"]
    assert status.occurred_at == _utc(event["timestamp"])
    errors = event.get("errors") or []
    assert status.error == "; ".join(f"{e['code']}: {e['title']}" for e in errors)


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_corpus_sample_matches_expectation(path: Path) -> None:
    events = _expected()[f"pywa/{path.name}"]["events"]
    parsed = ADAPTER.parse(path.read_bytes())
    messages = {message.external_id: message for message in parsed.messages}
    produced = 0
    for event in events:
        if event["kind"] == "message":
            _check_message(messages[event["message_id"]], event)
            produced += 1
        elif event["kind"] == "status":
            _check_status(parsed, event)
            produced += 1
        elif event["field"] == "smb_message_echoes":
            # Care deliberately keeps a business-app echo as the business's own message, not "other".
            assert [m.from_account for m in parsed.messages] == [True]
            produced += 1
        else:
            assert any(label.startswith(event["field"]) for label in parsed.ignored), parsed.ignored
    assert len(parsed.messages) + len(parsed.statuses) == produced


def test_echoes_thread_on_the_customer() -> None:
    text = ADAPTER.parse(corpus_json_bytes("whatsapp/pywa/outgoing_message__text.json")).messages[0]
    assert (text.from_account, text.sender_id, text.text, text.kind) == (
        True,
        "<WHATSAPP_USER_PHONE_NUMBER>",
        "Test message",
        "text",
    )
    # This echo names the business number as "to": the customer is the other party.
    deleted = ADAPTER.parse(corpus_json_bytes("whatsapp/pywa/outgoing_message__delete.json")).messages[0]
    assert (deleted.sender_id, deleted.kind, deleted.data["original_message_id"]) == (
        "972987654321",
        "revoke",
        "wamid.zzzzzz",
    )


def corpus_json_bytes(relative: str) -> bytes:
    return json.dumps(corpus_json(relative)).encode()


def test_flow_reply_shows_the_answers_without_the_token() -> None:
    message = ADAPTER.parse(corpus_json_bytes("whatsapp/pywa/flow_completion__completion.json")).messages[0]
    assert message.text.splitlines()[:2] == ["Sent", "comment_text: Comment Text"]
    assert "flow_token" not in message.text
    assert message.data["interactive"]["response"]["delivery_rating"] == "4"


# -- message types the corpus does not show ---------------------------------------------------------


def test_document_keeps_filename_and_caption() -> None:
    message = _one(
        {
            "type": "document",
            "document": {
                "id": "m1",
                "mime_type": "application/pdf",
                "filename": "bill.pdf",
                "caption": "my bill",
            },
        }
    )
    assert (message.kind, message.text) == ("document", "my bill")
    assert message.attachments == (
        MediaRef(
            kind="document",
            media_id="m1",
            mime_type="application/pdf",
            filename="bill.pdf",
            caption="my bill",
        ),
    )


def test_contacts_become_readable_text_and_data() -> None:
    cards = [
        {
            "name": {"formatted_name": "Bo Berg", "first_name": "Bo"},
            "phones": [{"phone": "+46 70 123", "wa_id": "4670123", "type": "CELL"}],
            "emails": [{"email": "bo@example.com"}],
        },
        {"name": {"first_name": "Cy"}},
    ]
    message = _one({"type": "contacts", "contacts": cards})
    assert message.kind == "contacts"
    assert message.text == "👤 Bo Berg: +46 70 123, bo@example.com\n👤 Cy"
    assert message.data["contacts"] == cards


def test_order_referral_and_product_context() -> None:
    order = {
        "catalog_id": "c1",
        "text": "Quickly please",
        "product_items": [
            {"product_retailer_id": "sku-1", "quantity": 2, "item_price": 7.5, "currency": "EUR"}
        ],
    }
    message = _one({"type": "order", "order": order, "context": {"referred_product": {"catalog_id": "c1"}}})
    assert message.text == "🛒 Order: 2 × sku-1 (7.5 EUR)\nQuickly please"
    assert message.data["order"] == order
    assert message.data["referred_product"] == {"catalog_id": "c1"}
    referral = {"source_url": "https://fb.me/ad", "source_type": "ad", "ctwa_clid": "x"}
    ad = _one({"type": "text", "text": {"body": "Hi from the ad"}, "referral": referral})
    assert (ad.text, ad.data["referral"]) == ("Hi from the ad", referral)


def test_button_reply_video_and_plain_audio() -> None:
    button = _one(
        {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
        }
    )
    assert (button.kind, button.text, button.data["interactive"]["id"]) == ("interactive", "Yes", "yes")
    video = _one({"type": "video", "video": {"id": "v1", "mime_type": "video/mp4", "caption": "look"}})
    assert (video.kind, video.text, video.attachments[0].kind) == ("video", "look", "video")
    audio = _one({"type": "audio", "audio": {"id": "a1", "mime_type": "audio/mpeg", "voice": False}})
    assert (audio.kind, audio.attachments[0].kind) == ("audio", "audio")


def test_unknown_type_and_odd_fields_become_an_unsupported_message() -> None:
    message = _one({"type": "hologram", "hologram": {"depth": 3}})
    assert (message.kind, message.data["type"]) == ("unsupported", "hologram")
    assert "hologram" in message.text
    bare = _one({"type": None, "timestamp": "soon", "context": "x"})
    assert bare.kind == "unsupported"
    assert bare.occurred_at.tzinfo is not None  # an unusable timestamp falls back to now, aware
    image = _one({"type": "image", "image": {}})  # no media id: described, nothing to download
    assert (image.attachments, image.text) == ((), "[image message]")


def test_edit_request_welcome_and_business_scoped_sender() -> None:
    edit = _one(
        {
            "type": "edit",
            "edit": {
                "original_message_id": "wamid.0",
                "message": {"type": "text", "text": {"body": "fixed"}},
            },
        }
    )
    assert (edit.kind, edit.text, edit.data["original_message_id"]) == (
        "text",
        "Edited a message: fixed",
        "wamid.0",
    )
    welcome = _one({"type": "request_welcome"})
    assert welcome.kind == "request_welcome"
    assert welcome.text
    hidden = ADAPTER.parse(
        _wrap(
            {
                "from_user_id": "US.1",
                "id": "wamid.2",
                "timestamp": "1",
                "type": "text",
                "text": {"body": "hi"},
            }
        )
    )
    assert hidden.messages[0].sender_id == "US.1"


def test_statuses_of_every_state_and_unknown_ones() -> None:
    statuses: list[dict[str, Any]] = [
        {"id": f"wamid.{state}", "status": state, "timestamp": "1700000000", "recipient_id": "49170"}
        for state in ("sent", "delivered", "read", "played", "failed", "deleted")
    ]
    statuses[4]["errors"] = [{"code": 131026, "title": "Message undeliverable"}, {"code": 1, "message": "x"}]
    parsed = ADAPTER.parse(_wrap(statuses=statuses))
    assert [s.state for s in parsed.statuses] == ["sent", "delivered", "read", "read", "failed"]
    assert parsed.statuses[4].error == "131026: Message undeliverable; 1: x"
    assert parsed.ignored == ("status deleted of message wamid.deleted",)


def test_message_without_id_or_sender_is_named_not_dropped_silently() -> None:
    parsed = ADAPTER.parse(_wrap({"type": "text", "text": {"body": "who?"}}))
    assert parsed.messages == ()
    assert parsed.ignored == ("message without an id or a sender",)


# -- webhook authentication ------------------------------------------------------------------------


def test_signature_good_bad_missing_and_unconfigured() -> None:
    body = corpus_json_bytes("whatsapp/pywa/message__text.json")
    ADAPTER.verify(_post(body, _sign(body)), CREDENTIALS)
    ADAPTER.verify(_post(body, _sign(body).upper().replace("SHA256=", "sha256=")), CREDENTIALS)
    for signature in (_sign(body, "other"), _sign(body + b" "), "", None, "sha1=abc", "sha256=é"):
        with pytest.raises(SignatureError):
            ADAPTER.verify(_post(body, signature), CREDENTIALS)
    with pytest.raises(SignatureError, match="app secret"):
        ADAPTER.verify(_post(body, _sign(body)), Credentials(account_id="1"))


def _get(**query: str) -> WebhookRequest:
    return WebhookRequest(method="GET", body=b"", headers={}, query=query)


def test_handshake_answers_the_challenge_only_with_the_right_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    answer = ADAPTER.handshake(_get(**good), CREDENTIALS)
    assert (answer.status, answer.body, answer.content_type) == (200, "1158201444", "text/plain")
    for bad in ({"hub.verify_token": "nope"}, {"hub.mode": "unsubscribe"}, {"hub.verify_token": ""}):
        with pytest.raises(SignatureError):
            ADAPTER.handshake(_get(**{**good, **bad}), CREDENTIALS)
    with pytest.raises(SignatureError):
        ADAPTER.handshake(_get(**good), Credentials(account_id="1"))  # no verify token configured
    with pytest.raises(ParseError):
        ADAPTER.handshake(_get(**{**good, "hub.challenge": ""}), CREDENTIALS)


# -- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"object": "page", "entry": []}', '"page"'),
        (b'{"object": "whatsapp_business_account"}', '"entry"'),
        (b'{"object": "whatsapp_business_account", "entry": {}}', '"entry"'),
        (b'{"object": "whatsapp_business_account", "entry": [1]}', '"entry"'),
        (b'{"object": "whatsapp_business_account", "entry": [{"changes": {}}]}', '"changes"'),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
            b' "value": 3}]}]}',
            '"value"',
        ),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
            b' "value": {"messages": {}}}]}]}',
            '"messages"',
        ),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"object": "whatsapp_business_account", "entry": [], "x": NaN}', "NaN is not JSON"),
        (b'{"object": "whatsapp_business_account", "entry": [], "x": 1e999}', "not a finite number"),
    ],
)
def test_malformed_bodies_are_parse_errors(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(")):
        ADAPTER.parse(body)


def test_empty_entry_and_unknown_fields_are_fine() -> None:
    assert ADAPTER.parse(b'{"object": "whatsapp_business_account", "entry": []}') == Parsed()
    parsed = ADAPTER.parse(
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "history", "value": {}},'
        b' {"field": "messages", "value": {"errors": [{"code": 131000, "title": "Something went wrong"}]}}'
        b"]}]}"
    )
    assert parsed.ignored == ("history", "WhatsApp reported an error: 131000: Something went wrong")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
_CORPUS = [corpus_json_bytes(f"whatsapp/pywa/{path.name}") for path in SAMPLES]
_KEYS = st.sampled_from(
    ["type", "text", "image", "audio", "id", "from", "timestamp", "context", "contacts", "messages",
     "statuses", "value", "field", "metadata", "errors", "interactive", "location", "reaction", "edit",
     "system", "order"]
)  # fmt: skip


def _assert_parse_is_total(body: bytes) -> None:
    try:
        parsed = ADAPTER.parse(body)
    except ParseError:
        return
    assert isinstance(parsed, Parsed)
    for message in parsed.messages:
        assert message.text or message.attachments
        assert message.occurred_at.tzinfo is not None
        assert all(
            isinstance(value, str) for value in (message.external_id, message.sender_id, message.reply_to)
        )
    for status in parsed.statuses:
        assert status.occurred_at.tzinfo is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_random_json_parses_or_is_a_parse_error(value: Any) -> None:
    _assert_parse_is_total(json.dumps(value).encode())
    _assert_parse_is_total(json.dumps({"object": "whatsapp_business_account", "entry": value}).encode())


@pytest.mark.skipif(not _CORPUS, reason="social corpus missing")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_corpus_parses_or_is_a_parse_error(data: st.DataObject) -> None:
    """Real payloads with any node replaced by random JSON, or any key's value swapped."""
    payload = json.loads(data.draw(st.sampled_from(_CORPUS)))
    for _ in range(data.draw(st.integers(1, 3))):
        node, key = _random_slot(payload, data)
        if node is None:
            break
        node[key] = (
            data.draw(json_values) if data.draw(st.booleans()) else {data.draw(_KEYS): data.draw(json_values)}
        )
    _assert_parse_is_total(json.dumps(payload).encode())


def _random_slot(payload: Any, data: st.DataObject) -> tuple[Any, Any]:
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, child in items:
            slots.append((node, key))
            walk(child)

    walk(payload)
    return data.draw(st.sampled_from(slots)) if slots else (None, None)


# -- sending ---------------------------------------------------------------------------------------


def _send(message: OutboundMessage, credentials: Credentials = CREDENTIALS) -> Any:
    with requests.Session() as session:
        return ADAPTER.send(session, credentials, message)


def _expect_send(rsps: responses.RequestsMock, payload: dict[str, Any], url: str = SEND_URL) -> None:
    rsps.post(
        url,
        json={"messaging_product": "whatsapp",
              "contacts": [{"input": "491701234567", "wa_id": "491701234567"}],
              "messages": [{"id": "wamid.OUT=="}]},
        match=[matchers.header_matcher(AUTH), matchers.json_params_matcher(payload, strict_match=True)],
    )  # fmt: skip


BASE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "491701234567"}


@responses.activate
def test_send_text_with_reply_context() -> None:
    _expect_send(
        responses.mock,
        {
            **BASE,
            "context": {"message_id": "wamid.IN"},
            "type": "text",
            "text": {"preview_url": False, "body": "Hello"},
        },
    )
    result = _send(OutboundMessage(recipient_id="491701234567", text="Hello", reply_to="wamid.IN"))
    assert result.external_id == "wamid.OUT=="
    (call,) = responses.calls
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Authorization"] == "Bearer token-123"


@responses.activate
def test_send_plain_text_to_a_sandbox_api_base() -> None:
    _expect_send(
        responses.mock,
        {**BASE, "type": "text", "text": {"preview_url": False, "body": "Hi"}},
        url="https://sandbox.example/v1/1122334455667/messages",
    )
    sandbox = Credentials(
        account_id="1122334455667", access_token="token-123", api_base="https://sandbox.example/v1/"
    )
    assert (
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"), sandbox).external_id == "wamid.OUT=="
    )


@responses.activate
def test_send_template() -> None:
    template = {
        "name": "order_update",
        "language": {"code": "de"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}]}
        ],
    }
    _expect_send(responses.mock, {**BASE, "type": "template", "template": template})
    message = OutboundMessage(
        recipient_id="491701234567",
        template_name="order_update",
        template_language="de",
        template_parameters=("Ana", "#42"),
    )
    assert _send(message).external_id == "wamid.OUT=="


@responses.activate
def test_send_media_by_link() -> None:
    _expect_send(
        responses.mock,
        {**BASE, "type": "image", "image": {"link": "https://files.example/a.png", "caption": "See"}},
    )
    message = OutboundMessage(
        recipient_id="491701234567", text="See", media_url="https://files.example/a.png", media_kind="image"
    )
    assert _send(message).external_id == "wamid.OUT=="


def test_send_refuses_what_whatsapp_would_refuse_without_calling_it() -> None:
    with responses.RequestsMock():  # any HTTP call would fail the test
        for message in (
            OutboundMessage(recipient_id="4917", text="  "),
            OutboundMessage(recipient_id="", text="hi"),
            OutboundMessage(recipient_id="4917", template_name="t"),
            OutboundMessage(recipient_id="4917", media_url="https://x/a.ogg", media_kind="audio", text="x"),
            OutboundMessage(recipient_id="4917", media_url="https://x/a", media_kind="gif"),
        ):
            with pytest.raises(SendError) as caught:
                _send(message)
            assert not caught.value.retryable
        with pytest.raises(SendError, match="access token"):
            _send(OutboundMessage(recipient_id="4917", text="hi"), Credentials(account_id="1"))


def _graph_error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Az8", **extra}
    }


@responses.activate
def test_send_rate_limited_with_retry_after() -> None:
    responses.post(
        SEND_URL, status=429, json=_graph_error(130429, "Rate limit hit"), headers={"Retry-After": "30"}
    )
    with pytest.raises(SendError) as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert (caught.value.retryable, caught.value.retry_after) == (True, 30.0)
    assert "Rate limit hit" in str(caught.value)
    assert "130429" in str(caught.value)


@responses.activate
def test_send_pair_rate_limit_code_on_a_400_is_retryable() -> None:
    responses.post(
        SEND_URL,
        status=400,
        json=_graph_error(131056, "(Business Account, Consumer Account) pair rate limit hit"),
    )
    with pytest.raises(SendError) as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert (caught.value.retryable, caught.value.retry_after) == (True, None)


@responses.activate
def test_send_server_error_is_retryable() -> None:
    responses.post(SEND_URL, status=500, body="upstream broke")
    with pytest.raises(SendError) as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert caught.value.retryable


@responses.activate
def test_send_outside_the_window_is_final_with_the_platforms_text() -> None:
    responses.post(
        SEND_URL,
        status=400,
        json=_graph_error(
            131047,
            "Re-engagement message",
            error_data={
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed",
            },
            error_subcode=2494010,
        ),
    )
    with pytest.raises(SendError) as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert not caught.value.retryable
    assert "24 hours" in str(caught.value)
    assert "Re-engagement message" in str(caught.value)


@responses.activate
def test_send_other_client_error_is_final() -> None:
    responses.post(SEND_URL, status=400, json=_graph_error(100, "Invalid parameter"))
    with pytest.raises(SendError, match="Invalid parameter") as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert not caught.value.retryable


@responses.activate
def test_send_network_error_and_timeout_are_retryable() -> None:
    responses.post(SEND_URL, body=requests.ConnectionError("refused"))
    responses.post(SEND_URL, body=requests.Timeout("slow"))
    for _ in range(2):
        with pytest.raises(SendError) as caught:
            _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
        assert caught.value.retryable


@responses.activate
def test_send_answer_without_id_is_not_retried() -> None:
    responses.post(SEND_URL, json={"messages": []})
    with pytest.raises(SendError) as caught:
        _send(OutboundMessage(recipient_id="491701234567", text="Hi"))
    assert not caught.value.retryable


# -- media -----------------------------------------------------------------------------------------

CDN = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453&ext=1&hash=abc"


def _download(media: MediaRef) -> Any:
    with requests.Session() as session:
        return ADAPTER.download(session, CREDENTIALS, media)


@responses.activate
def test_download_in_two_steps_with_the_bearer_token() -> None:
    responses.get(
        f"{GRAPH_API}/65463453",
        json={"url": CDN, "mime_type": "image/jpeg", "sha256": "x", "file_size": 4, "id": "65463453"},
        match=[matchers.header_matcher(AUTH)],
    )
    responses.get(CDN, body=b"\xff\xd8ok", content_type="image/jpeg", match=[matchers.header_matcher(AUTH)])
    got = _download(MediaRef(kind="image", media_id="65463453", mime_type="image/jpeg"))
    assert (got.content, got.mime_type, got.filename) == (b"\xff\xd8ok", "image/jpeg", "image-65463453.jpg")
    assert [call.request.url for call in responses.calls] == [f"{GRAPH_API}/65463453", CDN]


@responses.activate
def test_download_keeps_the_senders_filename_without_a_path() -> None:
    responses.get(f"{GRAPH_API}/m1", json={"url": CDN, "mime_type": "application/pdf"})
    responses.get(CDN, body=b"%PDF")
    got = _download(MediaRef(kind="document", media_id="m1", filename="../../etc/bill.pdf"))
    assert (got.filename, got.mime_type) == ("bill.pdf", "application/pdf")
    voice = MediaRef(kind="voice", media_id="m2", mime_type="audio/ogg; codecs=opus")
    responses.get(f"{GRAPH_API}/m2", json={"url": CDN, "mime_type": "audio/ogg; codecs=opus"})
    assert _download(voice).filename == "voice-m2.ogg"


@responses.activate
def test_download_refuses_files_over_the_cap() -> None:
    responses.get(
        f"{GRAPH_API}/big", json={"url": CDN, "mime_type": "video/mp4", "file_size": MAX_MEDIA_BYTES + 1}
    )
    with pytest.raises(SendError, match="25 MB") as caught:
        _download(MediaRef(kind="video", media_id="big"))
    assert not caught.value.retryable
    # The size the first step announced can be wrong: the bytes themselves are counted too.
    responses.get(f"{GRAPH_API}/liar", json={"url": CDN, "mime_type": "video/mp4", "file_size": 10})
    responses.get(CDN, body=b"x" * (MAX_MEDIA_BYTES + 1))
    with pytest.raises(SendError, match="25 MB"):
        _download(MediaRef(kind="video", media_id="liar"))


@responses.activate
def test_download_errors() -> None:
    responses.get(f"{GRAPH_API}/gone", status=404, json=_graph_error(100, "Unsupported get request."))
    with pytest.raises(SendError) as caught:
        _download(MediaRef(kind="image", media_id="gone"))
    assert not caught.value.retryable
    responses.get(f"{GRAPH_API}/slow", body=requests.ConnectionError("reset"))
    with pytest.raises(SendError) as caught:
        _download(MediaRef(kind="image", media_id="slow"))
    assert caught.value.retryable
    with pytest.raises(SendError):
        _download(MediaRef(kind="image"))  # neither id nor URL


def test_adapter_contract() -> None:
    assert ADAPTER.platform == "whatsapp"
    assert ADAPTER.reply_window == dt.timedelta(hours=24)
    assert 0 < ADAPTER.rate_per_second <= 80  # WhatsApp's default throughput per phone number
