"""Messenger and Instagram adapters: Meta's real samples in, the exact Graph requests out.

Proves: every bottender sample in the corpus parses to what messenger/expected.json says (sender,
recipient, time, mid, text, attachment type and url, postback payload, delivery mids and watermark),
with Care's deliberate differences asserted one per line; Instagram story mentions, echoes,
deletes, edits and reads; every signature vector and handshake case; malformed bodies are a
ParseError and random JSON never anything else; send posts exactly the documented request and
sorts Meta's errors into retryable or not; download fetches without credentials and caps the size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses import matchers

from care.connectors.social import meta
from care.connectors.social.base import (
    Credentials,
    DeliveryState,
    InboundSocialMessage,
    MediaRef,
    OutboundMessage,
    Parsed,
    ParseError,
    SendError,
    SignatureError,
    WebhookRequest,
)
from care.connectors.social.meta import INSTAGRAM, MESSENGER
from tests.social.corpus import SOCIAL, corpus_file, corpus_json

EXPECTED_PATH = SOCIAL / "messenger" / "expected.json"
EXPECTED: dict[str, Any] = json.loads(EXPECTED_PATH.read_text()) if EXPECTED_PATH.is_file() else {}
PAGE = "404217156637689"
CUSTOMER = "1423587017700273"
TOKEN = "EAAG-page-token"
CREDENTIALS = Credentials(
    account_id=PAGE, app_secret="FAKE_SECRET", verify_token="1qaz2wsx", access_token=TOKEN
)
SEND_URL = f"{meta.GRAPH_API}/{PAGE}/messages"


def ms(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


def sample_body(name: str) -> bytes:
    """A corpus sample as Meta POSTs it: messaging-event files wrapped in the page envelope."""
    sample = corpus_json(f"messenger/{name}")
    if name.endswith(".post-body.json"):
        return body_of(sample)
    entry = {"id": sample["recipient"]["id"], "time": sample.get("timestamp", 1), "messaging": [sample]}
    return body_of({"object": "page", "entry": [entry]})


def envelope(
    *items: dict[str, Any], obj: str = "page", account: str = PAGE, channel: str = "messaging"
) -> bytes:
    return body_of({"object": obj, "entry": [{"id": account, "time": 1700000000000, channel: list(items)}]})


def incoming(
    sender: str = CUSTOMER, recipient: str = PAGE, timestamp: int = 1700000000123, **event: Any
) -> dict:
    return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": timestamp, **event}


def only_message(parsed: Parsed) -> InboundSocialMessage:
    assert len(parsed.messages) == 1, parsed
    assert not parsed.statuses
    return parsed.messages[0]


# -- the corpus --------------------------------------------------------------------------------


def test_every_sample_file_has_an_expectation():
    files = {f"bottender/{path.name}" for path in (SOCIAL / "messenger" / "bottender").glob("*.json")}
    if not files:
        pytest.skip("social corpus absent")
    assert files == set(EXPECTED)


MESSAGE_SAMPLES = [
    name
    for name, case in EXPECTED.items()
    if isinstance(case["expected"], dict) and case["expected"]["kind"] == "message"
]


@pytest.mark.parametrize("name", MESSAGE_SAMPLES)
def test_message_samples_match_expected(name):
    expected = EXPECTED[name]["expected"]
    message = only_message(MESSENGER.parse(sample_body(name)))
    assert message.platform == "messenger"
    assert message.sender_id == expected["sender_id"]
    assert message.conversation_id == expected["sender_id"]
    assert message.account_id == expected["recipient_id"]
    assert message.occurred_at == ms(expected["timestamp"])
    assert message.external_id == expected["message_id"]
    assert message.from_account is False
    if "text" in expected:
        assert message.text == expected["text"]
        assert message.kind == "text"
    with_url = [a for a in expected.get("attachments", []) if a["url"]]
    assert [(m.kind, m.url) for m in message.attachments] == [(a["type"], a["url"]) for a in with_url]
    assert message.text or message.attachments  # never an empty interaction


def test_location_sample_becomes_a_pin_not_a_download():
    message = only_message(MESSENGER.parse(sample_body("bottender/location_message.messaging-event.json")))
    assert message.kind == "location"
    assert message.text == "📍 0, 0"
    assert message.data["location"]["latitude"] == 0
    assert message.data["location"]["longitude"] == 0


def test_fallback_sample_keeps_the_link_as_text():
    message = only_message(MESSENGER.parse(sample_body("bottender/fallback_message.messaging-event.json")))
    assert message.kind == "fallback"
    assert message.text == "TITLE_OF_THE_URL_ATTACHMENT URL_OF_THE_ATTACHMENT"
    assert message.data["link"] == {"title": "TITLE_OF_THE_URL_ATTACHMENT", "url": "URL_OF_THE_ATTACHMENT"}


def test_customer_chat_plugin_sample_records_its_source():
    name = "bottender/text_message_from_customer_chat_plugin.messaging-event.json"
    assert only_message(MESSENGER.parse(sample_body(name))).data["sources"] == ["customer_chat_plugin"]


def test_delivery_sample_is_one_status_per_mid():
    expected = EXPECTED["bottender/delivery.messaging-event.json"]["expected"]
    parsed = MESSENGER.parse(sample_body("bottender/delivery.messaging-event.json"))
    assert not parsed.messages
    assert [s.external_id for s in parsed.statuses] == expected["delivered_mids"]
    for status in parsed.statuses:
        assert status.state == DeliveryState.DELIVERED
        assert status.watermark == ms(expected["watermark"])
        # The sample has no timestamp: the watermark is the best time there is.
        assert status.occurred_at == ms(expected["watermark"])
        # Wrapped under the recipient's id, the other party (the sample's sender) is the customer.
        assert status.account_id == expected["recipient_id"]
        assert status.recipient_id == expected["sender_id"]


def test_read_sample_is_a_watermark_status():
    expected = EXPECTED["bottender/read.messaging-event.json"]["expected"]
    parsed = MESSENGER.parse(sample_body("bottender/read.messaging-event.json"))
    assert not parsed.messages
    (status,) = parsed.statuses
    assert status.state == DeliveryState.READ
    assert status.external_id == ""  # Messenger names no message: everything up to the watermark
    assert status.watermark == ms(expected["watermark"])
    assert status.occurred_at == ms(expected["timestamp"])
    assert status.recipient_id == expected["sender_id"]


@pytest.mark.parametrize(
    "name", ["bottender/postback.messaging-event.json", "bottender/postback_referral.messaging-event.json"]
)
def test_postback_samples(name):
    expected = EXPECTED[name]["expected"]
    message = only_message(MESSENGER.parse(sample_body(name)))
    assert message.kind == "postback"
    assert message.sender_id == expected["sender_id"]
    assert message.account_id == expected["recipient_id"]
    assert message.occurred_at == ms(expected["timestamp"])
    assert message.data["payload"] == expected["postback_payload"]
    # Care shows the button's title, or the payload when the button had none (text is never empty).
    assert message.text == (expected["postback_title"] or expected["postback_payload"])
    # No mid in these samples: the id is built from the customer and the time, stable on retries.
    assert message.external_id == f"postback:{expected['sender_id']}:{expected['timestamp']}"


def test_postback_referral_is_kept():
    message = only_message(MESSENGER.parse(sample_body("bottender/postback_referral.messaging-event.json")))
    assert message.data["referral"] == {"source": "SHORTLINK", "type": "OPEN_THREAD", "ref": "aaaa"}


@pytest.mark.parametrize(
    "name",
    ["bottender/reaction_react.messaging-event.json", "bottender/reaction_unreact.messaging-event.json"],
)
def test_reaction_samples(name):
    expected = EXPECTED[name]["expected"]
    message = only_message(MESSENGER.parse(sample_body(name)))
    assert message.kind == "reaction"
    assert message.sender_id == expected["sender_id"]
    assert message.occurred_at == ms(expected["timestamp"])
    assert message.reply_to == expected["reaction"]["mid"]
    assert {k: message.data[k] for k in ("reaction", "emoji", "action", "mid")} == expected["reaction"]
    if expected["reaction"]["action"] == "react":
        assert message.text == "reacted ❤️ to a message"
    else:
        assert message.text == "removed the reaction ❤️ from a message"


def test_react_and_unreact_have_different_ids():
    react = only_message(MESSENGER.parse(sample_body("bottender/reaction_react.messaging-event.json")))
    unreact = only_message(MESSENGER.parse(sample_body("bottender/reaction_unreact.messaging-event.json")))
    assert react.external_id != unreact.external_id


@pytest.mark.parametrize(
    ("name", "label"),
    [
        # Care deliberately turns these into no interaction: nothing for an agent to read.
        ("bottender/optin.messaging-event.json", "optin"),
        ("bottender/link_referral.messaging-event.json", "referral:shortlink"),
        ("bottender/policy_enforcement.messaging-event.json", "policy_enforcement"),
    ],
)
def test_non_message_samples_are_ignored_with_a_label(name, label):
    parsed = MESSENGER.parse(sample_body(name))
    assert parsed == Parsed(ignored=(label,))


@pytest.mark.parametrize(
    "name", ["bottender/request.post-body.json", "bottender/batch_request.post-body.json"]
)
def test_post_body_samples(name):
    expected = EXPECTED[name]["expected"]
    parsed = MESSENGER.parse(corpus_file(f"messenger/{name}").read_bytes())
    assert [(m.account_id, m.sender_id, m.occurred_at, m.external_id, m.text) for m in parsed.messages] == [
        (e["page_id"], e["sender_id"], ms(e["timestamp"]), e["message_id"], e["text"]) for e in expected
    ]
    assert not any(m.data.get("standby") for m in parsed.messages)


def test_standby_sample_without_an_event_is_ignored():
    expected = EXPECTED["bottender/standby_request.post-body.json"]["expected"]
    assert expected[0]["channel"] == "standby"
    parsed = MESSENGER.parse(corpus_file("messenger/bottender/standby_request.post-body.json").read_bytes())
    # The sample is an envelope with no message: Care records it, creates nothing.
    assert parsed == Parsed(ignored=("standby:unknown:empty",))


# -- more Messenger shapes (Meta's documented wire format) -------------------------------------


def test_standby_message_is_parsed_and_marked():
    item = incoming(message={"mid": "m.standby", "text": "hello"})
    message = only_message(MESSENGER.parse(envelope(item, channel="standby")))
    assert (message.text, message.external_id, message.data["standby"]) == ("hello", "m.standby", True)


def test_echo_threads_on_the_customer():
    item = incoming(
        sender=PAGE,
        recipient=CUSTOMER,
        message={"mid": "m.echo", "text": "We are on it", "is_echo": True, "app_id": 1517776481860111},
    )
    message = only_message(MESSENGER.parse(envelope(item)))
    assert message.from_account is True
    assert (message.sender_id, message.conversation_id, message.account_id) == (CUSTOMER, CUSTOMER, PAGE)
    assert message.data["app_id"] == "1517776481860111"


def test_a_message_sent_by_the_page_is_an_echo_even_without_the_flag():
    item = incoming(
        sender=PAGE, recipient=CUSTOMER, message={"mid": "m.page", "text": "Sent from Business Suite"}
    )
    message = only_message(MESSENGER.parse(envelope(item)))
    assert (message.from_account, message.sender_id) == (True, CUSTOMER)


def test_quick_reply_sticker_reply_to_and_template():
    items = [
        incoming(message={"mid": "m.qr", "text": "Red", "quick_reply": {"payload": "PICK_RED"}}),
        incoming(
            message={
                "mid": "m.like",
                "sticker_id": 369239263222822,
                "attachments": [
                    {
                        "type": "image",
                        "payload": {"url": "https://x.fbcdn.net/s.png", "sticker_id": 369239263222822},
                    }
                ],
            }
        ),
        incoming(message={"mid": "m.quote", "text": "this one", "reply_to": {"mid": "m.earlier"}}),
        incoming(
            message={
                "mid": "m.tpl",
                "attachments": [
                    {
                        "type": "template",
                        "payload": {"template_type": "generic", "elements": [{"title": "Shoes"}]},
                    }
                ],
            }
        ),
    ]
    qr, like, quote, template = MESSENGER.parse(envelope(*items)).messages
    assert (qr.kind, qr.text, qr.data["quick_reply_payload"]) == ("quick_reply", "Red", "PICK_RED")
    assert (like.kind, like.text, like.data["sticker_id"]) == ("sticker", "👍", "369239263222822")
    assert like.attachments == (MediaRef(kind="sticker", url="https://x.fbcdn.net/s.png"),)
    assert (quote.reply_to, quote.text) == ("m.earlier", "this one")
    assert (template.kind, template.text, template.attachments) == ("template", "Shoes", ())


def test_several_images_in_one_message_keep_every_url():
    attachments = [{"type": "image", "payload": {"url": f"https://x.fbcdn.net/{n}.jpg"}} for n in range(3)]
    message = only_message(
        MESSENGER.parse(envelope(incoming(message={"mid": "m.3", "attachments": attachments})))
    )
    assert message.kind == "image"
    assert [m.url for m in message.attachments] == [f"https://x.fbcdn.net/{n}.jpg" for n in range(3)]


def test_edit_and_delete_are_new_interactions_pointing_at_the_original():
    items = [
        incoming(message_edit={"mid": "m.1", "text": "fixed typo", "num_edit": 2}),
        incoming(message={"mid": "m.1", "is_deleted": True}),
    ]
    edit, deleted = MESSENGER.parse(envelope(*items)).messages
    assert (edit.kind, edit.text, edit.reply_to, edit.external_id) == (
        "edit",
        "fixed typo",
        "m.1",
        "m.1:edit:2",
    )
    assert (deleted.kind, deleted.text, deleted.reply_to, deleted.external_id) == (
        "deleted",
        "deleted a message",
        "m.1",
        "m.1:deleted",
    )


def test_delivery_without_mids_is_one_watermark_status():
    item = {"sender": {"id": CUSTOMER}, "recipient": {"id": PAGE}, "delivery": {"watermark": 1700000000999}}
    (status,) = MESSENGER.parse(envelope(item)).statuses
    assert (status.external_id, status.watermark, status.recipient_id) == ("", ms(1700000000999), CUSTOMER)


def test_handover_linking_unknown_and_changes_are_labelled():
    body = body_of(
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE,
                    "messaging": [
                        incoming(pass_thread_control={"new_owner_app_id": "1"}),
                        incoming(account_linking={"status": "linked"}),
                        incoming(game_play={"game_id": "1"}),
                        incoming(brand_new_event={"x": 1}),
                        "not an item",
                    ],
                },
                {"id": PAGE, "changes": [{"field": "feed", "value": {}}]},
                {"id": PAGE},
                7,
            ],
        }
    )
    assert MESSENGER.parse(body).ignored == (
        "pass_thread_control",
        "account_linking",
        "game_play",
        "unknown:brand_new_event",
        "messaging:not-an-object",
        "changes:feed",
        "entry:empty",
        "entry:not-an-object",
    )


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"message": {}},
        {"sender": {}, "message": {"text": "no sender"}},
        {"sender": "x", "recipient": [], "timestamp": "soon", "message": {"text": "odd"}},
        {"sender": {"id": CUSTOMER}, "message": {"attachments": "nope", "tags": 5, "reply_to": 3}},
        {
            "sender": {"id": CUSTOMER},
            "message": {"attachments": [None, {"type": "location"}, {"payload": 1}]},
        },
        {"sender": {"id": CUSTOMER}, "postback": None},
        {"sender": {"id": CUSTOMER}, "reaction": {"action": "unreact"}},
        {"sender": {"id": CUSTOMER}, "delivery": {"mids": "m.1"}},
        {"sender": {"id": CUSTOMER}, "read": {}},
        {"sender": {"id": CUSTOMER}, "message_edit": {"text": "no mid"}},
        {"sender": {"id": CUSTOMER}, "timestamp": 10**400, "message": {"mid": "m.big"}},
        {"sender": {"id": CUSTOMER}, "timestamp": -5, "message": {"mid": "m.neg", "text": "t"}},
    ],
)
def test_missing_or_odd_fields_never_crash(item):
    parsed = MESSENGER.parse(envelope(item))
    for message in parsed.messages:
        assert message.sender_id
        assert message.external_id
        assert message.text or message.attachments
        assert message.occurred_at.tzinfo is dt.UTC


def test_message_without_mid_gets_a_stable_id():
    item = incoming(message={"text": "no mid"})
    first, second = (only_message(MESSENGER.parse(envelope(item))) for _ in range(2))
    assert first.external_id == second.external_id == f"message:{CUSTOMER}:1700000000123"


def test_seconds_timestamps_are_read_as_seconds():
    message = only_message(
        MESSENGER.parse(envelope(incoming(timestamp=1700000000, message={"mid": "m", "text": "t"})))
    )
    assert message.occurred_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)


# -- Instagram ---------------------------------------------------------------------------------

IG_ACCOUNT = "17841400000000001"
IGSID = "5566778899001122"
CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=abc"


def test_instagram_story_mention_text_echo_read_and_delete():
    items = [
        incoming(
            sender=IGSID,
            recipient=IG_ACCOUNT,
            message={"mid": "ig.1", "attachments": [{"type": "story_mention", "payload": {"url": CDN}}]},
        ),
        incoming(sender=IGSID, recipient=IG_ACCOUNT, message={"mid": "ig.2", "text": "Do you ship to Oslo?"}),
        incoming(
            sender=IG_ACCOUNT, recipient=IGSID, message={"mid": "ig.3", "text": "Yes!", "is_echo": True}
        ),
        incoming(sender=IGSID, recipient=IG_ACCOUNT, read={"mid": "ig.3"}),
        incoming(sender=IGSID, recipient=IG_ACCOUNT, message={"mid": "ig.2", "is_deleted": True}),
        incoming(
            sender=IGSID,
            recipient=IG_ACCOUNT,
            message={"mid": "ig.4", "text": "Nice", "reply_to": {"story": {"url": CDN, "id": "9"}}},
        ),
    ]
    parsed = INSTAGRAM.parse(envelope(*items, obj="instagram", account=IG_ACCOUNT))
    story, text, echo, deleted, story_reply = parsed.messages
    assert {m.platform for m in parsed.messages} == {"instagram"}
    assert {(m.account_id, m.sender_id) for m in parsed.messages} == {(IG_ACCOUNT, IGSID)}
    assert (story.kind, story.text, story.external_id) == (
        "story_mention",
        "mentioned you in their story",
        "ig.1",
    )
    assert story.attachments == (MediaRef(kind="file", url=CDN),)
    assert (text.kind, text.text) == ("text", "Do you ship to Oslo?")
    assert echo.from_account is True
    assert (deleted.kind, deleted.reply_to) == ("deleted", "ig.2")
    assert story_reply.data["reply_to_story"] == {"id": "9", "url": CDN}
    (read,) = parsed.statuses
    assert (read.state, read.external_id, read.recipient_id, read.watermark) == (
        DeliveryState.READ,
        "ig.3",
        IGSID,
        None,
    )


def test_instagram_postback_with_mid_and_unsupported():
    items = [
        incoming(
            sender=IGSID,
            recipient=IG_ACCOUNT,
            postback={"mid": "ig.pb", "title": "Track order", "payload": "TRACK"},
        ),
        incoming(sender=IGSID, recipient=IG_ACCOUNT, message={"mid": "ig.u", "is_unsupported": True}),
    ]
    postback, unsupported = INSTAGRAM.parse(envelope(*items, obj="instagram", account=IG_ACCOUNT)).messages
    assert (postback.external_id, postback.text, postback.data["payload"]) == (
        "ig.pb",
        "Track order",
        "TRACK",
    )
    assert unsupported.kind == "unsupported"
    assert unsupported.text


@pytest.mark.parametrize(("adapter", "wrong"), [(MESSENGER, "instagram"), (INSTAGRAM, "page")])
def test_each_adapter_refuses_the_others_object(adapter, wrong):
    with pytest.raises(ParseError, match="expects object"):
        adapter.parse(envelope(incoming(message={"mid": "m", "text": "t"}), obj=wrong))


def test_adapter_constants():
    assert (MESSENGER.platform, INSTAGRAM.platform) == ("messenger", "instagram")
    assert MESSENGER.reply_window == INSTAGRAM.reply_window == dt.timedelta(hours=24)
    assert MESSENGER.tagged_reply_window == dt.timedelta(days=7)
    assert MESSENGER.rate_per_second > 0
    assert INSTAGRAM.rate_per_second > 0


# -- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"page"',
        b"{}",
        b'{"object": "page"}',
        b'{"object": "page", "entry": {}}',
        b'{"object": "page", "entry": "x"}',
        b'{"object": "user", "entry": []}',
        b"[" * 100_000,
    ],
)
def test_malformed_bodies_are_parse_errors(body):
    with pytest.raises(ParseError):
        MESSENGER.parse(body)


def test_empty_entry_list_is_nothing():
    assert MESSENGER.parse(b'{"object": "page", "entry": []}') == Parsed()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "sender",
        "recipient",
        "timestamp",
        "message",
        "postback",
        "reaction",
        "delivery",
        "read",
        "message_edit",
        "referral",
        "optin",
        "mid",
        "text",
        "attachments",
        "type",
        "payload",
        "url",
        "coordinates",
        "is_echo",
        "is_deleted",
        "mids",
        "watermark",
        "id",
        "quick_reply",
        "reply_to",
        "sticker_id",
        "title",
        "story",
    ]
)
META_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | KEYS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


def _parses_or_refuses(body: bytes) -> None:
    for adapter in (MESSENGER, INSTAGRAM):
        try:
            parsed = adapter.parse(body)
        except ParseError:
            continue
        assert isinstance(parsed, Parsed)
        for message in parsed.messages:
            assert isinstance(message.text, str)
            assert message.occurred_at.tzinfo is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_parses_or_raises_parse_error(document):
    _parses_or_refuses(body_of(document))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(META_LIKE, max_size=4), st.sampled_from(["messaging", "standby"]))
def test_random_items_in_a_valid_envelope_never_crash(items, channel):
    for obj in ("page", "instagram"):
        _parses_or_refuses(body_of({"object": obj, "entry": [{"id": PAGE, channel: items}]}))


# -- signatures and the handshake -------------------------------------------------------------


def signed(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", body=body, headers=headers, query={})


VECTORS = (
    corpus_json("messenger/signature-and-verification.json")["vectors"]
    if (SOCIAL / "messenger" / "signature-and-verification.json").is_file()
    else []
)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['header']}-{v['raw_body']}-{v['valid']}")
def test_signature_vectors(vector):
    credentials = Credentials(account_id=PAGE, app_secret=vector["app_secret"])
    request = signed(vector["raw_body"].encode(), {vector["header"].lower(): vector["signature"]})
    if vector["valid"]:
        assert MESSENGER.verify(request, credentials) is None
        assert INSTAGRAM.verify(request, credentials) is None
    else:
        with pytest.raises(SignatureError):
            MESSENGER.verify(request, credentials)


def test_signature_256_is_checked_even_when_a_valid_sha1_is_present():
    body = b"{}"
    sha1 = "sha1=" + hmac.new(b"FAKE_SECRET", body, hashlib.sha1).hexdigest()
    request = signed(body, {"x-hub-signature": sha1, "x-hub-signature-256": "sha256=" + "0" * 64})
    with pytest.raises(SignatureError):
        MESSENGER.verify(request, CREDENTIALS)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-hub-signature-256": ""},
        {"x-hub-signature-256": "sha1=448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dac"},
        {"x-hub-signature-256": "sha256=448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dad"},
        {"x-hub-signature-256": "sha256=ünïcode"},
    ],
)
def test_bad_or_missing_signatures_are_refused(headers):
    with pytest.raises(SignatureError) as caught:
        MESSENGER.verify(signed(b"{}", headers), CREDENTIALS)
    assert caught.value.status == 403


def test_signature_matches_regardless_of_hex_case():
    signature = "sha256=448DF8785DD36742E43FA3CAD9DE2ECA8CEB6391E79C742E33E52C6637F32DAC"
    assert MESSENGER.verify(signed(b"{}", {"x-hub-signature-256": signature}), CREDENTIALS) is None


def test_verify_without_an_app_secret_says_to_set_it():
    request = signed(
        b"{}",
        {"x-hub-signature-256": "sha256=448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dac"},
    )
    with pytest.raises(SignatureError, match="app secret"):
        MESSENGER.verify(request, Credentials(account_id=PAGE))


HANDSHAKES = (
    corpus_json("messenger/signature-and-verification.json")["get_verification"]["upstream_test_cases"]
    if (SOCIAL / "messenger" / "signature-and-verification.json").is_file()
    else []
)


@pytest.mark.parametrize("case", HANDSHAKES, ids=lambda c: str(c["expected_status"]))
def test_handshake_cases(case):
    request = WebhookRequest(method="GET", body=b"", headers={}, query=case["query"])
    credentials = Credentials(account_id=PAGE, verify_token=case["configured_verify_token"])
    if case["expected_status"] == 200:
        answer = MESSENGER.handshake(request, credentials)
        assert (answer.status, answer.body, answer.content_type) == (200, case["expected_body"], "text/plain")
    else:
        with pytest.raises(SignatureError) as caught:
            MESSENGER.handshake(request, credentials)
        assert caught.value.status == case["expected_status"]


@pytest.mark.parametrize(
    ("query", "verify_token", "error"),
    [
        (
            {"hub.mode": "unsubscribe", "hub.verify_token": "1qaz2wsx", "hub.challenge": "abc"},
            "1qaz2wsx",
            SignatureError,
        ),
        ({"hub.verify_token": "1qaz2wsx", "hub.challenge": "abc"}, "1qaz2wsx", SignatureError),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "abc"}, "", SignatureError),
        ({"hub.mode": "subscribe", "hub.verify_token": "1qaz2wsx"}, "1qaz2wsx", ParseError),
    ],
)
def test_handshake_refusals(query, verify_token, error):
    request = WebhookRequest(method="GET", body=b"", headers={}, query=query)
    with pytest.raises(error):
        INSTAGRAM.handshake(request, Credentials(account_id=PAGE, verify_token=verify_token))


# -- send --------------------------------------------------------------------------------------

AUTH = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


@responses.activate
def test_send_text(session):
    responses.post(
        SEND_URL,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {"recipient": {"id": CUSTOMER}, "messaging_type": "RESPONSE", "message": {"text": "Hello"}}
            ),
        ],
        json={"recipient_id": CUSTOMER, "message_id": "m.sent"},
    )
    result = MESSENGER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hello"))
    assert result.external_id == "m.sent"
    (call,) = responses.calls
    assert call.request.url == SEND_URL  # no token in the URL
    assert "access_token" not in call.request.url


@responses.activate
def test_send_human_agent_tag_and_reply_to(session):
    responses.post(
        SEND_URL,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "recipient": {"id": CUSTOMER},
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": {"text": "Following up"},
                    "reply_to": {"mid": "m.customer"},
                }
            ),
        ],
        json={"recipient_id": CUSTOMER, "message_id": "m.tagged"},
    )
    message = OutboundMessage(
        recipient_id=CUSTOMER, text="Following up", template_name="HUMAN_AGENT", reply_to="m.customer"
    )
    assert MESSENGER.send(session, CREDENTIALS, message).external_id == "m.tagged"


@responses.activate
def test_send_text_then_media(session):
    responses.post(
        SEND_URL,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "recipient": {"id": CUSTOMER},
                    "messaging_type": "RESPONSE",
                    "message": {"text": "Your invoice"},
                }
            ),
        ],
        json={"recipient_id": CUSTOMER, "message_id": "m.text"},
    )
    responses.post(
        SEND_URL,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "recipient": {"id": CUSTOMER},
                    "messaging_type": "RESPONSE",
                    "message": {
                        "attachment": {
                            "type": "file",
                            "payload": {"url": "https://care.example/f/invoice.pdf", "is_reusable": True},
                        }
                    },
                }
            ),
        ],
        json={"recipient_id": CUSTOMER, "message_id": "m.file"},
    )
    message = OutboundMessage(
        recipient_id=CUSTOMER,
        text="Your invoice",
        media_url="https://care.example/f/invoice.pdf",
        media_kind="document",
    )
    assert MESSENGER.send(session, CREDENTIALS, message).external_id == "m.file"
    assert len(responses.calls) == 2


@responses.activate
def test_send_instagram_image_uses_the_ig_account_and_api_base(session):
    url = f"https://graph.example/v99.0/{IG_ACCOUNT}/messages"
    responses.post(
        url,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "recipient": {"id": IGSID},
                    "messaging_type": "RESPONSE",
                    "message": {
                        "attachment": {"type": "image", "payload": {"url": "https://care.example/p.jpg"}}
                    },
                }
            ),
        ],
        json={"recipient_id": IGSID, "message_id": "ig.sent"},
    )
    credentials = Credentials(
        account_id=IG_ACCOUNT, access_token=TOKEN, api_base="https://graph.example/v99.0/"
    )
    message = OutboundMessage(recipient_id=IGSID, media_url="https://care.example/p.jpg", media_kind="image")
    assert INSTAGRAM.send(session, credentials, message).external_id == "ig.sent"


def graph_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("status", "answer", "headers", "retryable", "retry_after", "says"),
    [
        (
            429,
            graph_error(613, "Calls to this api have exceeded the rate limit."),
            {"Retry-After": "7"},
            True,
            7.0,
            "rate limit",
        ),
        (
            400,
            graph_error(80006, "There have been too many messages sent to this Messenger thread."),
            {},
            True,
            meta.RATE_LIMIT_WAIT,
            "too many",
        ),
        (
            500,
            graph_error(2, "An unexpected error has occurred. Please retry your request later."),
            {},
            True,
            None,
            "retry",
        ),
        (503, "<html>down</html>", {}, True, None, "HTTP 503"),
        (
            400,
            graph_error(10, "This message is sent outside of allowed window.", 2018278),
            {},
            False,
            None,
            "24 hours",
        ),
        (
            400,
            graph_error(551, "This person isn't available right now.", 1545041),
            {},
            False,
            None,
            "not available",
        ),
        (400, graph_error(190, "Error validating access token"), {}, False, None, "access token"),
        (
            400,
            graph_error(100, "(#100) The parameter recipient is required"),
            {},
            False,
            None,
            "parameter recipient",
        ),
    ],
)
@responses.activate
def test_send_errors(session, status, answer, headers, retryable, retry_after, says):
    if isinstance(answer, dict):
        responses.post(SEND_URL, status=status, json=answer, headers=headers)
    else:
        responses.post(SEND_URL, status=status, body=answer, headers=headers)
    with pytest.raises(SendError, match=says) as caught:
        MESSENGER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == retry_after


@responses.activate
def test_send_network_error_is_retryable(session):
    responses.post(SEND_URL, body=requests.ConnectionError("connection refused"))
    with pytest.raises(SendError) as caught:
        MESSENGER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert caught.value.retryable is True


@responses.activate
def test_send_timeout_is_set(session):
    responses.post(SEND_URL, json={"recipient_id": CUSTOMER, "message_id": "m"})
    MESSENGER.send(session, CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="Hi"))
    assert responses.calls[0].request.req_kwargs["timeout"] == meta.TIMEOUT


@pytest.mark.parametrize(
    ("credentials", "message", "says"),
    [
        (Credentials(account_id=PAGE), OutboundMessage(recipient_id=CUSTOMER, text="Hi"), "access token"),
        (CREDENTIALS, OutboundMessage(recipient_id="", text="Hi"), "recipient"),
        (CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER), "neither text nor media"),
        (
            CREDENTIALS,
            OutboundMessage(recipient_id=CUSTOMER, text="Hi", template_name="order_update"),
            "no message templates",
        ),
        (CREDENTIALS, OutboundMessage(recipient_id=CUSTOMER, text="x" * 2001), "2000 characters"),
    ],
)
@responses.activate
def test_send_refuses_before_calling_meta(session, credentials, message, says):
    with pytest.raises(SendError, match=says) as caught:
        MESSENGER.send(session, credentials, message)
    assert caught.value.retryable is False
    assert not responses.calls


# -- download ----------------------------------------------------------------------------------


@responses.activate
def test_download_sends_no_credentials_and_names_the_file(session):
    url = "https://scontent.xx.fbcdn.net/v/t35.0-12/17887258_o.jpg?oh=e44a&oe=58EC"
    responses.get(url, body=b"\xff\xd8jpeg", content_type="image/jpeg")
    got = MESSENGER.download(session, CREDENTIALS, MediaRef(kind="image", url=url))
    assert (got.content, got.mime_type, got.filename) == (b"\xff\xd8jpeg", "image/jpeg", "17887258_o.jpg")
    assert "Authorization" not in responses.calls[0].request.headers
    assert TOKEN not in responses.calls[0].request.url


@responses.activate
def test_download_names_a_file_from_its_type_when_the_url_has_no_name(session):
    responses.get(CDN, body=b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4; charset=binary")
    got = INSTAGRAM.download(session, CREDENTIALS, MediaRef(kind="file", url=CDN))
    assert (got.mime_type, got.filename) == ("video/mp4", "file.mp4")


@responses.activate
def test_download_caps_the_size(session):
    url = "https://cdn.example/big.bin"
    responses.get(url, body=b"x" * (meta.MAX_DOWNLOAD_BYTES + 1), content_type="application/octet-stream")
    with pytest.raises(SendError, match="larger than 25 MB") as caught:
        MESSENGER.download(session, CREDENTIALS, MediaRef(kind="file", url=url))
    assert caught.value.retryable is False


@pytest.mark.parametrize(("status", "retryable"), [(403, False), (404, False), (429, True), (502, True)])
@responses.activate
def test_download_failures(session, status, retryable):
    responses.get(CDN, status=status)
    with pytest.raises(SendError) as caught:
        MESSENGER.download(session, CREDENTIALS, MediaRef(kind="image", url=CDN))
    assert caught.value.retryable is retryable


@pytest.mark.parametrize("url", ["", "file:///etc/passwd", "ftp://cdn.example/x", "https://"])
def test_download_refuses_what_is_not_a_web_address(session, url):
    with pytest.raises(SendError) as caught:
        MESSENGER.download(session, CREDENTIALS, MediaRef(kind="image", url=url))
    assert caught.value.retryable is False
