"""Facebook Messenger and Instagram messaging: Meta's webhooks in, the Graph Send API out.

Both platforms speak the same protocol, so one class serves both; the module exposes two instances,
``MESSENGER`` (webhook ``object`` "page", a Facebook page id as the account) and ``INSTAGRAM``
(``object`` "instagram", the Instagram professional account id).

- ``handshake``: Meta's subscription check, ``GET ?hub.mode=subscribe&hub.verify_token=..&
  hub.challenge=..``, answered with the challenge when the token matches (constant-time).
- ``verify``: ``X-Hub-Signature-256`` = "sha256=" + hex HMAC-SHA256(app secret, raw body); the
  legacy SHA-1 ``X-Hub-Signature`` is accepted only when the SHA-256 header is absent, so a
  forger cannot downgrade a request that carries both.
- ``parse``: ``{"object", "entry": [{"id", "time", "messaging"|"standby": [item, ...]}]}``. Each
  item becomes an ``InboundSocialMessage`` (message, echo, postback, reaction, edit, delete), a
  ``StatusUpdate`` (delivery, read) or a label in ``Parsed.ignored`` (optin, referral, policy
  enforcement, handover, account linking, anything unknown). Items from the ``standby`` channel
  (handover protocol: another app owns the thread, Care watches) parse the same way and carry
  ``data["standby"] = True``. Missing optional fields never raise: hidden samples exist.
- ``send``: ``POST {api}/{account id}/messages`` with the access token in an ``Authorization:
  Bearer`` header rather than the ``?access_token=`` query of Meta's examples, so the token never
  lands in a URL (proxy logs, error reports). The account id rather than ``me``: the request then
  names the page (or Instagram account) it speaks for, and a token for another page fails loudly.
- ``download``: a plain GET of the attachment's CDN URL.

The reply window is 24 hours after the customer's last message. Messenger and Instagram allow a
person (not a bot) to answer for 7 days with the ``HUMAN_AGENT`` message tag: ``OutboundMessage``
has no tag field, so ``template_name="HUMAN_AGENT"`` (or another Meta tag in ``MESSAGE_TAGS``)
sends ``messaging_type: MESSAGE_TAG`` with that tag; ``tagged_reply_window`` says how long it works.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import mimetypes
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from django.utils.translation import gettext as _

from care.connectors.social.base import (
    Credentials,
    DeliveryState,
    Downloaded,
    HandshakeResponse,
    InboundSocialMessage,
    MediaRef,
    OutboundMessage,
    Parsed,
    ParseError,
    SendError,
    SendResult,
    SignatureError,
    StatusUpdate,
    WebhookRequest,
)
from care.connectors.social.http import read_capped, retry_after

GRAPH_API = "https://graph.facebook.com/v21.0"
TIMEOUT = 10.0
MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024
# Meta's rate-limit errors say nothing about when to come back; a minute is what its docs suggest
# for the Send API's per-page throttling.
RATE_LIMIT_WAIT = 60.0
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)
# Meta's message tags (not templates: Messenger has none); HUMAN_AGENT is the one for a care desk.
MESSAGE_TAGS = frozenset({"HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE"})

# Graph error codes: 4 app, 17 user, 32 page, 613 call-rate, 80002 Instagram, 80006 Messenger limits.
_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80002, 80006})
# Code 10 with these subcodes: outside the allowed window (2018278 Messenger, 2534022 Instagram).
_OUTSIDE_WINDOW_SUBCODES = frozenset({2018278, 2534022})
_USER_UNAVAILABLE_CODE = 551
_INVALID_TOKEN_CODE = 190
_TRANSIENT_CODES = frozenset({1, 2})
# Outbound media kinds (base.OutboundMessage) -> Send API attachment types.
_OUTBOUND_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file", "file": "file"}
# Inbound attachment types that carry a downloadable file -> MediaRef kinds. story_mention and share
# may be a picture or a video: "file", and the download's Content-Type says which.
_INBOUND_MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "file",
    "story_mention": "file",
    "share": "file",
    "reel": "video",
    "ig_reel": "video",
    "animated_image": "image",
}
# The "like" thumbs of Messenger arrive as stickers with these ids.
_LIKE_STICKERS = frozenset({369239263222822, 369239343222814, 369239383222810})
# Item keys that mean "recognised, nothing for an agent to see".
_IGNORED_ITEMS = (
    "optin",
    "policy-enforcement",
    "policy_enforcement",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "messaging_feedback",
    "game_play",
)
_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})
# A few timestamps in Meta payloads (and in older samples) are seconds, not milliseconds; no real
# millisecond value is this small (it would be 1973).
_SECONDS_BELOW = 10**11


def _str(value: object) -> str:
    """A string field, or "" for anything else (ids also arrive as numbers in some samples)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(value: object) -> dt.datetime | None:
    """Meta's epoch milliseconds (seconds when implausibly small) as an aware UTC datetime."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        if not math.isfinite(value) or value <= 0:
            return None
        seconds = value if value < _SECONDS_BELOW else value / 1000
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):  # a number no clock reaches
        return None


def _digest(item: Mapping[str, Any]) -> str:
    """A stable id for an item that has none of its own: retries of the same webhook agree."""
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


@dataclass
class _Item:
    """One ``messaging`` item with its envelope resolved."""

    raw: dict[str, Any]
    account_id: str
    sender: str
    recipient: str
    occurred_at: dt.datetime
    raw_timestamp: str
    standby: bool

    def customer(self, *, echo: bool = False) -> str:
        """The customer's PSID/IGSID: the sender, unless the account itself sent (an echo)."""
        if echo or (self.account_id and self.sender == self.account_id):
            return self.recipient
        return self.sender

    def account(self, *, echo: bool = False) -> str:
        if self.account_id:
            return self.account_id
        return self.sender if echo else self.recipient

    def label(self, name: str) -> str:
        return f"standby:{name}" if self.standby else name

    def stable_id(self, kind: str, customer: str) -> str:
        if customer and self.raw_timestamp:
            return f"{kind}:{customer}:{self.raw_timestamp}"
        return f"{kind}:{_digest(self.raw)}"

    def data(self, **extra: Any) -> dict[str, Any]:
        data = {key: value for key, value in extra.items() if value not in (None, "", [], {})}
        if self.standby:
            data["standby"] = True
        return data


