"""Telegram Bot API: webhook updates in, replies out (https://core.telegram.org/bots/api).

Webhook. Telegram only POSTs; there is no verification GET, so ``handshake`` refuses (the view
answers 400). Authenticity is the ``X-Telegram-Bot-Api-Secret-Token`` header: Telegram sends the
``secret_token`` given to ``setWebhook``, which Care keeps as the account's ``verify_token`` and
compares in constant time. An account without one is refused: set one with ``setWebhook``.

Updates (one per request) to normalised messages:

- ``message``, ``channel_post``: one ``InboundSocialMessage``, external id ``"<chat id>:<message
  id>"`` (message ids are only unique inside a chat). Text (``text_link`` entities get their hidden
  URL written after the linked words), photo (the largest size), document, animation, video,
  video note, voice, audio, sticker (text: its emoji), location and venue, contact, poll and dice
  (a one-line description), anything else ``unsupported`` with a line naming it. The caption is the
  text of a media message.
- ``edited_message``, ``edited_channel_post``: a NEW interaction (same kind, the edited content),
  external id ``"<chat id>:<message id>:edit:<edit date>"`` and ``data["edit_of"]`` naming the
  original. Interactions are append-only in Care, and the agent must see that the customer changed
  what they wrote; the edit date keeps a retried webhook idempotent while two edits stay distinct.
  (Zammad rewrites the stored article instead.)
- ``callback_query`` (an inline-keyboard button pressed): kind ``button``, text the button's title
  when the message carrying the keyboard is in the update, else its ``callback_data``; external id
  ``"<chat id>:callback:<query id>"``. The update has no date, so ``occurred_at`` is the time of
  parsing (Telegram delivers webhooks within seconds).
- ``/start`` and ``/end`` commands (also ``/start@bot payload``): ignored, no interaction, as in
  Zammad, where /start opens nothing. Zammad closes the customer's ticket on ``/end``; Care only
  names it in ``ignored`` (``"command /end"``), closing is a decision for the spine.
- service messages (members joining, pinned messages, title changes...), ``my_chat_member``,
  ``chat_member``, ``chat_join_request``, reactions, inline queries, payments, polls' answers,
  business-account updates and any other update type: ignored, named in ``ignored``.

Sender: ``sender_chat`` when present (a channel post, an anonymous group admin), else ``from``,
else the chat. ``sender_name``: first and last name, else @username, else the chat's title.
``conversation_id`` is the chat id (where replies go). ``account_id`` is ``""``: the bot's own id is
not in the update and ``parse`` has no credentials; the spine reads ``""`` as "the account the
webhook URL names" (the bot id is the part of the bot token before the colon, if it is needed).

Sending: ``sendMessage`` (text, replying with ``reply_parameters`` to the message given by
``reply_to``; ``allow_sending_without_reply`` so a deleted original does not fail the reply),
``sendPhoto``/``sendVideo``/``sendAudio``/``sendVoice``/``sendDocument`` with the media URL and the
text as caption. Telegram answers ``{"ok": false, "error_code", "description", "parameters"}`` on
failure: 429 is retryable after ``parameters.retry_after``, 5xx and network errors are retryable,
any other refusal (403 bot blocked by the user, 400 chat not found...) is final, with Telegram's
description. The bot token is part of every Bot API URL: it never appears in an error message, and
network errors are raised ``from None`` so the URL does not reach a traceback either.

Rate: Telegram allows about 30 messages a second per bot and one a second per chat (20 a minute
per group); Care keeps 25 a second per bot, the per-chat pace is the outbound task's business.

Downloads: ``getFile`` gives a ``file_path`` valid for an hour, fetched from
``/file/bot<token>/<file_path>``; the Bot API serves files up to 20 MB, so larger ones are refused
before any transfer.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import mimetypes
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import requests
from django.utils.translation import gettext as _

from care.connectors.social.base import (
    Credentials,
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
    WebhookRequest,
)
from care.connectors.social.http import read_capped
from care.connectors.social.values import header, mapping, platform_id
from care.connectors.social.values import text as text_of

BOT_API = "https://api.telegram.org"
TIMEOUT = 10
MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API's getFile limit
MAX_TEXT = 4096
MAX_CAPTION = 1024
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)

_MESSAGE_KEYS = ("message", "edited_message", "channel_post", "edited_channel_post")
_IGNORED_UPDATES = (
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "chat_boost",
    "removed_chat_boost",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
)
# Messages that tell of something happening in the chat rather than carry what a person wrote.
_SERVICE_FIELDS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "connected_website",
    "write_access_allowed",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
)
_UNSUPPORTED_CONTENT = ("game", "invoice", "story", "giveaway", "giveaway_winners", "paid_media", "checklist")
_COMMAND = re.compile(r"^/(start|end)(?:@\w+)?(?:\s|$)")


class TelegramAdapter:
    platform = "telegram"
    reply_window: dt.timedelta | None = None
    rate_per_second = 25.0

    # -- webhook -------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        raise ParseError(_("Telegram webhooks are POST only."))

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        if not credentials.verify_token:
            raise SignatureError(
                _(
                    "This Telegram account has no secret token: set one with setWebhook (secret_token) "
                    "and store it as the account's verify token."
                )
            )
        given = header(request.headers, SECRET_HEADER)
        if given is None:
            raise SignatureError(_("The X-Telegram-Bot-Api-Secret-Token header is missing."))
        if not hmac.compare_digest(given.encode(), credentials.verify_token.encode()):
            raise SignatureError(_("The X-Telegram-Bot-Api-Secret-Token header does not match."))

    def parse(self, body: bytes) -> Parsed:
        try:
            update = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ParseError(_("The body is not JSON.")) from exc
        if not isinstance(update, dict):
            raise ParseError(_("A Telegram update is a JSON object."))

        messages: list[InboundSocialMessage] = []
        ignored: list[str] = []
        known = False
        for key in _MESSAGE_KEYS:
            if key in update:
                known = True
                message, label = _message(update[key], edited=key.startswith("edited_"))
                if message is not None:
                    messages.append(message)
                if label:
                    ignored.append(label)
        if "callback_query" in update:
            known = True
            messages.append(_callback(update["callback_query"]))
        for key in _IGNORED_UPDATES:
            if key in update:
                known = True
                ignored.append(key)
        if not known:
            if not isinstance(update.get("update_id"), int):
                raise ParseError(_("This is not a Telegram update: it has no update_id and no message."))
            # A newer update type than this adapter knows: accepted, and named for the summary.
            others = sorted(str(key) for key in update if key != "update_id")
            ignored.append("update " + (", ".join(others) or "without content"))
        return Parsed(messages=tuple(messages), ignored=tuple(ignored))

    # -- replies -------------------------------------------------------------------------------

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        chat = message.conversation_id or message.recipient_id
        if not chat:
            raise SendError(_("The Telegram reply has no chat to go to."), retryable=False)
        payload: dict[str, Any] = {"chat_id": _chat_id(chat)}
        if message.media_url:
            method, field = _MEDIA_METHODS.get(message.media_kind, ("sendDocument", "document"))
            payload[field] = message.media_url
            if message.text:
                if len(message.text) > MAX_CAPTION:
                    raise SendError(
                        _("A Telegram caption is limited to %(limit)d characters.") % {"limit": MAX_CAPTION},
                        retryable=False,
                    )
                payload["caption"] = message.text
        else:
            if not message.text.strip():
                raise SendError(_("The Telegram reply is empty."), retryable=False)
            if len(message.text) > MAX_TEXT:
                raise SendError(
                    _("A Telegram message is limited to %(limit)d characters.") % {"limit": MAX_TEXT},
                    retryable=False,
                )
            method = "sendMessage"
            payload["text"] = message.text
        reply_to = _message_id_of(message.reply_to)
        if reply_to is not None:
            payload["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
        result = _call(session, credentials, method, payload)
        message_id = result.get("message_id")
        sent_chat = result.get("chat")
        chat_id = platform_id(sent_chat.get("id")) if isinstance(sent_chat, dict) else None
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise SendError(_("Telegram accepted the message but did not return its id."), retryable=False)
        return SendResult(external_id=f"{chat_id or chat}:{message_id}")

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        if not media.media_id:
            raise SendError(_("The Telegram attachment has no file id."), retryable=False)
        if media.size is not None and media.size > MAX_DOWNLOAD:
            raise SendError(_("The Telegram file is larger than the Bot API's 20 MB."), retryable=False)
        result = _call(session, credentials, "getFile", {"file_id": media.media_id})
        file_path = result.get("file_path")
        size = result.get("file_size")
        if isinstance(size, int) and size > MAX_DOWNLOAD:
            raise SendError(_("The Telegram file is larger than the Bot API's 20 MB."), retryable=False)
        if not isinstance(file_path, str) or not file_path:
            raise SendError(
                _("Telegram did not give a path for this file (it may be larger than 20 MB)."),
                retryable=False,
            )
        token = credentials.access_token
        url = f"{_base(credentials)}/file/bot{token}/{file_path}"
        try:
            with session.get(url, timeout=TIMEOUT, stream=True) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise SendError(
                        _("Telegram failed to serve the file (HTTP %(status)d).")
                        % {"status": response.status_code},
                        retryable=True,
                    )
                if response.status_code != 200:
                    raise SendError(
                        _("Telegram refused the file (HTTP %(status)d).") % {"status": response.status_code},
                        retryable=False,
                    )
                content = read_capped(
                    response,
                    MAX_DOWNLOAD,
                    too_large=_("The Telegram file is larger than the Bot API's 20 MB."),
                )
                header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        except requests.RequestException as exc:
            raise SendError(
                _("Telegram could not be reached (%(error)s).") % {"error": type(exc).__name__},
                retryable=True,
            ) from None
        mime_type = (
            media.mime_type
            or (header_type if header_type and header_type != "application/octet-stream" else "")
            or mimetypes.guess_type(file_path)[0]
            or "application/octet-stream"
        )
        return Downloaded(
            content=content, mime_type=mime_type, filename=media.filename or posixpath.basename(file_path)
        )


ADAPTER = TelegramAdapter()

_MEDIA_METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "voice": ("sendVoice", "voice"),
    "document": ("sendDocument", "document"),
}


# -- parsing helpers ---------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timestamp(value: Any, what: str) -> dt.datetime:
    seconds = _int(value)
    if seconds is None:
        raise ParseError(_("The Telegram %(what)s has no date.") % {"what": what})
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ParseError(_("The Telegram %(what)s has an impossible date.") % {"what": what}) from exc


def _name(party: Mapping[str, Any]) -> str:
    full = " ".join(
        part for part in (text_of(party.get("first_name")), text_of(party.get("last_name"))) if part
    )
    if full.strip():
        return full.strip()
    if text_of(party.get("title")).strip():
        return text_of(party.get("title")).strip()
    username = text_of(party.get("username")).strip()
    return f"@{username}" if username else ""


def _message(raw: Any, *, edited: bool) -> tuple[InboundSocialMessage | None, str]:
    """One Message object: the interaction it becomes, or None and why it was ignored."""
    if not isinstance(raw, dict):
        raise ParseError(_("A Telegram message is a JSON object."))
    chat = raw.get("chat")
    chat_id = platform_id(chat.get("id")) if isinstance(chat, dict) else None
    message_id = _int(raw.get("message_id"))
    if not isinstance(chat, dict) or chat_id is None or message_id is None:
        raise ParseError(_("A Telegram message needs a chat with an id and a message_id."))
    edit_date = raw.get("edit_date") if edited else None
    occurred_at = _timestamp(edit_date if edit_date is not None else raw.get("date"), "message")

    command = _COMMAND.match(text_of(raw.get("text")).strip())
    if command:
        return None, f"command /{command.group(1)}"
    service = next((name for name in _SERVICE_FIELDS if raw.get(name) not in (None, False)), None)
    content = _content(raw)
    if content is None:
        if service is not None:
            return None, f"service message {service}"
        content = ("unsupported", _("Unsupported Telegram message."), (), {})
    kind, body, attachments, data = content

    sender_chat = raw.get("sender_chat")
    sender = raw.get("from")
    if isinstance(sender_chat, dict) and platform_id(sender_chat.get("id")):
        party: Mapping[str, Any] = sender_chat
    elif isinstance(sender, dict) and platform_id(sender.get("id")):
        party = sender
    else:
        party = chat
    sender_id = platform_id(party.get("id")) or chat_id

    extra: dict[str, Any] = dict(data)
    chat_type = text_of(chat.get("type"))
    if chat_type:
        extra["chat_type"] = chat_type
    username = text_of(party.get("username"))
    if username:
        extra["username"] = username
    if text_of(raw.get("media_group_id")):
        extra["media_group_id"] = raw["media_group_id"]
    external_id = f"{chat_id}:{message_id}"
    if edited:
        extra["edit_of"] = external_id
        external_id = f"{external_id}:edit:{int(occurred_at.timestamp())}"
    reply = raw.get("reply_to_message")
    reply_id = _int(reply.get("message_id")) if isinstance(reply, dict) else None
    return (
        InboundSocialMessage(
            platform="telegram",
            account_id="",
            external_id=external_id,
            sender_id=sender_id,
            sender_name=_name(party),
            conversation_id=chat_id,
            occurred_at=occurred_at,
            text=body,
            kind=kind,
            attachments=attachments,
            reply_to=f"{chat_id}:{reply_id}" if reply_id is not None else "",
            data=extra,
        ),
        "",
    )


Content = tuple[str, str, tuple[MediaRef, ...], dict[str, Any]]


def _content(raw: Mapping[str, Any]) -> Content | None:
    """What the message carries: kind, text, attachments, extras; None for no content at all."""
    caption = _with_links(text_of(raw.get("caption")), raw.get("caption_entities"))

    photo = _largest_photo(raw.get("photo"))
    if photo is not None:
        file_id = text_of(photo.get("file_id"))
        return (
            "image",
            caption,
            (_media("image", photo, "image/jpeg", f"photo-{file_id}.jpg", caption),),
            {},
        )
    # An animation message also carries a ``document`` field, so it comes first.
    for field, kind, default_mime, stem in (
        ("animation", "video", "video/mp4", "animation"),
        ("video", "video", "video/mp4", "video"),
        ("video_note", "video", "video/mp4", "video_note"),
        ("document", "document", "", "document"),
        ("audio", "audio", "audio/mpeg", "audio"),
        ("voice", "voice", "audio/ogg", "audio"),
    ):
        item = raw.get(field)
        if isinstance(item, dict) and text_of(item.get("file_id")):
            mime = text_of(item.get("mime_type")) or default_mime
            name = text_of(item.get("file_name")) or _default_filename(stem, text_of(item["file_id"]), mime)
            data: dict[str, Any] = {}
            if field == "audio":
                title = " – ".join(
                    part for part in (text_of(item.get("performer")), text_of(item.get("title"))) if part
                )
                if title:
                    data["title"] = title
            if _int(item.get("duration")) is not None:
                data["duration"] = item["duration"]
            return kind, caption, (_media(kind, item, mime, name, caption),), data

    sticker = raw.get("sticker")
    if isinstance(sticker, dict) and text_of(sticker.get("file_id")):
        file_id = text_of(sticker["file_id"])
        # Animated stickers are gzipped Lottie (.tgs), video stickers WebM, the others WebP.
        if sticker.get("is_animated") is True:
            mime, extension = "application/x-tgsticker", "tgs"
        elif sticker.get("is_video") is True:
            mime, extension = "video/webm", "webm"
        else:
            mime, extension = "image/webp", "webp"
        stem = text_of(sticker.get("set_name")) or f"sticker-{file_id}"
        emoji = text_of(sticker.get("emoji"))
        data = {"set_name": sticker["set_name"]} if text_of(sticker.get("set_name")) else {}
        return (
            "sticker",
            emoji or _("Sticker"),
            (_media("sticker", sticker, mime, f"{stem}.{extension}", ""),),
            data,
        )

    location = raw.get("location")
    venue = raw.get("venue")
    if isinstance(venue, dict) and isinstance(venue.get("location"), dict):
        location = venue["location"]
    if isinstance(location, dict) and _number(location.get("latitude")) is not None:
        latitude, longitude = _number(location.get("latitude")), _number(location.get("longitude"))
        data = {"latitude": latitude, "longitude": longitude}
        name = address = ""
        if isinstance(venue, dict):
            name, address = text_of(venue.get("title")), text_of(venue.get("address"))
            data.update({"name": name, "address": address})
        where = ", ".join(part for part in (name, address) if part)
        if where:
            text = _("Location: %(place)s (%(latitude)s, %(longitude)s)") % {
                "place": where,
                "latitude": latitude,
                "longitude": longitude,
            }
        else:
            text = _("Location: %(latitude)s, %(longitude)s") % {"latitude": latitude, "longitude": longitude}
        return "location", text, (), data

    contact = raw.get("contact")
    if isinstance(contact, dict):
        name = _name(contact)
        phone = text_of(contact.get("phone_number"))
        card = {"name": name, "phone": phone}
        if platform_id(contact.get("user_id")):
            card["user_id"] = platform_id(contact.get("user_id")) or ""
        if text_of(contact.get("vcard")):
            card["vcard"] = text_of(contact.get("vcard"))
        text = _("Contact: %(contact)s") % {"contact": ", ".join(part for part in (name, phone) if part)}
        return "contacts", text, (), {"contacts": [card]}

    poll = raw.get("poll")
    if isinstance(poll, dict):
        options = (
            [text_of(option.get("text")) for option in poll.get("options") or [] if isinstance(option, dict)]
            if isinstance(poll.get("options"), list)
            else []
        )
        text = _("Poll: %(question)s") % {"question": text_of(poll.get("question"))}
        if options:
            text += " (" + " / ".join(options) + ")"
        return "poll", text, (), {"options": options}

    dice = raw.get("dice")
    if isinstance(dice, dict):
        text = f"{text_of(dice.get('emoji'))} {dice.get('value', '')}".strip()
        return "unsupported", text or _("Dice"), (), {"dice": dice.get("value")}

    for field in _UNSUPPORTED_CONTENT:
        if raw.get(field) is not None:
            return (
                "unsupported",
                _("Unsupported Telegram message (%(kind)s).") % {"kind": field},
                (),
                {"type": field},
            )

    if "text" in raw and isinstance(raw["text"], str) and raw["text"]:
        return "text", _with_links(raw["text"], raw.get("entities")), (), {}
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number: float | int = value
    return number


def _largest_photo(sizes: Any) -> Mapping[str, Any] | None:
    if not isinstance(sizes, list):
        return None
    candidates = [size for size in sizes if isinstance(size, dict) and text_of(size.get("file_id"))]
    if not candidates:
        return None

    def area(size: Mapping[str, Any]) -> tuple[int, int]:
        width, height = _int(size.get("width")) or 0, _int(size.get("height")) or 0
        return width * height, _int(size.get("file_size")) or 0

    return max(candidates, key=area)


def _default_filename(stem: str, file_id: str, mime: str) -> str:
    """Zammad's names for files Telegram sends without one: ``video-<file id>.mp4``,
    ``audio-<file id>.ogg``."""
    subtype = mime.rsplit("/", 1)[-1] if "/" in mime else ""
    if stem == "audio" and mime == "audio/ogg":
        subtype = "ogg"
    elif subtype == "mpeg":
        subtype = "mp3"
    return f"{stem}-{file_id}.{subtype}" if subtype else f"{stem}-{file_id}"


def _media(kind: str, item: Mapping[str, Any], mime: str, filename: str, caption: str) -> MediaRef:
    size = _int(item.get("file_size"))
    return MediaRef(
        kind=kind,
        media_id=text_of(item.get("file_id")),
        mime_type=mime,
        filename=filename,
        caption=caption,
        size=size,
    )


def _with_links(text: str, entities: Any) -> str:
    """The text with each ``text_link``'s URL written after the words it hides behind.

    Entity offsets count UTF-16 code units; entities that do not fit the text are skipped."""
    if not text or not isinstance(entities, list):
        return text
    links: list[tuple[int, str]] = []
    try:
        units = text.encode("utf-16-le")
    except UnicodeEncodeError:
        return text  # a lone surrogate (JSON allows "\ud800"): offsets cannot be trusted
    for entity in entities:
        if not isinstance(entity, dict) or entity.get("type") != "text_link":
            continue
        offset, length, url = (
            _int(entity.get("offset")),
            _int(entity.get("length")),
            text_of(entity.get("url")),
        )
        if offset is None or length is None or not url or offset < 0 or length < 0:
            continue
        end = (offset + length) * 2
        if end > len(units):
            continue
        links.append((end, url))
    for end, url in sorted(links, reverse=True):
        try:
            before, after = units[:end].decode("utf-16-le"), units[end:].decode("utf-16-le")
        except UnicodeDecodeError:
            continue  # the offset splits a surrogate pair
        if url in before[-len(url) :]:
            continue
        units = (before + f" ({url})" + after).encode("utf-16-le")
    return units.decode("utf-16-le")


def _callback(raw: Any) -> InboundSocialMessage:
    if not isinstance(raw, dict):
        raise ParseError(_("A Telegram callback query is a JSON object."))
    query_id = platform_id(raw.get("id"))
    sender = raw.get("from")
    sender_id = platform_id(sender.get("id")) if isinstance(sender, dict) else None
    if query_id is None or sender_id is None or not isinstance(sender, dict):
        raise ParseError(_("A Telegram callback query needs an id and a sender."))
    payload = text_of(raw.get("data")) or text_of(raw.get("game_short_name"))
    message = raw.get("message")
    chat_id = sender_id
    reply_to = ""
    title = ""
    if isinstance(message, dict):
        chat = message.get("chat")
        chat_id = (platform_id(chat.get("id")) if isinstance(chat, dict) else None) or sender_id
        message_id = _int(message.get("message_id"))
        if message_id is not None:
            reply_to = f"{chat_id}:{message_id}"
        title = _button_title(message.get("reply_markup"), payload)
    data: dict[str, Any] = {"callback_query_id": query_id, "payload": payload}
    username = text_of(sender.get("username"))
    if username:
        data["username"] = username
    return InboundSocialMessage(
        platform="telegram",
        account_id="",
        external_id=f"{chat_id}:callback:{query_id}",
        sender_id=sender_id,
        sender_name=_name(sender),
        conversation_id=chat_id,
        occurred_at=dt.datetime.now(tz=dt.UTC),
        text=title or payload or _("Button pressed"),
        kind="button",
        reply_to=reply_to,
        data=data,
    )


def _button_title(markup: Any, payload: str) -> str:
    if not payload or not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        return ""
    for row in markup["inline_keyboard"]:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == payload:
                return text_of(button.get("text"))
    return ""


# -- HTTP helpers ------------------------------------------------------------------------------


def _base(credentials: Credentials) -> str:
    return (credentials.api_base or BOT_API).rstrip("/")


def _chat_id(value: str) -> int | str:
    """Telegram takes a numeric chat id or an @channel name."""
    try:
        return int(value)
    except ValueError:
        return value


def _message_id_of(reply_to: str) -> int | None:
    """The message id in one of this adapter's external ids (``chat:message[:...]``, also with
    the ``telegram:`` prefix of an interaction's external id) or a bare id."""
    if not reply_to:
        return None
    parts = reply_to.removeprefix("telegram:").split(":")
    candidate = parts[1] if len(parts) > 1 else parts[0]
    try:
        return int(candidate)
    except ValueError:
        return None


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<bot token>") if token else text


