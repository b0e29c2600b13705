"""Care's own signed JSON adapter (platform "other", URL slug ``generic``), for any system that is
not one of the built-in platforms: a web chat, an SMS gateway, a bridge to another messenger.

Inbound, ``POST /inbound/social/generic/<token>/`` with ``X-Care-Signature: sha256=<hex HMAC-SHA256
of the raw body, keyed with the account's app secret>`` and a JSON body (docs/social.md)::

    {"account": "optional: the receiving account's id, checked when given",
     "messages": [{"id": "m-1", "from": {"id": "u-42", "name": "Ada"}, "conversation": "c-7",
                   "text": "Hello", "timestamp": "2026-11-27T10:00:00Z" or 1795946400,
                   "attachments": [{"url": "https://…", "mime_type": "image/png",
                                    "filename": "a.png", "kind": "image"}],
                   "reply_to": "m-0", "echo": false}],
     "statuses": [{"id": "out-1", "status": "sent|delivered|read|failed",
                   "timestamp": …, "recipient": "u-42", "error": "…",
                   "watermark": "optional: every message to recipient up to this time"}]}

Outbound, ``POST {api_base}/messages`` with ``Authorization: Bearer <access token>`` and
``{"to", "text", "conversation", "reply_to"}``; the answer ``{"id": …}`` is the sent message's id,
which later statuses name. There is no GET handshake.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import mimetypes
import posixpath
from typing import Any
from urllib.parse import urlparse

import requests
from django.utils import timezone
from django.utils.translation import gettext as _

from care.connectors.phone.views import SIGNATURE_HEADER, care_signature
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
from care.connectors.social.http import raise_for_response, read_capped
from care.contacts.identities import SocialPlatform

TIMEOUT = 10  # seconds, every HTTP call
MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024
MAX_ITEMS = 500  # messages plus statuses in one body
MEDIA_KINDS = frozenset({"image", "video", "audio", "voice", "document", "sticker", "file"})
STATES = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ, DeliveryState.FAILED})
_HEADER = SIGNATURE_HEADER.lower()


class GenericAdapter:
    platform: str = SocialPlatform.OTHER
    reply_window: dt.timedelta | None = None
    rate_per_second: float = 10.0

    # --- webhook ------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        raise ParseError(
            _("Care's generic social endpoint has no verification handshake: POST signed JSON to it.")
        )

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        if not credentials.app_secret:
            raise SignatureError(
                _("This account has no app secret, so its requests cannot be verified; set one in the admin.")
            )
        signature = request.headers.get(_HEADER, "").strip().lower()
        if not signature:
            raise SignatureError(
                _(
                    "Sign the body: X-Care-Signature: sha256=<hex HMAC-SHA256 of the body, "
                    "keyed with the app secret>."
                )
            )
        expected = care_signature(credentials.app_secret, request.body)
        if not hmac.compare_digest(signature.encode("utf-8"), expected.encode("ascii")):
            raise SignatureError(_("The X-Care-Signature does not match the body."))

    def parse(self, body: bytes) -> Parsed:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ParseError(_("The body is not valid JSON: %(error)s") % {"error": error}) from error
        if not isinstance(document, dict):
            raise ParseError(_('The body must be a JSON object with "messages" and/or "statuses".'))
        if "messages" not in document and "statuses" not in document:
            raise ParseError(_('The body has neither "messages" nor "statuses".'))
        account_id = _optional_id(document.get("account"), _('"account"'))
        messages = _list(document, "messages")
        statuses = _list(document, "statuses")
        if len(messages) + len(statuses) > MAX_ITEMS:
            raise ParseError(_("At most %(count)d messages and statuses per request.") % {"count": MAX_ITEMS})
        return Parsed(
            messages=tuple(
                _message(item, account_id, number) for number, item in enumerate(messages, start=1)
            ),
            statuses=tuple(
                _status(item, account_id, number) for number, item in enumerate(statuses, start=1)
            ),
        )

    # --- platform API -------------------------------------------------------------------------

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        if not credentials.api_base:
            raise SendError(
                _("This account has no API base URL: set where Care posts replies in the admin."),
                retryable=False,
            )
        if message.template_name:
            raise SendError(_("The generic adapter sends no templates; write a text reply."), retryable=False)
        payload: dict[str, Any] = {
            "to": message.recipient_id,
            "text": message.text,
            "conversation": message.conversation_id,
            "reply_to": message.reply_to,
        }
        if message.media_url:
            payload["attachments"] = [{"url": message.media_url, "kind": message.media_kind or "file"}]
        try:
            response = session.post(
                credentials.api_base.rstrip("/") + "/messages",
                json=payload,
                headers=_auth(credentials),
                timeout=TIMEOUT,
            )
        except requests.RequestException as error:
            raise SendError(
                _("The platform could not be reached: %(error)s") % {"error": error}, retryable=True
            ) from error
        raise_for_response(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        sent_id = answer.get("id") if isinstance(answer, dict) else None
        if sent_id in (None, ""):
            # It may have been sent: trying again could send it twice.
            raise SendError(
                _("The platform accepted the message but answered without its id."), retryable=False
            )
        return SendResult(external_id=str(sent_id))

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        if not media.url:
            raise SendError(_("The attachment has no URL to download it from."), retryable=False)
        try:
            response = session.get(media.url, headers=_auth(credentials), timeout=TIMEOUT, stream=True)
        except requests.RequestException as error:
            raise SendError(
                _("The file could not be downloaded: %(error)s") % {"error": error}, retryable=True
            ) from error
        with response:
            raise_for_response(response)
            content = read_capped(response, MAX_DOWNLOAD_BYTES)
        mime_type = (
            media.mime_type
            or response.headers.get("Content-Type", "").split(";")[0].strip()
            or "application/octet-stream"
        )
        return Downloaded(content=content, mime_type=mime_type, filename=media_filename(media, mime_type))


ADAPTER = GenericAdapter()


# --- HTTP helpers (usable by other adapters) ------------------------------------------------------


def _auth(credentials: Credentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.access_token}"} if credentials.access_token else {}


def media_filename(media: MediaRef, mime_type: str) -> str:
    """The attachment's own name, else the URL's last path part, else ``<kind><extension>``."""
    if media.filename:
        return media.filename
    name = posixpath.basename(urlparse(media.url).path) if media.url else ""
    if name and "." in name:
        return name
    return f"{media.kind or 'file'}{mimetypes.guess_extension(mime_type) or ''}"


# --- parsing -------------------------------------------------------------------------------------


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(_('"%(key)s" must be a list.') % {"key": key})
    return value


def _optional_id(value: object, where: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(_("%(where)s must be a string or a number.") % {"where": where})
    return str(value).strip()[:200]


def _required_id(item: dict[str, Any], key: str, where: str) -> str:
    value = _optional_id(item.get(key), f'{where}: "{key}"')
    if not value:
        raise ParseError(_('%(where)s has no "%(key)s".') % {"where": where, "key": key})
    return value


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(_('%(where)s: "%(key)s" must be a string.') % {"where": where, "key": key})
    return value


def _moment(value: object, where: str, *, required: bool = False) -> dt.datetime | None:
    """ISO 8601 with its UTC offset, or Unix seconds (a number or a string of digits)."""
    if value is None or value == "":
        if required:
            raise ParseError(_('%(where)s has no "timestamp".') % {"where": where})
        return None
    if isinstance(value, bool):
        raise ParseError(_("%(where)s: the time must be ISO 8601 or Unix seconds.") % {"where": where})
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise ParseError(
                _("%(where)s: %(value)s is not a usable Unix time.") % {"where": where, "value": value}
            ) from error
    if not isinstance(value, str):
        raise ParseError(_("%(where)s: the time must be ISO 8601 or Unix seconds.") % {"where": where})
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise ParseError(
            _("%(where)s: %(value)r is not an ISO 8601 time.") % {"where": where, "value": value}
        ) from error
    if moment.tzinfo is None:
        raise ParseError(
            _("%(where)s: the time %(value)r has no UTC offset (add Z or +01:00).")
            % {"where": where, "value": value}
        )
    return moment.astimezone(dt.UTC)


def _object(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ParseError(_("%(where)s must be a JSON object.") % {"where": where})
    return item


def _attachment(item: object, where: str) -> MediaRef:
    attachment = _object(item, where)
    url = _string(attachment, "url", where).strip()
    if urlparse(url).scheme not in ("http", "https"):
        raise ParseError(_('%(where)s needs an http(s) "url".') % {"where": where})
    mime_type = _string(attachment, "mime_type", where).strip()
    kind = _string(attachment, "kind", where).strip().lower()
    if kind not in MEDIA_KINDS:
        kind = (mime_type.split("/")[0] if mime_type.split("/")[0] in MEDIA_KINDS else "") or "file"
    return MediaRef(
        kind=kind,
        url=url,
        mime_type=mime_type,
        filename=_string(attachment, "filename", where).strip()[:255],
    )


def _message(item: object, account_id: str, number: int) -> InboundSocialMessage:
    where = _("Message %(number)d") % {"number": number}
    message = _object(item, where)
    sender = _object(message.get("from"), _('%(where)s: "from"') % {"where": where})
    sender_id = _required_id(sender, "id", _('%(where)s: "from"') % {"where": where})
    attachments_raw = message.get("attachments") or []
    if not isinstance(attachments_raw, list):
        raise ParseError(_('%(where)s: "attachments" must be a list.') % {"where": where})
    attachments = tuple(
        _attachment(entry, _("%(where)s, attachment %(index)d") % {"where": where, "index": index})
        for index, entry in enumerate(attachments_raw, start=1)
    )
    text = _string(message, "text", where).strip()
    if not text and not attachments:
        raise ParseError(_("%(where)s has neither text nor attachments.") % {"where": where})
    echo = message.get("echo", False)
    if not isinstance(echo, bool):
        raise ParseError(_('%(where)s: "echo" must be true or false.') % {"where": where})
    occurred_at = _moment(message.get("timestamp"), where, required=True)
    assert occurred_at is not None  # noqa: S101 - required=True
    return InboundSocialMessage(
        platform=SocialPlatform.OTHER,
        account_id=account_id,
        external_id=_required_id(message, "id", where),
        sender_id=sender_id,
        sender_name=_string(sender, "name", where).strip()[:200],
        conversation_id=_optional_id(message.get("conversation"), where) or sender_id,
        occurred_at=occurred_at,
        text=text,
        kind="text" if text or not attachments else attachments[0].kind,
        attachments=attachments,
        reply_to=_optional_id(message.get("reply_to"), where),
        from_account=echo,
    )


def _status(item: object, account_id: str, number: int) -> StatusUpdate:
    where = _("Status %(number)d") % {"number": number}
    status = _object(item, where)
    state = _string(status, "status", where).strip().lower()
    if state not in STATES:
        raise ParseError(
            _('%(where)s: "status" must be one of sent, delivered, read, failed.') % {"where": where}
        )
    watermark = _moment(status.get("watermark"), where)
    recipient = _optional_id(status.get("recipient"), where)
    external_id = _optional_id(status.get("id"), where)
    if not external_id and (watermark is None or not recipient):
        raise ParseError(
            _('%(where)s names no message: give "id", or "recipient" and "watermark".') % {"where": where}
        )
    occurred_at = _moment(status.get("timestamp"), where) or watermark or timezone.now()
    return StatusUpdate(
        platform=SocialPlatform.OTHER,
        account_id=account_id,
        external_id=external_id,
        state=state,
        occurred_at=occurred_at,
        recipient_id=recipient,
        watermark=watermark,
        error=_string(status, "error", where).strip()[:1000],
    )
