"""WhatsApp Cloud API: webhook verification, parsing, replies and media downloads.

Webhooks (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/):
``GET`` with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge`` subscribes the URL;
every ``POST`` is signed ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``.
A body is ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": ..., "value": ...}]}]}``. Only the ``messages`` field carries customer messages
(``value.messages``) and delivery reports (``value.statuses``); ``smb_message_echoes`` carries
messages the business sent from the WhatsApp Business app (echoes, ``from_account``); every other
field (account and template updates, calls, user preferences...) is named in ``Parsed.ignored``.

Mapping decisions:

- ``account_id`` is ``metadata.phone_number_id`` (the account Care knows), ``external_id`` the wamid,
  ``sender_id`` and ``conversation_id`` the customer's ``wa_id`` (``from``; a business-scoped
  ``from_user_id`` when WhatsApp hides the number), ``sender_name`` the profile name of the
  ``contacts`` entry with that id (never another contact's).
- Every message becomes an interaction, whatever its type: media keep their id for the download task;
  locations, contact cards, reactions, orders, buttons, list and flow replies get a readable ``text``
  and their structure in ``data``; a system notice (number changed) is kept as a note; a type Care
  does not know becomes kind ``unsupported`` with a description, never dropped.
- Kind ``voice`` for audio recorded in WhatsApp (``audio.voice``), ``audio`` otherwise.
- Status ``played`` (a voice message was listened to) counts as ``read``: it implies it.
- An echo's ``sender_id`` is the customer it was sent *to*, so it threads on that customer's ticket;
  ``from_account`` says the business wrote it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import mimetypes
import re
from collections.abc import Callable
from typing import Any

import requests
from django.utils.translation import gettext as _

from care.connectors.social.base import (
    Adapter,
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

PLATFORM = "whatsapp"
GRAPH_API = "https://graph.facebook.com/v21.0"
TIMEOUT = 10  # seconds, every HTTP call
MAX_MEDIA_BYTES = 25 * 1024 * 1024
SIGNATURE_HEADER = "x-hub-signature-256"

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
_CAPTIONED = frozenset({"image", "video", "document"})

_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "played": DeliveryState.READ,  # a voice message was listened to: it was read
    "failed": DeliveryState.FAILED,
}

# Graph error codes meaning "too fast, try later": throttling of the app, the account, the phone
# number, or the pair (business, customer); and Meta's transient server-side failures.
_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131048, 131056})
_TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
_REENGAGEMENT = 131047
_TOKEN_INVALID = 190

_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}


# -- small defensive readers: webhook bodies are JSON of unknown quality --------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    """A scalar as text ("" for None, containers and booleans)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return ""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(_("%(number)s is not a finite number") % {"number": text})
    return number


def _not_a_number(text: str) -> float:
    raise ValueError(_("%(constant)s is not JSON") % {"constant": text})


def _loads(text: str | bytes) -> Any:
    """JSON without NaN or infinities: what is parsed is stored (PostgreSQL's jsonb refuses them)."""
    return json.loads(text, parse_float=_finite, parse_constant=_not_a_number)


def _timestamp(value: Any) -> dt.datetime | None:
    """Unix seconds (WhatsApp sends them as strings) as an aware UTC datetime; None if unusable."""
    try:
        seconds = float(_str(value))
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _errors(value: Any) -> list[dict[str, Any]]:
    """``errors[]`` of a message, a status or a change, as ``{"code", "title", "details"}``."""
    found = []
    for error in _dicts(value):
        item: dict[str, Any] = {
            "code": error.get("code") if isinstance(error.get("code"), int | str) else None,
            "title": _str(error.get("title")) or _str(error.get("message")),
        }
        details = _str(_dict(error.get("error_data")).get("details"))
        if details:
            item["details"] = details
        found.append(item)
    return found


def _error_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['code']}: {e['title']}" if e["code"] is not None else e["title"] for e in errors)


