"""Telegram Bot API adapter: Zammad's real updates, the secret-token header, the Bot API calls.

The updates in ../shared/corpus/social/telegram/zammad/ are Zammad's test data; what Zammad's
telegram_spec.rb asserts about them is in EXPECTED-zammad.json and is asserted here, or, where Care
deliberately differs, the difference is asserted in one commented line. The other updates below are
SYNTHETIC, built from the Bot API reference (edits, buttons, locations, contacts, links...). The Bot
API is mocked at the HTTP boundary with ``responses``; the exact request is asserted.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from care.connectors.social import telegram
from care.connectors.social.base import (
    Credentials,
    MediaRef,
    OutboundMessage,
    Parsed,
    ParseError,
    SendError,
    SignatureError,
    WebhookRequest,
)
from care.connectors.social.telegram import ADAPTER
from tests.social.corpus import corpus_file, corpus_files, corpus_json

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CREDENTIALS = Credentials(account_id="123456789", verify_token="s3cret-Token_1", access_token=TOKEN)
API = f"https://api.telegram.org/bot{TOKEN}"

SAMPLES = corpus_files("telegram/zammad/private") + corpus_files("telegram/zammad/channel")


def _parse(relative: str) -> Parsed:
    return ADAPTER.parse(corpus_file(f"telegram/zammad/{relative}").read_bytes())


def _expected() -> dict[str, Any]:
    document = corpus_json("EXPECTED-zammad.json")
    return next(value for key, value in document.items() if key.startswith("telegram/"))


def _update(**fields: Any) -> bytes:
    return json.dumps({"update_id": 99, **fields}).encode()


def _message(**fields: Any) -> dict[str, Any]:
    return {
        "message_id": 42,
        "date": 1700000000,
        "from": {"id": 555, "first_name": "Ada", "last_name": "Lovelace", "username": "ada"},
        "chat": {"id": 555, "type": "private", "first_name": "Ada"},
        **fields,
    }


def _request(headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", body=b"{}", headers=headers, query={})


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
    assert len(SAMPLES) == 18


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_sample_parses_to_the_same_messages_twice(path: Path):
    update = json.loads(path.read_bytes())
    raw = update.get("message") or update["channel_post"]
    first, second = ADAPTER.parse(path.read_bytes()), ADAPTER.parse(path.read_bytes())
    assert first == second  # a replayed update gives the same external ids: no duplicate
    assert len(first.messages) + len(first.ignored) == 1
    for message in first.messages:
        assert message.platform == "telegram"
        assert message.account_id == ""  # the spine reads "" as the account the URL names
        assert message.external_id == f"{raw['chat']['id']}:{raw['message_id']}"
        assert message.occurred_at.tzinfo is not None
        assert message.sender_id
        assert message.text or message.attachments


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_start_creates_nothing(folder: str):
    assert _expected()["start.json"]["creates_ticket"] is False
    parsed = _parse(f"{folder}/start.json")
    assert parsed.messages == ()
    assert parsed.ignored == ("command /start",)


def test_start2_is_a_start_too():
    assert _parse("private/start2.json").ignored == ("command /start",)


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_end_is_ignored_rather_than_closing(folder: str):
    assert "closed" in _expected()["end.json"]["note"]
    # Care differs: Zammad closes the customer's ticket on /end; Care names the command for the spine.
    assert _parse(f"{folder}/end.json") == Parsed(ignored=("command /end",))


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_text_is_the_article_body_and_title(folder: str):
    expected = _expected()["text.json"]
    (message,) = _parse(f"{folder}/text.json").messages
    assert message.text == expected["article_body"] == expected["ticket_title"]
    assert message.kind == "text"
    assert message.attachments == ()


def test_private_text_sender_and_chat():
    (message,) = _parse("private/text.json").messages
    assert (message.sender_id, message.conversation_id, message.external_id) == (
        "111111",
        "111111",
        "111111:5",
    )
    assert message.sender_name == "Test Firstname Test Lastname"
    assert message.occurred_at == dt.datetime(2015, 9, 7, 17, 5, 32, tzinfo=dt.UTC)
    assert message.data["username"] == "Testusername"


def test_a_second_customer_is_a_second_sender():
    (first,) = _parse("private/text.json").messages
    (second,) = _parse("private/text2.json").messages
    assert second.sender_id == "222222" != first.sender_id
    assert second.text == "Can you help me with my feature?"


def test_channel_post_sender_is_the_channel():
    (message,) = _parse("channel/text.json").messages
    assert (message.sender_id, message.conversation_id) == ("123456789", "123456789")
    assert message.sender_name == "ZBotChannel"
    assert message.external_id == "123456789:1365"
    assert message.data["chat_type"] == "channel"


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_document(folder: str):
    expected = _expected()["document.json"]
    (message,) = _parse(f"{folder}/document.json").messages
    assert len(message.attachments) == expected["attachments"]
    (attachment,) = message.attachments
    assert attachment.filename == expected["attachment_filename"]
    assert (attachment.kind, attachment.media_id, attachment.mime_type) == (
        "document",
        "documentfileid",
        "application/pdf",
    )
    assert attachment.size == 123456
    # Care differs: Zammad's HTML body shows the thumbnail (<img 200x200>); Care keeps empty text + the file.
    assert "<img" in expected["body_matches"]
    assert message.text == ""


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_photo_keeps_the_largest_size(folder: str):
    expected = _expected()["photo.json"]
    (message,) = _parse(f"{folder}/photo.json").messages
    (attachment,) = message.attachments
    # Care differs: Zammad inlines a 360x327 <img> (the 720px size halved); Care attaches the largest photo.
    assert "360px" in expected["body_matches"]
    assert attachment.media_id == "photofileid3"
    assert (message.kind, attachment.kind, attachment.mime_type) == ("image", "image", "image/jpeg")
    assert attachment.filename == "photo-photofileid3.jpg"


def test_photo_caption_is_the_text_verbatim():
    (message,) = _parse("private/photo.json").messages
    assert message.text == "caption 123<b>abc</b>"  # Telegram captions are plain text: no HTML is read
    assert message.attachments[0].caption == message.text


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_video(folder: str):
    expected = _expected()["video.json"]
    parsed = _parse(f"{folder}/video.json")
    assert len(parsed.messages) == expected["articles"]
    (attachment,) = parsed.messages[0].attachments
    assert len(parsed.messages[0].attachments) == expected["attachments"]
    assert attachment.filename == expected["attachment_filename"]
    assert (attachment.kind, attachment.mime_type) == ("video", "video/mp4")


def test_channel_video_caption():
    (message,) = _parse("channel/video.json").messages
    assert message.text == "caption"


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_voice(folder: str):
    expected = _expected()["voice.json"]
    (message,) = _parse(f"{folder}/voice.json").messages
    assert len(message.attachments) == expected["attachments"]
    assert message.attachments[0].filename == expected["attachment_filename"]
    assert (message.kind, message.attachments[0].mime_type) == ("voice", "audio/ogg")


@pytest.mark.parametrize("folder", ["private", "channel"])
def test_sticker(folder: str):
    expected = _expected()["sticker.json"]
    (message,) = _parse(f"{folder}/sticker.json").messages
    assert message.text == "😄"
    assert expected["ticket_title"].startswith("😄")
    assert len(message.attachments) == expected["attachments"]
    (attachment,) = message.attachments
    # Care differs: the sticker is_animated, i.e. a gzipped Lottie file; Zammad names it .webp regardless.
    assert expected["attachment_filename"] == "HotCherry.webp"
    assert attachment.filename == "HotCherry.tgs"
    assert (attachment.kind, attachment.mime_type, attachment.media_id) == (
        "sticker",
        "application/x-tgsticker",
        "stickerfileid",
    )


def test_private_sticker_posted_as_channel_post_keeps_its_sender():
    (message,) = _parse("private/sticker.json").messages
    assert (message.sender_id, message.external_id) == ("111111", "111111:273")


def test_a_static_sticker_is_webp():
    update = _update(message=_message(sticker={"file_id": "S", "emoji": "👍", "set_name": "Pack"}))
    (message,) = ADAPTER.parse(update).messages
    assert (message.attachments[0].filename, message.attachments[0].mime_type) == ("Pack.webp", "image/webp")


# -- other updates (synthetic, from the Bot API reference) ---------------------------------------


def test_an_edit_is_a_new_interaction_naming_the_original():
    edited = _message(text="Corrected text", edit_date=1700000100)
    (message,) = ADAPTER.parse(_update(edited_message=edited)).messages
    assert message.external_id == "555:42:edit:1700000100"
    assert message.data["edit_of"] == "555:42"
    assert message.text == "Corrected text"
    assert message.occurred_at == dt.datetime.fromtimestamp(1700000100, tz=dt.UTC)


def test_an_edited_channel_post_uses_the_channel():
    post = {
        "message_id": 7,
        "date": 1,
        "edit_date": 2,
        "chat": {"id": -1001, "title": "News", "type": "channel"},
    }
    (message,) = ADAPTER.parse(_update(edited_channel_post={**post, "text": "v2"})).messages
    assert (message.external_id, message.sender_id, message.sender_name) == (
        "-1001:7:edit:2",
        "-1001",
        "News",
    )


def test_a_button_press_is_the_button_title():
    keyboard = {
        "inline_keyboard": [
            [{"text": "Yes, please", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}]
        ]
    }
    query = {
        "id": "4382bfdwdsb323b2d9",
        "from": {"id": 555, "first_name": "Ada", "username": "ada"},
        "message": {**_message(text="Call you back?"), "reply_markup": keyboard},
        "chat_instance": "-1",
        "data": "yes",
    }
    (message,) = ADAPTER.parse(_update(callback_query=query)).messages
    assert (message.kind, message.text, message.data["payload"]) == ("button", "Yes, please", "yes")
    assert message.external_id == "555:callback:4382bfdwdsb323b2d9"
    assert message.reply_to == "555:42"
    assert message.occurred_at.tzinfo is not None


def test_a_button_press_without_its_message_is_the_payload():
    query = {"id": "q1", "from": {"id": 9, "first_name": "Bo"}, "data": "refund"}
    (message,) = ADAPTER.parse(_update(callback_query=query)).messages
    assert (message.text, message.conversation_id, message.sender_name) == ("refund", "9", "Bo")


def test_location_and_venue():
    (plain,) = ADAPTER.parse(
        _update(message=_message(location={"latitude": 52.52, "longitude": 13.405}))
    ).messages
    assert (plain.kind, plain.data["latitude"], plain.data["longitude"]) == ("location", 52.52, 13.405)
    assert "52.52" in plain.text
    assert "13.405" in plain.text
    venue = {"location": {"latitude": 1.5, "longitude": 2.5}, "title": "Shop", "address": "Main St 1"}
    (place,) = ADAPTER.parse(_update(message=_message(venue=venue, location=venue["location"]))).messages
    assert (place.data["name"], place.data["address"]) == ("Shop", "Main St 1")
    assert "Shop, Main St 1" in place.text


def test_contact():
    contact = {"phone_number": "+4915700000000", "first_name": "Max", "last_name": "Muster", "user_id": 77}
    (message,) = ADAPTER.parse(_update(message=_message(contact=contact))).messages
    assert message.kind == "contacts"
    assert message.data["contacts"] == [{"name": "Max Muster", "phone": "+4915700000000", "user_id": "77"}]
    assert "Max Muster, +4915700000000" in message.text


def test_audio_animation_and_video_note():
    audio = {"file_id": "A1", "mime_type": "audio/mpeg", "performer": "Band", "title": "Song", "duration": 3}
    (song,) = ADAPTER.parse(_update(message=_message(audio=audio))).messages
    assert (song.kind, song.attachments[0].filename, song.data["title"]) == (
        "audio",
        "audio-A1.mp3",
        "Band – Song",
    )
    gif = {"file_id": "G1", "mime_type": "video/mp4", "file_name": "fun.mp4"}
    (animation,) = ADAPTER.parse(_update(message=_message(animation=gif, document=gif))).messages
    assert (animation.kind, len(animation.attachments), animation.attachments[0].filename) == (
        "video",
        1,
        "fun.mp4",
    )
    (note,) = ADAPTER.parse(_update(message=_message(video_note={"file_id": "N1", "length": 240}))).messages
    assert note.attachments[0].filename == "video_note-N1.mp4"


def test_poll_dice_and_unknown_content_are_described():
    poll = {"id": "1", "question": "Best?", "options": [{"text": "A", "voter_count": 0}, {"text": "B"}]}
    (asked,) = ADAPTER.parse(_update(message=_message(poll=poll))).messages
    assert asked.kind == "poll"
    assert "Best?" in asked.text
    assert "A / B" in asked.text
    (dice,) = ADAPTER.parse(_update(message=_message(dice={"emoji": "🎲", "value": 4}))).messages
    assert dice.text == "🎲 4"
    (game,) = ADAPTER.parse(_update(message=_message(game={"title": "x"}))).messages
    assert (game.kind, game.data["type"]) == ("unsupported", "game")
    (nothing,) = ADAPTER.parse(_update(message=_message(brand_new_field={"a": 1}))).messages
    assert nothing.kind == "unsupported"
    assert nothing.text


def test_text_links_show_their_url_after_the_words():
    text = "😄 See our terms here."
    entities = [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "text_link", "offset": 13, "length": 8, "url": "https://example.com/terms"},
    ]
    (message,) = ADAPTER.parse(_update(message=_message(text=text, entities=entities))).messages
    # The emoji counts two UTF-16 units: the link covers "here" exactly.
    assert message.text == "😄 See our terms here (https://example.com/terms)."


def test_a_lone_surrogate_with_a_link_is_kept_as_is():
    body = b'{"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}, "text": "a\\ud800b",'
    body += b' "entities": [{"type": "text_link", "offset": 0, "length": 1, "url": "https://x.example"}]}}'
    (message,) = ADAPTER.parse(body).messages
    assert message.text == "a\ud800b"


def test_a_reply_names_the_message_it_answers():
    reply = _message(text="Thanks", reply_to_message=_message(message_id=40, text="Hi"))
    (message,) = ADAPTER.parse(_update(message=reply)).messages
    assert message.reply_to == "555:40"


def test_an_anonymous_group_admin_is_the_group():
    group = {"id": -100200, "title": "Support group", "type": "supergroup"}
    raw = _message(
        text="hello", chat=group, sender_chat=group, **{"from": {"id": 1087968824, "first_name": "Group"}}
    )
    (message,) = ADAPTER.parse(_update(message=raw)).messages
    assert (message.sender_id, message.sender_name, message.conversation_id) == (
        "-100200",
        "Support group",
        "-100200",
    )


def test_a_group_member_is_the_person_in_the_group_chat():
    raw = _message(text="hello", chat={"id": -100200, "title": "Support group", "type": "supergroup"})
    (message,) = ADAPTER.parse(_update(message=raw)).messages
    assert (message.sender_id, message.conversation_id, message.external_id) == (
        "555",
        "-100200",
        "-100200:42",
    )


def test_a_user_with_only_a_username():
    raw = _message(text="hi", **{"from": {"id": 8, "username": "nick"}})
    assert ADAPTER.parse(_update(message=raw)).messages[0].sender_name == "@nick"


def test_service_messages_and_other_updates_are_ignored():
    joined = _message(new_chat_members=[{"id": 1, "first_name": "X"}])
    assert ADAPTER.parse(_update(message=joined)) == Parsed(ignored=("service message new_chat_members",))
    member = {"chat": {"id": 1}, "from": {"id": 2}, "date": 1, "old_chat_member": {}, "new_chat_member": {}}
    assert ADAPTER.parse(_update(my_chat_member=member)) == Parsed(ignored=("my_chat_member",))
    assert ADAPTER.parse(_update(chat_member=member)) == Parsed(ignored=("chat_member",))
    assert ADAPTER.parse(_update(some_future_update={"a": 1})) == Parsed(
        ignored=("update some_future_update",)
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"message": "hello"}',
        b'{"update_id": 1, "message": {"message_id": 1, "date": 1}}',
        b'{"update_id": 1, "message": {"chat": {"id": 1}, "date": 1}}',
        b'{"update_id": 1, "message": {"chat": {"id": 1}, "message_id": 1, "text": "no date"}}',
        b'{"update_id": 1, "message": {"chat": {"id": 1}, "message_id": 1, "date": 99999999999999999}}',
        b'{"update_id": 1, "callback_query": {"id": "1"}}',
        b"\xff\xfe",
    ],
)
def test_malformed_updates_are_parse_errors(body: bytes):
    with pytest.raises(ParseError):
        ADAPTER.parse(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
_FIELDS = [
    "message_id", "date", "edit_date", "chat", "from", "sender_chat", "text", "caption", "entities", "photo",
    "document", "video", "voice", "audio", "sticker", "location", "venue", "contact", "poll", "dice",
    "animation", "reply_to_message", "new_chat_members", "caption_entities",
]  # fmt: skip
_chat = st.fixed_dictionaries(
    {"id": st.integers() | st.text(max_size=5)}, optional={"title": _json, "type": _json}
)
_message_like = st.fixed_dictionaries(
    {"message_id": st.integers(), "date": st.integers(min_value=0, max_value=2**33), "chat": _chat},
    optional={field: _json for field in _FIELDS if field not in ("message_id", "date", "chat")},
)
_update_like = st.fixed_dictionaries(
    {"update_id": st.integers()},
    optional=dict.fromkeys(
        ("message", "edited_message", "channel_post", "edited_channel_post", "callback_query"),
        _message_like | _json,
    ),
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
@given(_update_like)
def test_any_update_shaped_body_parses_or_is_a_parse_error(value: Any):
    _parse_or_error(json.dumps(value).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_a_parse_error(body: bytes):
    _parse_or_error(body)


# -- the webhook's authenticity ----------------------------------------------------------------


def test_the_right_secret_token_passes():
    ADAPTER.verify(_request({"x-telegram-bot-api-secret-token": "s3cret-Token_1"}), CREDENTIALS)


def test_header_names_are_matched_whatever_their_case():
    ADAPTER.verify(_request({"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}), CREDENTIALS)


@pytest.mark.parametrize(
    "headers",
    [{"x-telegram-bot-api-secret-token": "s3cret-Token_2"}, {}, {"x-telegram-bot-api-secret-token": ""}],
)
def test_a_wrong_or_missing_secret_token_is_refused(headers: dict[str, str]):
    with pytest.raises(SignatureError) as error:
        ADAPTER.verify(_request(headers), CREDENTIALS)
    assert error.value.status == 403


def test_an_account_without_a_secret_token_refuses_everything_and_says_why():
    with pytest.raises(SignatureError, match="setWebhook"):
        ADAPTER.verify(_request({"x-telegram-bot-api-secret-token": ""}), Credentials(account_id="1"))


def test_there_is_no_verification_get():
    get = WebhookRequest(method="GET", body=b"", headers={}, query={"hub.challenge": "1"})
    with pytest.raises(ParseError, match="POST"):
        ADAPTER.handshake(get, CREDENTIALS)


def test_platform_rules():
    assert (ADAPTER.platform, ADAPTER.reply_window) == ("telegram", None)
    assert 0 < ADAPTER.rate_per_second <= 30


# -- sending -----------------------------------------------------------------------------------


def _sent(chat: int = 555, message_id: int = 901) -> dict[str, Any]:
    return {
        "ok": True,
        "result": {"message_id": message_id, "chat": {"id": chat, "type": "private"}, "date": 1},
    }


def _body(call: Any) -> Any:
    return json.loads(call.request.body)


def test_send_text_as_a_reply(api, session):
    api.post(f"{API}/sendMessage", json=_sent())
    result = ADAPTER.send(
        session,
        CREDENTIALS,
        OutboundMessage(recipient_id="555", conversation_id="555", text="Hello Ada", reply_to="555:42"),
    )
    assert result.external_id == "555:901"
    (call,) = api.calls
    assert call.request.url == f"{API}/sendMessage"
    assert call.request.headers["Content-Type"] == "application/json"
    assert _body(call) == {
        "chat_id": 555,
        "text": "Hello Ada",
        "reply_parameters": {"message_id": 42, "allow_sending_without_reply": True},
    }


@pytest.mark.parametrize("reply_to", ["42", "555:42:edit:1700000100", "telegram:555:42"])
def test_reply_to_accepts_every_spelling_of_a_message_id(api, session, reply_to: str):
    api.post(f"{API}/sendMessage", json=_sent())
    ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi", reply_to=reply_to))
    assert _body(api.calls[0])["reply_parameters"]["message_id"] == 42


def test_send_to_the_recipient_when_there_is_no_conversation(api, session):
    api.post(f"{API}/sendMessage", json=_sent(chat=-1001))
    result = ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="-1001", text="Hi"))
    assert result.external_id == "-1001:901"
    assert _body(api.calls[0]) == {"chat_id": -1001, "text": "Hi"}


def test_send_uses_the_accounts_api_base(api, session):
    api.post(f"https://tg.example/bot{TOKEN}/sendMessage", json=_sent())
    credentials = Credentials(account_id="1", access_token=TOKEN, api_base="https://tg.example/")
    ADAPTER.send(session, credentials, OutboundMessage(recipient_id="555", text="Hi"))
    assert len(api.calls) == 1


@pytest.mark.parametrize(
    ("kind", "method", "field"),
    [
        ("image", "sendPhoto", "photo"),
        ("document", "sendDocument", "document"),
        ("video", "sendVideo", "video"),
        ("", "sendDocument", "document"),
    ],
)
def test_send_media_by_url(api, session, kind: str, method: str, field: str):
    api.post(f"{API}/{method}", json=_sent())
    message = OutboundMessage(
        recipient_id="555", text="Your invoice", media_url="https://cdn.example/a.pdf", media_kind=kind
    )
    assert ADAPTER.send(session, CREDENTIALS, message).external_id == "555:901"
    assert _body(api.calls[0]) == {
        "chat_id": 555,
        field: "https://cdn.example/a.pdf",
        "caption": "Your invoice",
    }


def test_too_many_requests_is_retryable_after_what_telegram_asks(api, session):
    api.post(
        f"{API}/sendMessage",
        status=429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi"))
    assert (error.value.retryable, error.value.retry_after) == (True, 7.0)


def test_a_server_error_is_retryable(api, session):
    api.post(f"{API}/sendMessage", status=502, body="Bad Gateway")
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi"))
    assert error.value.retryable is True
    assert TOKEN not in str(error.value)


@pytest.mark.parametrize(
    ("status", "description"),
    [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")],
)
def test_a_refusal_is_final_with_telegrams_description(api, session, status: int, description: str):
    api.post(
        f"{API}/sendMessage",
        status=status,
        json={"ok": False, "error_code": status, "description": description},
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi"))
    assert error.value.retryable is False
    assert description in str(error.value)


def test_a_group_upgraded_to_a_supergroup_names_the_new_chat(api, session):
    api.post(
        f"{API}/sendMessage",
        status=400,
        json={
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1009},
        },
    )
    with pytest.raises(SendError, match="-1009"):
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="-5", text="Hi"))


def test_the_token_never_appears_in_an_error(api, session):
    api.post(
        f"{API}/sendMessage",
        status=404,
        json={"ok": False, "error_code": 404, "description": f"Not Found: /bot{TOKEN}/x"},
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi"))
    assert TOKEN not in str(error.value)
    assert "Not Found" in str(error.value)


def test_a_network_error_is_retryable_and_hides_the_url(api, session):
    api.post(
        f"{API}/sendMessage",
        body=requests.ConnectionError(f"Max retries exceeded with url: /bot{TOKEN}/sendMessage"),
    )
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, OutboundMessage(recipient_id="555", text="Hi"))
    assert error.value.retryable is True
    assert TOKEN not in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__ is True


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage(recipient_id="555", text="  "),
        OutboundMessage(recipient_id="", text="Hi"),
        OutboundMessage(recipient_id="555", text="x" * 4097),
    ],
)
def test_what_cannot_be_sent_is_refused_before_any_request(api, session, message: OutboundMessage):
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, CREDENTIALS, message)
    assert error.value.retryable is False
    assert len(api.calls) == 0


def test_no_bot_token_is_a_final_error(api, session):
    with pytest.raises(SendError) as error:
        ADAPTER.send(session, Credentials(account_id="1"), OutboundMessage(recipient_id="555", text="Hi"))
    assert error.value.retryable is False


# -- downloading -------------------------------------------------------------------------------


def _file(size: int = 5, path: str = "documents/file_7.pdf") -> dict[str, Any]:
    return {
        "ok": True,
        "result": {"file_id": "documentfileid", "file_unique_id": "u", "file_size": size, "file_path": path},
    }


def test_download_asks_getfile_then_fetches_the_path(api, session):
    api.post(f"{API}/getFile", json=_file())
    api.get(
        f"https://api.telegram.org/file/bot{TOKEN}/documents/file_7.pdf",
        body=b"%PDF-",
        content_type="application/octet-stream",
    )
    (message,) = _parse("private/document.json").messages
    downloaded = ADAPTER.download(session, CREDENTIALS, message.attachments[0])
    assert (downloaded.content, downloaded.mime_type, downloaded.filename) == (
        b"%PDF-",
        "application/pdf",
        "document.pdf",
    )
    assert _body(api.calls[0]) == {"file_id": "documentfileid"}
    assert api.calls[1].request.url == f"https://api.telegram.org/file/bot{TOKEN}/documents/file_7.pdf"


def test_download_names_a_nameless_file_after_its_path(api, session):
    api.post(f"{API}/getFile", json=_file(path="photos/file_3.jpg"))
    api.get(
        f"https://api.telegram.org/file/bot{TOKEN}/photos/file_3.jpg",
        body=b"\xff\xd8",
        content_type="image/jpeg",
    )
    downloaded = ADAPTER.download(session, CREDENTIALS, MediaRef(kind="image", media_id="photofileid3"))
    assert (downloaded.mime_type, downloaded.filename) == ("image/jpeg", "file_3.jpg")


def test_a_file_over_20_mb_is_refused_without_a_request(api, session):
    with pytest.raises(SendError) as error:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="video", media_id="v", size=21 * 1024 * 1024))
    assert error.value.retryable is False
    assert len(api.calls) == 0


def test_a_file_getfile_reports_over_20_mb_is_refused(api, session):
    api.post(f"{API}/getFile", json=_file(size=20 * 1024 * 1024 + 1))
    with pytest.raises(SendError, match="20 MB") as error:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="video", media_id="v"))
    assert error.value.retryable is False


def test_a_stream_longer_than_the_cap_is_cut(api, session, monkeypatch):
    monkeypatch.setattr(telegram, "MAX_DOWNLOAD", 10)
    api.post(f"{API}/getFile", json={"ok": True, "result": {"file_id": "v", "file_path": "videos/v.mp4"}})
    api.get(f"https://api.telegram.org/file/bot{TOKEN}/videos/v.mp4", body=b"x" * 11)
    with pytest.raises(SendError) as error:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="video", media_id="v"))
    assert error.value.retryable is False


def test_getfile_refused_is_final_and_the_file_servers_trouble_retryable(api, session):
    api.post(
        f"{API}/getFile",
        status=400,
        json={"ok": False, "error_code": 400, "description": "Bad Request: file is too big"},
    )
    with pytest.raises(SendError, match="file is too big") as refused:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="video", media_id="v"))
    assert refused.value.retryable is False
    api.post(f"{API}/getFile", json=_file())
    api.get(f"https://api.telegram.org/file/bot{TOKEN}/documents/file_7.pdf", status=503)
    with pytest.raises(SendError) as failed:
        ADAPTER.download(session, CREDENTIALS, MediaRef(kind="document", media_id="documentfileid"))
    assert failed.value.retryable is True
    assert TOKEN not in str(failed.value)