@dataclass
class _Out:
    messages: list[InboundSocialMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass
class _Attachments:
    media: list[MediaRef] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def _location(payload: dict[str, Any], found: _Attachments) -> None:
    coordinates = _dict(payload.get("coordinates"))
    lat, long = coordinates.get("lat"), coordinates.get("long")
    title, url = _str(payload.get("title")), _str(payload.get("url"))
    if isinstance(lat, int | float) and isinstance(long, int | float) and not isinstance(lat, bool):
        found.descriptions.append(f"📍 {lat}, {long}")
        found.data["location"] = {"latitude": lat, "longitude": long, "title": title, "url": url}
    else:
        found.descriptions.append(f"📍 {title or url}".strip())
        found.data["location"] = {"title": title, "url": url}


def _template(payload: dict[str, Any], found: _Attachments) -> None:
    elements = payload.get("elements")
    first = _dict(elements[0]) if isinstance(elements, list) and elements else {}
    found.descriptions.append(_str(payload.get("text")) or _str(first.get("title")) or _("[template]"))
    found.data["template"] = payload


def _attachments(raw: object) -> _Attachments:
    found = _Attachments()
    for attachment in raw if isinstance(raw, list) else []:
        if not isinstance(attachment, dict):
            continue
        kind = _str(attachment.get("type")) or "unknown"
        payload = _dict(attachment.get("payload"))
        found.kinds.append(kind)
        url = _str(payload.get("url"))
        title = _str(payload.get("title")) or _str(attachment.get("title"))
        if kind == "location":
            _location(payload, found)
        elif kind == "fallback":
            # A link the customer shared: its title and address, nothing to download.
            link = _str(attachment.get("URL")) or _str(attachment.get("url")) or url
            found.descriptions.append(f"{title} {link}".strip() or _("[link]"))
            found.data["link"] = {"title": title, "url": link}
        elif kind == "template":
            _template(payload, found)
        elif url:
            sticker = payload.get("sticker_id")
            media_kind = "sticker" if sticker else _INBOUND_MEDIA.get(kind, "file")
            found.media.append(MediaRef(kind=media_kind, url=url, caption=title))
            if kind == "story_mention":
                found.descriptions.append(_("mentioned you in their story"))
            elif kind == "share":
                found.descriptions.append(title or _("shared a post"))
            elif kind in ("reel", "ig_reel"):
                found.descriptions.append(title or _("shared a reel"))
        else:
            found.descriptions.append(_("[%(kind)s attachment]") % {"kind": kind})
    return found


def _message_kind(text: str, sticker: object, quick_reply: bool, found: _Attachments) -> str:
    if quick_reply:
        return "quick_reply"
    if sticker:
        return "sticker"
    if text:
        return "text"
    if not found.kinds:
        return "unsupported"
    if found.kinds[0] in ("location", "story_mention", "share", "template", "fallback"):
        return found.kinds[0]
    return found.media[0].kind if found.media else "unsupported"


def _reply_to(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The mid replied to, and a story replied to (Instagram: ``reply_to.story`` {id, url})."""
    reply = _dict(message.get("reply_to"))
    story = _dict(reply.get("story"))
    story_ref = {"id": _str(story.get("id")), "url": _str(story.get("url"))} if story else {}
    return _str(reply.get("mid")), story_ref


class MetaAdapter:
    """Messenger or Instagram, per ``platform`` and the webhook ``object`` it accepts.

    ``reply_window``: 24 hours; ``tagged_reply_window``: 7 days for a reply sent with the
    ``HUMAN_AGENT`` tag (``OutboundMessage.template_name == "HUMAN_AGENT"``). ``rate_per_second``:
    Messenger allows far more per page than a care desk sends; Instagram allows 100 text / 10 media
    sends per second per account, so Care keeps below the media limit.
    """

    reply_window: dt.timedelta | None = dt.timedelta(hours=24)
    tagged_reply_window = HUMAN_AGENT_WINDOW

    def __init__(self, *, platform: str, webhook_object: str, name: str, rate: float, max_text: int) -> None:
        self.platform = platform
        self.webhook_object = webhook_object
        self.name = name
        self.rate_per_second = rate
        self.max_text = max_text

    def __repr__(self) -> str:
        return f"MetaAdapter({self.platform!r})"

    # -- verification ------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        if not credentials.verify_token:
            raise SignatureError(
                _(
                    "No verify token is set for this %(platform)s account: set one in Care and enter "
                    "the same in the Meta app's webhook settings."
                )
                % {"platform": self.name}
            )
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        if mode != "subscribe" or not hmac.compare_digest(
            token.encode("utf-8"), credentials.verify_token.encode("utf-8")
        ):
            raise SignatureError(_("The hub.verify_token does not match this account's verify token."))
        challenge = request.query.get("hub.challenge", "")
        if not challenge:
            raise ParseError(_("The verification request has no hub.challenge."))
        return HandshakeResponse(status=200, body=challenge, content_type="text/plain")

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        if not credentials.app_secret:
            raise SignatureError(
                _(
                    "No app secret is set for this %(platform)s account: enter the Meta app's secret "
                    "so Care can check X-Hub-Signature-256."
                )
                % {"platform": self.name}
            )
        headers = {name.lower(): value for name, value in request.headers.items()}
        key = credentials.app_secret.encode("utf-8")
        if "x-hub-signature-256" in headers:
            prefix, algorithm, given = "sha256=", hashlib.sha256, headers["x-hub-signature-256"]
        elif "x-hub-signature" in headers:
            prefix, algorithm, given = "sha1=", hashlib.sha1, headers["x-hub-signature"]
        else:
            raise SignatureError(_("The request has no X-Hub-Signature-256 header."))
        expected = prefix + hmac.new(key, request.body, algorithm).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8")):
            raise SignatureError(_("The X-Hub-Signature does not match the body and the app secret."))

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, body: bytes) -> Parsed:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise ParseError(_("The body is not JSON: %(error)s") % {"error": error}) from error
        if not isinstance(document, dict):
            raise ParseError(_("The body is not a JSON object."))
        if document.get("object") != self.webhook_object:
            raise ParseError(
                _("This %(platform)s webhook expects object %(expected)r, not %(got)r.")
                % {"platform": self.name, "expected": self.webhook_object, "got": document.get("object")}
            )
        entries = document.get("entry")
        if not isinstance(entries, list):
            raise ParseError(_("The body has no entry list."))
        out = _Out()
        for entry in entries:
            self._entry(entry, out)
        return Parsed(messages=tuple(out.messages), statuses=tuple(out.statuses), ignored=tuple(out.ignored))

    def _entry(self, entry: object, out: _Out) -> None:
        if not isinstance(entry, dict):
            out.ignored.append("entry:not-an-object")
            return
        account_id = _str(entry.get("id"))
        seen = False
        for channel in ("messaging", "standby"):
            items = entry.get(channel)
            if items is None:
                continue
            seen = True
            for item in items if isinstance(items, list) else [items]:
                self._item(item, account_id, entry.get("time"), channel == "standby", out)
        changes = entry.get("changes")
        if isinstance(changes, list):
            # Instagram comments, mentions and page feed changes: not direct messages.
            seen = True
            out.ignored.extend(
                f"changes:{_str(_dict(change).get('field')) or 'unknown'}" for change in changes
            )
        if not seen:
            out.ignored.append("entry:empty")

    def _item(self, raw: object, account_id: str, entry_time: object, standby: bool, out: _Out) -> None:
        if not isinstance(raw, dict):
            out.ignored.append("standby:not-an-object" if standby else "messaging:not-an-object")
            return
        timestamp = raw.get("timestamp")
        # Delivery items carry no timestamp; without any time at all, when Care got it is best.
        occurred_at = _time(timestamp) or _time(entry_time) or dt.datetime.now(tz=dt.UTC)
        item = _Item(
            raw=raw,
            account_id=account_id,
            sender=_str(_dict(raw.get("sender")).get("id")),
            recipient=_str(_dict(raw.get("recipient")).get("id")),
            occurred_at=occurred_at,
            raw_timestamp=_str(timestamp),
            standby=standby,
        )
        handlers: dict[str, Callable[[_Item, _Out], None]] = {
            "message": self._message,
            "message_edit": self._edit,
            "postback": self._postback,
            "reaction": self._reaction,
            "delivery": self._delivery,
            "read": self._read,
            "referral": self._referral,
        }
        for key, handler in handlers.items():
            if key in raw:
                handler(item, out)
                return
        for key in _IGNORED_ITEMS:
            if key in raw:
                out.ignored.append(item.label(key.replace("-", "_")))
                return
        unknown = sorted(key for key in raw if key not in _ENVELOPE_KEYS)
        out.ignored.append(item.label(f"unknown:{unknown[0] if unknown else 'empty'}"))

    def _inbound(self, item: _Item, *, echo: bool = False, **fields: Any) -> InboundSocialMessage:
        customer = item.customer(echo=echo)
        return InboundSocialMessage(
            platform=self.platform,
            account_id=item.account(echo=echo),
            sender_id=customer,
            sender_name="",
            conversation_id=customer,
            occurred_at=item.occurred_at,
            from_account=echo,
            **fields,
        )

    def _message(self, item: _Item, out: _Out) -> None:
        message = item.raw.get("message")
        if not isinstance(message, dict):
            out.ignored.append(item.label("message:not-an-object"))
            return
        # An echo is flagged is_echo; a message whose sender is the account itself is one too.
        echo = message.get("is_echo") is True or bool(item.account_id and item.sender == item.account_id)
        if not item.customer(echo=echo):
            out.ignored.append(item.label("message:no-sender"))
            return
        mid = _str(message.get("mid"))
        external_id = mid or item.stable_id("message", item.customer(echo=echo))
        if message.get("is_deleted") is True:
            out.messages.append(
                self._inbound(
                    item,
                    echo=echo,
                    external_id=f"{external_id}:deleted",
                    text=_("deleted a message"),
                    kind="deleted",
                    reply_to=mid,
                    data=item.data(deleted_mid=mid),
                )
            )
            return
        own_text = text = _str(message.get("text"))
        found = _attachments(message.get("attachments"))
        quick_reply = _dict(message.get("quick_reply"))
        sticker = message.get("sticker_id")
        reply_to, story = _reply_to(message)
        tags = message.get("tags")
        sources = [_str(_dict(tag).get("source")) for tag in tags] if isinstance(tags, list) else []
        if not text:
            if isinstance(sticker, int) and sticker in _LIKE_STICKERS:
                text = "👍"
            elif found.descriptions:
                text = "\n".join(found.descriptions)
            elif not found.media:
                text = _("(a message %(platform)s does not show to apps)") % {"platform": self.name}
        out.messages.append(
            self._inbound(
                item,
                echo=echo,
                external_id=external_id,
                text=text,
                kind="unsupported"
                if message.get("is_unsupported") is True
                else (_message_kind(own_text, sticker, bool(quick_reply), found)),
                attachments=tuple(found.media),
                reply_to=reply_to,
                data=item.data(
                    **found.data,
                    quick_reply_payload=_str(quick_reply.get("payload")),
                    sticker_id=_str(sticker),
                    reply_to_story=story,
                    referral=_dict(message.get("referral")),
                    sources=[source for source in sources if source],
                    app_id=_str(message.get("app_id")) if echo else "",
                    metadata=_str(message.get("metadata")) if echo else "",
                ),
            )
        )

    def _edit(self, item: _Item, out: _Out) -> None:
        edit = _dict(item.raw.get("message_edit"))
        mid, customer = _str(edit.get("mid")), item.customer()
        if not mid or not customer:
            out.ignored.append(item.label("message_edit:incomplete"))
            return
        count = _str(edit.get("num_edit")) or _digest(edit)
        out.messages.append(
            self._inbound(
                item,
                external_id=f"{mid}:edit:{count}",
                text=_str(edit.get("text")) or _("edited a message"),
                kind="edit",
                reply_to=mid,
                data=item.data(edited_mid=mid, num_edit=edit.get("num_edit")),
            )
        )

    def _postback(self, item: _Item, out: _Out) -> None:
        postback = _dict(item.raw.get("postback"))
        customer = item.customer()
        if not customer:
            out.ignored.append(item.label("postback:no-sender"))
            return
        title, payload = _str(postback.get("title")), _str(postback.get("payload"))
        out.messages.append(
            self._inbound(
                item,
                external_id=_str(postback.get("mid")) or item.stable_id("postback", customer),
                # Without a title (older buttons, "Get Started" on some clients) the payload is all
                # there is to tell the agent what was pressed.
                text=title or payload or _("pressed a button"),
                kind="postback",
                data=item.data(payload=payload, title=title, referral=_dict(postback.get("referral"))),
            )
        )

    def _reaction(self, item: _Item, out: _Out) -> None:
        reaction = _dict(item.raw.get("reaction"))
        customer = item.customer()
        if not customer:
            out.ignored.append(item.label("reaction:no-sender"))
            return
        action = _str(reaction.get("action")) or "react"
        emoji = _str(reaction.get("emoji")) or _str(reaction.get("reaction"))
        target = _str(reaction.get("mid"))
        if action == "unreact":
            text = (
                _("removed the reaction %(emoji)s from a message") % {"emoji": emoji}
                if emoji
                else _("removed a reaction from a message")
            )
        else:
            text = _("reacted %(emoji)s to a message") % {"emoji": emoji or "?"}
        out.messages.append(
            self._inbound(
                item,
                # Reactions have no id of their own; this one is stable across Meta's retries.
                external_id=item.stable_id(f"reaction:{target}:{action}", customer),
                text=text,
                kind="reaction",
                reply_to=target,
                data=item.data(
                    action=action,
                    emoji=_str(reaction.get("emoji")),
                    reaction=_str(reaction.get("reaction")),
                    mid=target,
                ),
            )
        )

    def _delivery(self, item: _Item, out: _Out) -> None:
        delivery = _dict(item.raw.get("delivery"))
        watermark = _time(delivery.get("watermark"))
        listed = delivery.get("mids")
        mids = [mid for mid in (_str(m) for m in listed) if mid] if isinstance(listed, list) else []
        if not mids and watermark is None:
            out.ignored.append(item.label("delivery:empty"))
            return
        occurred_at = _time(item.raw.get("timestamp")) or watermark or item.occurred_at
        for mid in mids or [""]:
            out.statuses.append(
                StatusUpdate(
                    platform=self.platform,
                    account_id=item.account(),
                    external_id=mid,
                    state=DeliveryState.DELIVERED,
                    occurred_at=occurred_at,
                    recipient_id=item.customer(),
                    watermark=watermark,
                )
            )

    def _read(self, item: _Item, out: _Out) -> None:
        read = _dict(item.raw.get("read"))
        watermark, mid = _time(read.get("watermark")), _str(read.get("mid"))
        if not mid and watermark is None:
            out.ignored.append(item.label("read:empty"))
            return
        out.statuses.append(
            StatusUpdate(
                platform=self.platform,
                account_id=item.account(),
                external_id=mid,  # Instagram names the message read; Messenger gives a watermark
                state=DeliveryState.READ,
                occurred_at=item.occurred_at,
                recipient_id=item.customer(),
                watermark=watermark,
            )
        )

    def _referral(self, item: _Item, out: _Out) -> None:
        # A customer opened the thread from an m.me link or an ad: no words to show an agent, and
        # the message that usually follows carries the referral too.
        source = _str(_dict(item.raw.get("referral")).get("source")).lower()
        out.ignored.append(item.label(f"referral:{source}" if source else "referral"))

    # -- sending -----------------------------------------------------------------------------

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        """Text, then media if both are given (the Send API takes one per request; the result names
        the last). ``reply_to`` quotes a customer's message (``"reply_to": {"mid": ..}``)."""
        if not credentials.access_token or not credentials.account_id:
            raise SendError(
                _("This %(platform)s account has no access token: enter the page access token in Care.")
                % {"platform": self.name},
                retryable=False,
            )
        if not message.recipient_id:
            raise SendError(_("The reply has no recipient."), retryable=False)
        envelope: dict[str, Any] = {"recipient": {"id": message.recipient_id}}
        if message.template_name in MESSAGE_TAGS:
            envelope.update(messaging_type="MESSAGE_TAG", tag=message.template_name)
        elif message.template_name:
            raise SendError(
                _(
                    "%(platform)s has no message templates; outside the 24-hour window only the "
                    "tags %(tags)s may be used."
                )
                % {"platform": self.name, "tags": ", ".join(sorted(MESSAGE_TAGS))},
                retryable=False,
            )
        else:
            envelope["messaging_type"] = "RESPONSE"
        bodies: list[dict[str, Any]] = []
        if message.text:
            if len(message.text) > self.max_text:
                raise SendError(
                    _("The reply is longer than %(limit)d characters, the most %(platform)s accepts.")
                    % {"limit": self.max_text, "platform": self.name},
                    retryable=False,
                )
            bodies.append({**envelope, "message": {"text": message.text}})
        if message.media_url:
            payload: dict[str, Any] = {"url": message.media_url}
            if self.platform == "messenger":
                payload["is_reusable"] = True  # Instagram's Send API has no such field
            attachment = {"type": _OUTBOUND_TYPES.get(message.media_kind, "file"), "payload": payload}
            bodies.append({**envelope, "message": {"attachment": attachment}})
        if not bodies:
            raise SendError(_("The reply has neither text nor media."), retryable=False)
        if message.reply_to:
            bodies[0]["reply_to"] = {"mid": message.reply_to}
        url = f"{(credentials.api_base or GRAPH_API).rstrip('/')}/{credentials.account_id}/messages"
        result = SendResult(external_id="")
        for body in bodies:
            result = self._post(session, url, credentials.access_token, body)
        return result

    def _post(self, session: requests.Session, url: str, token: str, body: dict[str, Any]) -> SendResult:
        try:
            response = session.post(
                url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
            )
        except requests.RequestException as error:
            raise SendError(
                _("%(platform)s could not be reached: %(error)s") % {"platform": self.name, "error": error},
                retryable=True,
            ) from error
        if response.status_code >= 300:
            raise self._graph_error(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        message_id = _str(_dict(answer).get("message_id"))
        if not message_id:
            # Sent, most likely: sending again could show the customer the reply twice.
            raise SendError(
                _("%(platform)s accepted the reply but returned no message id.") % {"platform": self.name},
                retryable=False,
            )
        return SendResult(external_id=message_id)

    def _graph_error(self, response: requests.Response) -> SendError:
        try:
            error = _dict(_dict(response.json()).get("error"))
        except ValueError:
            error = {}
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        said = _str(error.get("message")) or f"HTTP {response.status_code} {response.reason or ''}".strip()
        values = {"platform": self.name, "message": said}
        if response.status_code == 429 or code in _RATE_LIMIT_CODES:
            wait = retry_after(response)
            return SendError(
                _("%(platform)s is limiting how fast Care sends: %(message)s") % values,
                retryable=True,
                retry_after=wait if wait is not None else RATE_LIMIT_WAIT,
            )
        if code == 10 and subcode in _OUTSIDE_WINDOW_SUBCODES:
            return SendError(
                _(
                    "The customer's last message is more than 24 hours old, so %(platform)s refuses "
                    "a normal reply; send it as a human agent reply (HUMAN_AGENT, up to 7 days) or "
                    "wait for the customer to write. (%(message)s)"
                )
                % values,
                retryable=False,
            )
        if code == _USER_UNAVAILABLE_CODE:
            return SendError(
                _("This person is not available on %(platform)s right now. (%(message)s)") % values,
                retryable=False,
            )
        if code == _INVALID_TOKEN_CODE:
            return SendError(
                _("%(platform)s rejected the account's access token; enter a new one in Care. (%(message)s)")
                % values,
                retryable=False,
            )
        if response.status_code >= 500 or error.get("is_transient") is True or code in _TRANSIENT_CODES:
            return SendError(_("%(platform)s failed for now: %(message)s") % values, retryable=True)
        return SendError(_("%(platform)s refused the reply: %(message)s") % values, retryable=False)

    # -- media -------------------------------------------------------------------------------

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        """GET the attachment's URL with nothing but the URL: Meta's CDN links are signed, so no
        token is needed, and a token must never reach a host a webhook named. 25 MB at most."""
        parts = urlsplit(media.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SendError(
                _("The attachment has no web address to download: %(url)r") % {"url": media.url},
                retryable=False,
            )
        try:
            response = session.get(media.url, timeout=TIMEOUT, stream=True)
        except requests.RequestException as error:
            raise SendError(
                _("The attachment could not be fetched: %(error)s") % {"error": error}, retryable=True
            ) from error
        with response:
            if response.status_code == 429 or response.status_code >= 500:
                raise SendError(
                    _("The attachment could not be fetched now (HTTP %(status)d).")
                    % {"status": response.status_code},
                    retryable=True,
                    retry_after=retry_after(response),
                )
            if response.status_code >= 300:
                raise SendError(
                    _("The attachment is gone (HTTP %(status)d); Meta's links expire after a while.")
                    % {"status": response.status_code},
                    retryable=False,
                )
            content = read_capped(response, MAX_DOWNLOAD_BYTES)
            mime_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        mime_type = mime_type or media.mime_type or "application/octet-stream"
        return Downloaded(
            content=content, mime_type=mime_type, filename=_filename(media, parts.path, mime_type)
        )


def _filename(media: MediaRef, path: str, mime_type: str) -> str:
    if media.filename:
        return media.filename
    name = posixpath.basename(unquote(path)).replace("\\", "_").strip()
    if name and "." in name.strip("."):
        return name[-200:]
    extension = mimetypes.guess_extension(mime_type) or ""
    return f"{media.kind or 'attachment'}{extension}"


MESSENGER = MetaAdapter(
    platform="messenger", webhook_object="page", name="Messenger", rate=50.0, max_text=2000
)
INSTAGRAM = MetaAdapter(
    platform="instagram", webhook_object="instagram", name="Instagram", rate=10.0, max_text=1000
)
