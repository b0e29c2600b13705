"""Care's signed JSON adapter: what it reads, what it refuses (with a message saying why), how it
verifies a request, and the exact HTTP requests it makes to send a reply and fetch a file."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import responses
from responses import matchers

from care.connectors.social.base import (
    Credentials,
    MediaRef,
    OutboundMessage,
    ParseError,
    SendError,
    SignatureError,
    WebhookRequest,
)
from care.connectors.social.generic import ADAPTER, MAX_DOWNLOAD_BYTES
from care.connectors.social.registry import adapter_for
from tests.social.conftest import API_BASE, sign

CREDENTIALS = Credentials(account_id="acme-chat", app_secret="k3y", access_token="tok-123", api_base=API_BASE)


def parse(document: object):
    return ADAPTER.parse(json.dumps(document).encode())


def request(raw: bytes, **headers: str) -> WebhookRequest:
    return WebhookRequest(method="POST", body=raw, headers=headers, query={})


# --- parsing --------------------------------------------------------------------------------------


def test_registry_serves_the_generic_adapter_for_platform_other() -> None:
    assert adapter_for("generic") is ADAPTER
    assert ADAPTER.platform == "other"
    assert adapter_for("no-such-platform") is None


def test_a_message_with_every_field() -> None:
    parsed = parse(
        {
            "account": "acme-chat",
            "messages": [
                {
                    "id": 17,
                    "from": {"id": "u-42", "name": "Ada"},
                    "conversation": "c-7",
                    "text": "  Hello there  ",
                    "timestamp": "2026-11-27T11:00:00+01:00",
                    "attachments": [
                        {
                            "url": "https://files.example/a.png",
                            "mime_type": "image/png",
                            "filename": "a.png",
                            "kind": "image",
                        }
                    ],
                    "reply_to": "16",
                }
            ],
        }
    )
    [item] = parsed.messages
    assert (item.platform, item.account_id, item.external_id) == ("other", "acme-chat", "17")
    assert (item.sender_id, item.sender_name, item.conversation_id) == ("u-42", "Ada", "c-7")
    assert item.text == "Hello there"
    assert item.occurred_at == dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    assert item.reply_to == "16"
    assert item.from_account is False
    assert item.attachments == (
        MediaRef(kind="image", url="https://files.example/a.png", mime_type="image/png", filename="a.png"),
    )
    assert parsed.statuses == ()


def test_unix_seconds_and_defaults() -> None:
    [item] = parse(
        {"messages": [{"id": "m", "from": {"id": 42}, "text": "hi", "timestamp": 1795946400}]}
    ).messages
    assert item.occurred_at == dt.datetime.fromtimestamp(1795946400, tz=dt.UTC)
    assert (item.sender_id, item.sender_name, item.conversation_id, item.account_id) == ("42", "", "42", "")
    [again] = parse(
        {"messages": [{"id": "m", "from": {"id": 42}, "text": "hi", "timestamp": "1795946400"}]}
    ).messages
    assert again.occurred_at == item.occurred_at


def test_an_attachment_without_text_names_its_kind_from_the_mime_type() -> None:
    [item] = parse(
        {
            "messages": [
                {
                    "id": "m",
                    "from": {"id": "u"},
                    "timestamp": 1795946400,
                    "attachments": [{"url": "https://f.example/v", "mime_type": "video/mp4"}],
                }
            ]
        }
    ).messages
    assert item.text == ""
    assert item.kind == "video"
    assert item.attachments[0].kind == "video"


def test_an_echo_is_marked_as_from_the_account() -> None:
    [item] = parse(
        {"messages": [{"id": "m", "from": {"id": "u"}, "text": "x", "timestamp": 1, "echo": True}]}
    ).messages
    assert item.from_account is True


def test_statuses_by_id_and_by_watermark() -> None:
    parsed = parse(
        {
            "statuses": [
                {"id": "out-1", "status": "delivered", "timestamp": 1795946400, "recipient": "u-42"},
                {"id": "out-2", "status": "FAILED", "timestamp": 1795946400, "error": "blocked"},
                {"status": "read", "recipient": "u-42", "watermark": "2026-11-27T10:00:00Z"},
            ]
        }
    )
    first, second, third = parsed.statuses
    assert (first.external_id, first.state, first.recipient_id) == ("out-1", "delivered", "u-42")
    assert (second.state, second.error) == ("failed", "blocked")
    assert third.external_id == ""
    assert third.watermark == third.occurred_at == dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    assert parsed.messages == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "JSON object"),
        (b"{}", "neither"),
        (b'{"messages": {}}', '"messages" must be a list'),
        (b'{"messages": [1]}', "Message 1 must be a JSON object"),
        (b'{"messages": [{"from": {"id": "u"}, "text": "x", "timestamp": 1}]}', 'has no "id"'),
        (b'{"messages": [{"id": "m", "text": "x", "timestamp": 1}]}', '"from" must be a JSON object'),
        (b'{"messages": [{"id": "m", "from": {}, "text": "x", "timestamp": 1}]}', 'has no "id"'),
        (b'{"messages": [{"id": "m", "from": {"id": "u"}, "timestamp": 1}]}', "neither text nor attachments"),
        (b'{"messages": [{"id": "m", "from": {"id": "u"}, "text": "x"}]}', 'has no "timestamp"'),
        (
            b'{"messages": [{"id": "m", "from": {"id": "u"}, "text": "x", '
            b'"timestamp": "2026-11-27T10:00:00"}]}',
            "no UTC offset",
        ),
        (
            b'{"messages": [{"id": "m", "from": {"id": "u"}, "text": "x", "timestamp": "yesterday"}]}',
            "not an ISO 8601 time",
        ),
        (b'{"messages": [{"id": "m", "from": {"id": "u"}, "text": 5, "timestamp": 1}]}', "must be a string"),
        (
            b'{"messages": [{"id": "m", "from": {"id": "u"}, "text": "x", "timestamp": 1, '
            b'"attachments": [{"url": "file:///etc/passwd"}]}]}',
            "http(s)",
        ),
        (b'{"statuses": [{"id": "o", "status": "seen"}]}', "sent, delivered, read, failed"),
        (b'{"statuses": [{"status": "read"}]}', "names no message"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ParseError) as refused:
        ADAPTER.parse(raw)
    assert message in str(refused.value)


# --- verification ---------------------------------------------------------------------------------


def test_a_correct_signature_passes() -> None:
    raw = b'{"messages": []}'
    ADAPTER.verify(request(raw, **{"x-care-signature": sign("k3y", raw)}), CREDENTIALS)
    ADAPTER.verify(
        request(raw, **{"x-care-signature": sign("k3y", raw).upper().replace("SHA256", "sha256")}),
        CREDENTIALS,
    )


@pytest.mark.parametrize(
    ("headers", "credentials", "message"),
    [
        ({}, CREDENTIALS, "Sign the body"),
        ({"x-care-signature": "sha256=00"}, CREDENTIALS, "does not match"),
        ({"x-care-signature": sign("other", b"{}")}, CREDENTIALS, "does not match"),
        ({"x-care-signature": sign("", b"{}")}, Credentials(account_id="a"), "no app secret"),
    ],
)
def test_a_missing_or_wrong_signature_is_refused(headers, credentials, message) -> None:
    with pytest.raises(SignatureError) as refused:
        ADAPTER.verify(request(b"{}", **headers), credentials)
    assert message in str(refused.value)


def test_there_is_no_get_handshake() -> None:
    with pytest.raises(ParseError, match="no verification handshake"):
        ADAPTER.handshake(WebhookRequest(method="GET", body=b"", headers={}, query={}), CREDENTIALS)


# --- sending --------------------------------------------------------------------------------------


@responses.activate
def test_send_posts_the_reply_with_the_bearer_token() -> None:
    responses.post(
        f"{API_BASE}/messages",
        json={"id": "out-99"},
        match=[
            matchers.json_params_matcher(
                {"to": "u-42", "text": "We are on it.", "conversation": "c-7", "reply_to": "m-1"}
            ),
            matchers.header_matcher({"Authorization": "Bearer tok-123", "Content-Type": "application/json"}),
        ],
    )
    with requests.Session() as session:
        result = ADAPTER.send(
            session,
            CREDENTIALS,
            OutboundMessage(recipient_id="u-42", text="We are on it.", conversation_id="c-7", reply_to="m-1"),
        )
    assert result.external_id == "out-99"
    assert len(responses.calls) == 1
    assert responses.calls[0].request.url == "https://chat.example.test/api/messages"


@responses.activate
@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(429, {"Retry-After": "17"}, 17.0), (503, {}, None), (500, {"Retry-After": "x"}, None)],
)
def test_rate_limits_and_server_errors_are_worth_retrying(status, headers, retry_after) -> None:
    responses.post(f"{API_BASE}/messages", status=status, headers=headers, json={"error": "slow down"})
    with requests.Session() as session, pytest.raises(SendError) as failed:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="u", text="x"))
    assert failed.value.retryable is True
    assert failed.value.retry_after == retry_after
    assert "slow down" in str(failed.value)


@responses.activate
def test_a_refused_reply_is_not_retried_and_says_why() -> None:
    responses.post(f"{API_BASE}/messages", status=400, json={"error": {"message": "recipient unknown"}})
    with requests.Session() as session, pytest.raises(SendError) as failed:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="u", text="x"))
    assert failed.value.retryable is False
    assert "400" in str(failed.value)
    assert "recipient unknown" in str(failed.value)


@responses.activate
def test_a_network_error_is_worth_retrying() -> None:
    responses.post(f"{API_BASE}/messages", body=requests.ConnectionError("connection refused"))
    with requests.Session() as session, pytest.raises(SendError) as failed:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="u", text="x"))
    assert failed.value.retryable is True
    assert "connection refused" in str(failed.value)


@responses.activate
def test_an_answer_without_id_is_not_retried() -> None:
    responses.post(f"{API_BASE}/messages", json={"ok": True})
    with requests.Session() as session, pytest.raises(SendError, match="without its id") as failed:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="u", text="x"))
    assert failed.value.retryable is False


def test_without_api_base_nothing_is_sent() -> None:
    with requests.Session() as session, pytest.raises(SendError, match="no API base URL") as failed:
        ADAPTER.send(session, Credentials(account_id="a"), OutboundMessage(recipient_id="u", text="x"))
    assert failed.value.retryable is False


# --- downloading ----------------------------------------------------------------------------------


@responses.activate
def test_download_fetches_the_file_with_the_bearer_token() -> None:
    responses.get(
        "https://files.example/doc/invoice",
        body=b"%PDF-1.7 ...",
        content_type="application/pdf",
        match=[matchers.header_matcher({"Authorization": "Bearer tok-123"})],
    )
    with requests.Session() as session:
        downloaded = ADAPTER.download(
            session, CREDENTIALS, MediaRef(kind="document", url="https://files.example/doc/invoice")
        )
    assert downloaded.content == b"%PDF-1.7 ..."
    assert downloaded.mime_type == "application/pdf"
    assert downloaded.filename == "document.pdf"
    assert len(responses.calls) == 1


@responses.activate
def test_download_keeps_the_given_name_and_type() -> None:
    responses.get("https://files.example/x/photo.jpeg", body=b"\xff\xd8", content_type="image/jpeg")
    with requests.Session() as session:
        named = ADAPTER.download(
            session,
            CREDENTIALS,
            MediaRef(
                kind="image",
                url="https://files.example/x/photo.jpeg",
                mime_type="image/jpeg",
                filename="me.jpg",
            ),
        )
        from_url = ADAPTER.download(
            session, CREDENTIALS, MediaRef(kind="image", url="https://files.example/x/photo.jpeg")
        )
    assert (named.filename, named.mime_type) == ("me.jpg", "image/jpeg")
    assert from_url.filename == "photo.jpeg"


@responses.activate
def test_download_refuses_files_over_the_cap() -> None:
    responses.get("https://files.example/big", body=b"x" * (MAX_DOWNLOAD_BYTES + 1))
    with requests.Session() as session, pytest.raises(SendError, match="larger than 25 MB") as failed:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="file", url="https://files.example/big"))
    assert failed.value.retryable is False


@responses.activate
@pytest.mark.parametrize(("status", "retryable"), [(404, False), (403, False), (502, True), (429, True)])
def test_download_errors(status, retryable) -> None:
    responses.get("https://files.example/gone", status=status, body="gone")
    with requests.Session() as session, pytest.raises(SendError) as failed:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="file", url="https://files.example/gone"))
    assert failed.value.retryable is retryable
    assert str(status) in str(failed.value)