class WhatsAppAdapter:
    platform = PLATFORM
    reply_window: dt.timedelta | None = dt.timedelta(hours=24)
    # Cloud API allows 80 messages per second per phone number by default; Care keeps to a quarter of
    # it so bursts to one customer (limited separately by WhatsApp) and retries have room.
    rate_per_second = 20.0

    # -- webhook authentication ------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        if not credentials.verify_token:
            raise SignatureError(_("Set the account's verify token before subscribing the webhook."))
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        if mode != "subscribe" or not hmac.compare_digest(
            token.encode("utf-8", "replace"), credentials.verify_token.encode("utf-8", "replace")
        ):
            raise SignatureError(_("The verify token does not match this account's."))
        challenge = request.query.get("hub.challenge", "")
        if not challenge:
            raise ParseError(_("The verification request has no hub.challenge."))
        return HandshakeResponse(status=200, body=challenge, content_type="text/plain")

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        if not credentials.app_secret:
            raise SignatureError(
                _("Set the account's app secret: WhatsApp webhooks cannot be verified without it.")
            )
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not given:
            raise SignatureError(_("The X-Hub-Signature-256 header is missing."))
        digest = hmac.new(credentials.app_secret.encode(), request.body, hashlib.sha256).hexdigest()
        expected = f"sha256={digest}"
        if not hmac.compare_digest(given.lower().encode("utf-8", "replace"), expected.encode()):
            raise SignatureError(_("The X-Hub-Signature-256 signature does not match the body."))

    # -- parsing ---------------------------------------------------------------------------------

    def parse(self, body: bytes) -> Parsed:
        try:
            payload = _loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ParseError(_("The body is not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(payload, dict):
            raise ParseError(_("The body is not a JSON object."))
        if payload.get("object") != "whatsapp_business_account":
            raise ParseError(
                _('"object" is "%(value)s", not "whatsapp_business_account".')
                % {"value": _str(payload.get("object"))[:100] or type(payload.get("object")).__name__}
            )
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise ParseError(_('"entry" must be a list.'))
        collected = _Collected()
        for entry in entries:
            if not isinstance(entry, dict):
                raise ParseError(_('Every "entry" item must be an object.'))
            changes = entry.get("changes", [])
            if not isinstance(changes, list):
                raise ParseError(_('"changes" must be a list.'))
            for change in changes:
                if not isinstance(change, dict):
                    raise ParseError(_('Every "changes" item must be an object.'))
                _parse_change(change, waba_id=_str(entry.get("id")), into=collected)
        return Parsed(
            messages=tuple(collected.messages),
            statuses=tuple(collected.statuses),
            ignored=tuple(collected.ignored),
        )

    # -- sending ---------------------------------------------------------------------------------

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        _require_token(credentials)
        payload = build_payload(message)
        url = f"{_api(credentials)}/{credentials.account_id}/messages"
        response = _call(session, "POST", url, credentials, json=payload)
        # Sent or not, retrying after an unreadable answer could deliver twice: report instead.
        answer = _json(response, retryable=False)
        ids = [_str(item.get("id")) for item in _dicts(answer.get("messages"))]
        if not ids or not ids[0]:
            raise SendError(
                _("WhatsApp answered without a message id: %(body)s") % {"body": response.text[:200]},
                retryable=False,
            )
        return SendResult(external_id=ids[0])

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        _require_token(credentials)
        mime_type = media.mime_type
        url = media.url
        if media.media_id:
            # Step one: the media id gives a short-lived URL (about five minutes) on Meta's CDN.
            info = _json(_call(session, "GET", f"{_api(credentials)}/{media.media_id}", credentials))
            url = _str(info.get("url"))
            mime_type = _str(info.get("mime_type")) or mime_type
            size = info.get("file_size")
            if isinstance(size, int | str) and _str(size).isdigit() and int(size) > MAX_MEDIA_BYTES:
                raise _too_large()
        if not url:
            raise SendError(_("WhatsApp gave no address to download this file from."), retryable=False)
        # Step two: the file itself, with the same bearer token; an expired URL is worth retrying
        # from step one.
        response = _call(session, "GET", url, credentials, stream=True, client_errors_retryable=True)
        try:
            content = read_capped(response, MAX_MEDIA_BYTES, too_large=_too_large_text())
        finally:
            response.close()
        mime_type = mime_type or response.headers.get("Content-Type", "") or "application/octet-stream"
        return Downloaded(
            content=content, mime_type=mime_type, filename=_filename(media, mime_type.split(";")[0].strip())
        )


ADAPTER: Adapter = WhatsAppAdapter()  # typed so mypy checks it against the protocol


# -- parsing helpers --------------------------------------------------------------------------------


class _Collected:
    def __init__(self) -> None:
        self.messages: list[InboundSocialMessage] = []
        self.statuses: list[StatusUpdate] = []
        self.ignored: list[str] = []


def _parse_change(change: dict[str, Any], *, waba_id: str, into: _Collected) -> None:
    field = _str(change.get("field")) or "?"
    value = change.get("value")
    if field not in ("messages", "smb_message_echoes"):
        into.ignored.append(_other_label(field, _dict(value)))
        return
    if not isinstance(value, dict):
        raise ParseError(_('The "value" of a %(field)s change must be an object.') % {"field": field})
    metadata = _dict(value.get("metadata"))
    context = _Context(
        waba_id=waba_id,
        account_id=_str(metadata.get("phone_number_id")),
        display_number=_str(metadata.get("display_phone_number")),
        names=_profile_names(value.get("contacts")),
    )
    found = False
    for key, handler in (
        ("messages", _message_or_ignored),
        ("message_echoes", _echo_or_ignored),
        ("statuses", _status_or_ignored),
    ):
        items = value.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ParseError(_('"%(key)s" must be a list.') % {"key": key})
        for item in items:
            found = True
            if not isinstance(item, dict):
                raise ParseError(_('Every "%(key)s" item must be an object.') % {"key": key})
            handler(item, context, into)
    errors = _errors(value.get("errors"))
    if errors:
        found = True
        into.ignored.append(_("WhatsApp reported an error: %(errors)s") % {"errors": _error_text(errors)})
    if not found:
        into.ignored.append(_("%(field)s change with nothing in it") % {"field": field})


class _Context:
    def __init__(self, *, waba_id: str, account_id: str, display_number: str, names: dict[str, str]) -> None:
        self.waba_id = waba_id
        self.account_id = account_id
        self.display_number = display_number
        self.names = names


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _dicts(contacts):
        name = _str(_dict(contact.get("profile")).get("name"))
        for key in ("wa_id", "user_id"):
            handle = _str(contact.get(key))
            if handle and name:
                names[handle] = name
    return names


def _other_label(field: str, value: dict[str, Any]) -> str:
    """A short line for a change Care does not act on, e.g. "account_update: ACCOUNT_DELETED"."""
    details = [
        _str(value.get(key)) for key in ("event", "message_template_name", "message_template_language")
    ]
    for call in _dicts(value.get("calls")):
        details.append(_str(call.get("event")))
    for preference in _dicts(value.get("user_preferences")):
        details.append(_str(preference.get("category")) + "=" + _str(preference.get("value")))
    details = [detail for detail in details if detail and detail != "="]
    return f"{field}: {' '.join(details)}" if details else field


def _message_or_ignored(item: dict[str, Any], context: _Context, into: _Collected) -> None:
    external_id = _str(item.get("id"))
    sender = _str(item.get("from")) or _str(item.get("from_user_id"))
    if not external_id or not sender:
        into.ignored.append(_("message without an id or a sender"))
        return
    into.messages.append(
        _message(item, context, external_id=external_id, customer=sender, from_account=False)
    )


def _echo_or_ignored(item: dict[str, Any], context: _Context, into: _Collected) -> None:
    external_id = _str(item.get("id"))
    customer = _str(item.get("to")) or _str(item.get("to_user_id"))
    if context.display_number and customer == context.display_number:
        # Some echoes (a deletion) name the business as "to": the customer is then "from".
        customer = _str(item.get("from"))
    if not external_id or not customer:
        into.ignored.append(_("message echo without an id or a recipient"))
        return
    into.messages.append(
        _message(item, context, external_id=external_id, customer=customer, from_account=True)
    )


def _status_or_ignored(item: dict[str, Any], context: _Context, into: _Collected) -> None:
    external_id = _str(item.get("id"))
    status = _str(item.get("status"))
    state = _STATES.get(status)
    if not external_id or state is None:
        into.ignored.append(
            _("status %(status)s of message %(id)s") % {"status": status or "?", "id": external_id or "?"}
        )
        return
    into.statuses.append(
        StatusUpdate(
            platform=PLATFORM,
            account_id=context.account_id,
            external_id=external_id,
            state=state,
            occurred_at=_timestamp(item.get("timestamp")) or dt.datetime.now(tz=dt.UTC),
            recipient_id=_str(item.get("recipient_id")) or _str(item.get("recipient_user_id")),
            error=_error_text(_errors(item.get("errors"))),
        )
    )


class _Content:
    """What one message type contributes: kind, text, attachments, structured data."""

    def __init__(
        self,
        kind: str,
        text: str = "",
        attachments: tuple[MediaRef, ...] = (),
        data: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.text = text
        self.attachments = attachments
        self.data = data or {}


def _message(
    item: dict[str, Any], context: _Context, *, external_id: str, customer: str, from_account: bool
) -> InboundSocialMessage:
    content = _content(item)
    data: dict[str, Any] = {"waba_id": context.waba_id, **content.data}
    message_context = _dict(item.get("context"))
    if message_context.get("forwarded") or message_context.get("frequently_forwarded"):
        data["forwarded"] = True
    if message_context.get("referred_product"):
        data["referred_product"] = message_context["referred_product"]
    for key in ("referral", "identity", "group_id"):
        if item.get(key):
            data[key] = item[key]
    errors = _errors(item.get("errors"))
    if errors:
        data["errors"] = errors
    if not content.text and not content.attachments:
        content.text = _("[%(type)s message]") % {"type": content.kind}
    return InboundSocialMessage(
        platform=PLATFORM,
        account_id=context.account_id,
        external_id=external_id,
        sender_id=customer,
        sender_name="" if from_account else context.names.get(customer, ""),
        conversation_id=customer,
        occurred_at=_timestamp(item.get("timestamp")) or dt.datetime.now(tz=dt.UTC),
        text=content.text,
        kind=content.kind,
        attachments=content.attachments,
        reply_to=_str(message_context.get("id")),
        from_account=from_account,
        data=data,
    )


def _content(item: dict[str, Any]) -> _Content:
    kind = _str(item.get("type"))
    if kind == "edit":
        return _edit(item)
    if kind == "contacts":  # a list, not an object
        return _contacts(item.get("contacts"))
    reader = _READERS.get(kind)
    if reader is not None:
        return reader(_dict(item.get(kind)))
    if kind in MEDIA_KINDS:
        return _media(kind, _dict(item.get(kind)))
    return _unsupported(item, kind)


def _text(body: dict[str, Any]) -> _Content:
    return _Content("text", _str(body.get("body")))


def _media(kind: str, body: dict[str, Any]) -> _Content:
    media_id, url = _str(body.get("id")), _str(body.get("url"))
    caption = _str(body.get("caption"))
    size = body.get("file_size")
    if kind == "audio" and body.get("voice") is True:
        kind = "voice"
    data: dict[str, Any] = {}
    if body.get("animated") is True:
        data["animated"] = True
    attachments: tuple[MediaRef, ...] = ()
    if media_id or url:
        attachments = (
            MediaRef(
                kind=kind,
                media_id=media_id,
                url=url,
                mime_type=_str(body.get("mime_type")),
                filename=_str(body.get("filename")),
                caption=caption,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            ),
        )
    return _Content(kind, caption, attachments, data)


def _location(body: dict[str, Any]) -> _Content:
    location = {
        key: body[key]
        for key in ("latitude", "longitude", "name", "address", "url")
        if body.get(key) not in (None, "")
    }
    place = ", ".join(part for part in (_str(body.get("name")), _str(body.get("address"))) if part)
    where = f"({_str(body.get('latitude'))}, {_str(body.get('longitude'))})"
    text = f"📍 {place} {where}" if place else f"📍 {where}"
    return _Content("location", text, data={"location": location})


def _contacts(body: Any) -> _Content:
    cards = _dicts(body)
    lines = []
    for card in cards:
        name = _dict(card.get("name"))
        label = _str(name.get("formatted_name")) or " ".join(
            part for part in (_str(name.get("first_name")), _str(name.get("last_name"))) if part
        )
        reach = [_str(phone.get("phone")) or _str(phone.get("wa_id")) for phone in _dicts(card.get("phones"))]
        reach += [_str(email.get("email")) for email in _dicts(card.get("emails"))]
        details = ", ".join(value for value in reach if value)
        lines.append("👤 " + ": ".join(part for part in (label or "?", details) if part))
    text = "\n".join(lines) or _("[contact card]")
    return _Content("contacts", text, data={"contacts": cards})


def _reaction(body: dict[str, Any]) -> _Content:
    emoji = _str(body.get("emoji"))
    target = _str(body.get("message_id"))
    text = _("Reacted %(emoji)s to a message.") % {"emoji": emoji} if emoji else _("Removed a reaction.")
    return _Content("reaction", text, data={"reaction": {"emoji": emoji or None, "message_id": target}})


def _button(body: dict[str, Any]) -> _Content:
    return _Content("button", _str(body.get("text")), data={"payload": _str(body.get("payload"))})


def _interactive(body: dict[str, Any]) -> _Content:
    kind = _str(body.get("type"))
    reply = _dict(body.get(kind))
    if kind in ("button_reply", "list_reply"):
        title = _str(reply.get("title"))
        interactive = {
            "type": kind,
            "id": _str(reply.get("id")),
            "title": title,
            "description": _str(reply.get("description")) or None,
        }
        return _Content("interactive", title, data={"interactive": interactive})
    if kind == "nfm_reply":
        return _flow_reply(reply)
    if kind == "call_permission_reply":
        response = _str(reply.get("response"))
        text = _("Call permission: %(response)s") % {"response": response or "?"}
        return _Content("interactive", text, data={"interactive": {"type": kind, **reply}})
    text = _("[interactive reply: %(type)s]") % {"type": kind or "?"}
    return _Content("interactive", text, data={"interactive": {"type": kind, **reply}})


def _flow_reply(reply: dict[str, Any]) -> _Content:
    """A WhatsApp Flow's answers (``nfm_reply``): the form's fields as lines an agent can read."""
    raw = reply.get("response_json")
    try:
        answers = _loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        answers = raw
    lines = [_str(reply.get("body")) or _("Form submitted")]
    if isinstance(answers, dict):
        lines += [
            f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value}"
            for key, value in answers.items()
            if key != "flow_token"
        ]
    interactive = {"type": "nfm_reply", "name": _str(reply.get("name")), "response": answers}
    return _Content("interactive", "\n".join(lines), data={"interactive": interactive})


def _order(body: dict[str, Any]) -> _Content:
    items = []
    for product in _dicts(body.get("product_items")):
        price = " ".join(p for p in (_str(product.get("item_price")), _str(product.get("currency"))) if p)
        line = f"{_str(product.get('quantity')) or '?'} × {_str(product.get('product_retailer_id')) or '?'}"
        items.append(f"{line} ({price})" if price else line)
    text = "🛒 " + _("Order: %(items)s") % {"items": ", ".join(items) or "?"}
    note = _str(body.get("text"))
    if note:
        text += f"\n{note}"
    return _Content("order", text, data={"order": body})


def _system(body: dict[str, Any]) -> _Content:
    # Kept as a note on the ticket: an agent should know the customer's number changed.
    text = _str(body.get("body")) or _("WhatsApp system notice: %(type)s") % {
        "type": _str(body.get("type")) or "?"
    }
    return _Content("system", text, data={"system": body})


def _revoke(body: dict[str, Any]) -> _Content:
    original = _str(body.get("original_message_id"))
    return _Content("revoke", _("Deleted a message."), data={"original_message_id": original})


def _request_welcome(body: dict[str, Any]) -> _Content:
    return _Content("request_welcome", _("Opened the chat for the first time."))


def _edit(item: dict[str, Any]) -> _Content:
    edit = _dict(item.get("edit"))
    edited = _dict(edit.get("message"))
    # An edit of an edit is not something WhatsApp sends; not following it bounds the recursion.
    inner = _unsupported(edited, "edit") if edited.get("type") == "edit" else _content(edited)
    inner.data["original_message_id"] = _str(edit.get("original_message_id"))
    inner.data["edited"] = True
    inner.text = (
        _("Edited a message: %(text)s") % {"text": inner.text} if inner.text else _("Edited a message.")
    )
    return inner


def _unsupported(item: dict[str, Any], kind: str) -> _Content:
    """An unknown or unsupported type: described, never dropped."""
    shown = kind
    if kind == "unsupported":
        shown = _str(_dict(item.get("unsupported")).get("type")) or kind
    errors = _errors(item.get("errors"))
    text = _("Unsupported WhatsApp message (%(type)s)") % {"type": shown or "?"}
    if errors:
        text += f": {_error_text(errors)}"
    data: dict[str, Any] = {"type": shown}
    if isinstance(item.get(kind), dict):
        data["content"] = item[kind]
    return _Content("unsupported", text, data=data)


_READERS: dict[str, Callable[[Any], _Content]] = {
    "text": _text,
    "location": _location,
    "reaction": _reaction,
    "button": _button,
    "interactive": _interactive,
    "order": _order,
    "system": _system,
    "revoke": _revoke,
    "request_welcome": _request_welcome,
}


# -- sending helpers --------------------------------------------------------------------------------


def build_payload(message: OutboundMessage) -> dict[str, Any]:
    """The JSON body of ``POST /<phone number id>/messages`` for ``message``."""
    if not message.recipient_id:
        raise SendError(_("The reply has no WhatsApp recipient."), retryable=False)
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient_id,
    }
    if message.reply_to:
        payload["context"] = {"message_id": message.reply_to}
    if message.template_name:
        if not message.template_language:
            raise SendError(
                _("A WhatsApp template needs its language code (for example en_US)."), retryable=False
            )
        template: dict[str, Any] = {
            "name": message.template_name,
            "language": {"code": message.template_language},
        }
        if message.template_parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in message.template_parameters],
                }
            ]
        payload.update(type="template", template=template)
    elif message.media_url:
        kind = message.media_kind or "document"
        if kind not in MEDIA_KINDS:
            raise SendError(
                _("WhatsApp cannot send a file of kind %(kind)s.") % {"kind": kind}, retryable=False
            )
        media: dict[str, Any] = {"link": message.media_url}
        if message.text:
            if kind not in _CAPTIONED:
                raise SendError(
                    _("WhatsApp cannot put text on %(kind)s; send the text as its own message.")
                    % {"kind": kind},
                    retryable=False,
                )
            media["caption"] = message.text
        payload.update({"type": kind, kind: media})
    else:
        if not message.text.strip():
            raise SendError(_("The reply is empty."), retryable=False)
        payload.update(type="text", text={"preview_url": False, "body": message.text})
    return payload