def _call(
    session: requests.Session, credentials: Credentials, method: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """POST one Bot API method; its ``result`` object, or SendError without the token in it."""
    token = credentials.access_token
    if not token:
        raise SendError(_("This Telegram account has no bot token."), retryable=False)
    try:
        response = session.post(f"{_base(credentials)}/bot{token}/{method}", json=payload, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise SendError(
            _("Telegram could not be reached (%(error)s).") % {"error": type(exc).__name__},
            retryable=True,
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    if response.ok and answer.get("ok") is True:
        result = answer.get("result")
        if isinstance(result, dict):
            return result
        raise SendError(_("Telegram answered without a result."), retryable=False)

    code = _int(answer.get("error_code")) or response.status_code
    description = _redact(text_of(answer.get("description")), token) or f"HTTP {response.status_code}"
    parameters = mapping(answer.get("parameters"))
    if code == 429 or response.status_code == 429:
        retry_after = _number(parameters.get("retry_after"))
        if retry_after is None:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        raise SendError(
            _("Telegram asked to slow down: %(description)s") % {"description": description},
            retryable=True,
            retry_after=float(retry_after) if retry_after is not None else None,
        )
    if code >= 500 or response.status_code >= 500:
        raise SendError(_("Telegram failed: %(description)s") % {"description": description}, retryable=True)
    migrated = platform_id(parameters.get("migrate_to_chat_id"))
    if migrated:
        description = _("%(description)s (the group is now the supergroup %(chat)s)") % {
            "description": description,
            "chat": migrated,
        }
    raise SendError(_("Telegram refused: %(description)s") % {"description": description}, retryable=False)