def _api(credentials: Credentials) -> str:
    return (credentials.api_base or GRAPH_API).rstrip("/")


def _require_token(credentials: Credentials) -> None:
    if not credentials.access_token:
        raise SendError(_("Set the account's access token to send WhatsApp messages."), retryable=False)


def _call(
    session: requests.Session,
    method: str,
    url: str,
    credentials: Credentials,
    *,
    json: dict[str, Any] | None = None,
    stream: bool = False,
    client_errors_retryable: bool = False,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {credentials.access_token}"}
    try:
        response = session.request(method, url, headers=headers, json=json, timeout=TIMEOUT, stream=stream)
    except requests.RequestException as exc:
        raise SendError(
            _("WhatsApp could not be reached: %(error)s") % {"error": type(exc).__name__}, retryable=True
        ) from exc
    if response.status_code >= 400:
        error = _graph_error(response, client_errors_retryable=client_errors_retryable)
        response.close()
        raise error
    return response


def _json(response: requests.Response, *, retryable: bool = True) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError as exc:
        raise SendError(
            _("WhatsApp answered with something that is not JSON: %(body)s") % {"body": response.text[:200]},
            retryable=retryable,
        ) from exc
    return _dict(answer)


def _graph_error(response: requests.Response, *, client_errors_retryable: bool) -> SendError:
    """The platform's refusal as a SendError, with its own words and whether to retry."""
    status = response.status_code
    try:
        error = _dict(_dict(response.json()).get("error"))
    except ValueError:
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    text = _str(error.get("message")) or response.reason or str(status)
    details = _str(_dict(error.get("error_data")).get("details"))
    if details and details not in text:
        text = f"{text} ({details})"
    trace = _str(error.get("fbtrace_id"))
    described = _("WhatsApp refused the request (HTTP %(status)s, code %(code)s): %(text)s") % {
        "status": status,
        "code": code if code is not None else "-",
        "text": text,
    }
    if trace:
        described += f" [fbtrace_id {trace}]"
    if code == _REENGAGEMENT:
        message = _(
            "More than 24 hours have passed since the customer last wrote: WhatsApp only accepts an "
            "approved template now. %(platform)s"
        ) % {"platform": described}
        return SendError(message, retryable=False)
    if code == _TOKEN_INVALID or status == 401:
        return SendError(
            _("The account's access token was refused; enter a valid one. %(platform)s")
            % {"platform": described},
            retryable=False,
        )
    if status == 429 or code in _RATE_LIMIT_CODES:
        return SendError(described, retryable=True, retry_after=retry_after(response))
    if status >= 500 or code in _TRANSIENT_CODES:
        return SendError(described, retryable=True, retry_after=retry_after(response))
    return SendError(described, retryable=client_errors_retryable and status in (403, 404, 410))


def _too_large_text() -> str:
    return _("The file is larger than %(limit)s MB; Care does not store it.") % {
        "limit": MAX_MEDIA_BYTES // (1024 * 1024)
    }


def _too_large() -> SendError:
    return SendError(_too_large_text(), retryable=False)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def _filename(media: MediaRef, mime_type: str) -> str:
    """The sender's file name without any path, else ``<kind>-<media id><extension>``."""
    name = _UNSAFE.sub("_", media.filename.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    if name:
        return name[:200]
    extension = _EXTENSIONS.get(mime_type) or mimetypes.guess_extension(mime_type, strict=False) or ".bin"
    stem = re.sub(r"[^A-Za-z0-9_-]+", "", media.media_id)[:64] or "file"
    return f"{media.kind or 'file'}-{stem}{extension}"


__all__ = ["ADAPTER", "GRAPH_API", "MAX_MEDIA_BYTES", "WhatsAppAdapter", "build_payload"]
