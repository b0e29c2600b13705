"""The one small interface every social platform adapter implements, and the shapes it speaks.

An adapter is a module in this package (``whatsapp``, ``meta``, ``telegram``, ``x``, ``generic``)
exposing one ``Adapter`` instance, registered in ``care.connectors.social.registry``. It is pure
where it can be: ``verify`` and ``parse`` take the raw request (bytes, headers, query) and the
account's credentials, never the database; ``send`` and ``download`` talk to the platform's HTTP API
through the ``requests.Session`` they are given (tests mock that API at the HTTP boundary with
``responses``).

Flow (docs/social.md): ``POST /inbound/social/<platform>/<token>/`` -> account by token (404) ->
``adapter.verify`` (403, nothing stored) -> raw bytes stored (``InboundMessage``) -> ``adapter.parse``
(400 on malformed input; the stored row is marked failed and kept) -> each ``InboundSocialMessage``
becomes an interaction (threaded on the sender's open ticket of that account), each ``StatusUpdate``
moves an ``OutboundDelivery``. A ``GET`` (Meta's ``hub.challenge``, X's CRC) goes to
``adapter.handshake``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests


class SocialError(Exception):
    """Base of the errors below; ``str()`` is a message a person (the platform's developer, an
    agent) understands, and ``status`` the HTTP status a webhook answers with."""

    status = 400


class ParseError(SocialError):
    """The body is not what the platform sends (malformed JSON, missing fields): 400."""


class SignatureError(SocialError):
    """The request is not signed with the account's secret, or the handshake token is wrong: 403."""

    status = 403


class SendError(SocialError):
    """The platform refused or failed a send. ``retryable``: worth trying again later (5xx, 429,
    network); ``retry_after``: seconds the platform asked us to wait (429), if it said."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Credentials:
    """What an adapter needs of a ``SocialAccount``, decrypted. Unused fields are empty strings.

    - ``account_id``: the platform's id of the tenant's account: Facebook page id, Instagram account
      id, WhatsApp phone-number id, Telegram bot id, X user id, or any id for the generic adapter.
    - ``app_secret``: signs webhooks (Meta's ``X-Hub-Signature-256``, X's consumer secret for the
      CRC and ``X-Twitter-Webhooks-Signature``, the generic adapter's HMAC key).
    - ``verify_token``: Meta's ``hub.verify_token``; Telegram's ``secret_token`` (header
      ``X-Telegram-Bot-Api-Secret-Token``).
    - ``access_token``: sends replies and downloads media (Graph API token, bot token, X bearer).
    - ``api_base``: the platform's API root, overridable for tests and sandboxes (empty: the
      adapter's default, e.g. ``https://graph.facebook.com/v21.0``).
    """

    account_id: str
    app_secret: str = ""
    verify_token: str = ""
    access_token: str = ""
    api_base: str = ""


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request an adapter may look at. Header names are lower-case."""

    method: str
    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str]
    url: str = ""


@dataclass(frozen=True)
class HandshakeResponse:
    """What to answer a verification ``GET``: status, body and its content type."""

    status: int
    body: str
    content_type: str = "text/plain"


@dataclass(frozen=True)
class MediaRef:
    """A file attached to a message, to be downloaded later by a task (``Adapter.download``).

    ``kind``: image, video, audio, voice, document, sticker, file. Either ``media_id`` (WhatsApp,
    Telegram ``file_id``) or ``url`` (Messenger, Instagram, X) is set.
    """

    kind: str
    media_id: str = ""
    url: str = ""
    mime_type: str = ""
    filename: str = ""
    caption: str = ""
    size: int | None = None


@dataclass(frozen=True)
class InboundSocialMessage:
    """One message a customer (or, ``from_account``, the account itself: an echo) sent.

    - ``external_id``: the platform's message id (wamid, mid, Telegram ``chat_id:message_id``, X
      event id): the idempotency key. Unique per platform.
    - ``account_id``: the platform id of the receiving account (must match the account's).
    - ``sender_id``: the sender's stable handle on the platform (wa_id, PSID, IGSID, Telegram user or
      chat id, X user id); it becomes a customer identity (kind social, platform).
    - ``sender_name``: display name if the platform sends one, else "".
    - ``conversation_id``: the platform's thread (WhatsApp: the wa_id; Messenger: the PSID; Telegram:
      chat id; X: conversation id). Threading uses the sender and the account; this is kept for
      replies.
    - ``text``: the message text, a caption, a button title, or a one-line description of a
      location, contact card, reaction or unsupported message (never empty when nothing else is).
    - ``kind``: text, image, video, audio, voice, document, sticker, location, contacts, reaction,
      button, interactive, postback, unsupported, ...
    - ``data``: structured extras kept on the interaction summary (location lat/long/name/address,
      contacts, reaction target, button payload, referral...).
    """

    platform: str
    account_id: str
    external_id: str
    sender_id: str
    sender_name: str
    conversation_id: str
    occurred_at: dt.datetime
    text: str
    kind: str = "text"
    attachments: tuple[MediaRef, ...] = ()
    reply_to: str = ""
    from_account: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)


class DeliveryState:
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusUpdate:
    """The platform reports on a message Care sent: ``external_id`` is the id ``send`` returned
    (WhatsApp wamid; Messenger delivery/read carry a watermark instead: ``watermark`` set and
    ``external_id`` may be empty, meaning every message to ``recipient_id`` up to that time)."""

    platform: str
    account_id: str
    external_id: str
    state: str  # a DeliveryState value
    occurred_at: dt.datetime
    recipient_id: str = ""
    watermark: dt.datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class Parsed:
    """Everything one webhook body carried, in the order it came. ``ignored`` names what was
    recognised and deliberately not turned into anything (a follow, a typing indicator, an account
    update, a Telegram /start), for the stored message's summary."""

    messages: tuple[InboundSocialMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to send: text to the customer's handle, optionally a template (WhatsApp outside the
    24-hour window) or media by URL."""

    recipient_id: str
    text: str = ""
    conversation_id: str = ""
    template_name: str = ""
    template_language: str = ""
    template_parameters: tuple[str, ...] = ()
    media_url: str = ""
    media_kind: str = ""  # image, document, video, audio
    reply_to: str = ""


@dataclass(frozen=True)
class SendResult:
    external_id: str  # the platform's id of the sent message (for status updates)


@dataclass(frozen=True)
class Downloaded:
    content: bytes
    mime_type: str
    filename: str


class Adapter(Protocol):
    """One platform. ``platform`` is a ``care.contacts.identities.SocialPlatform`` value.

    ``reply_window``: how long after the customer's last message a free-form reply is allowed
    (WhatsApp, Messenger, Instagram: 24 hours); None: no such rule. ``rate_per_second``: the send
    rate Care keeps per account (the platform's limit with headroom).
    """

    platform: str
    reply_window: dt.timedelta | None
    rate_per_second: float

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        """Answer a verification GET (raise SignatureError on a wrong token; ParseError when the
        platform has none)."""
        ...

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        """Raise SignatureError unless the POST is authentic (constant-time compare, raw body)."""
        ...

    def parse(self, body: bytes) -> Parsed:
        """Raise ParseError for malformed input; unknown-but-valid events go to ``ignored``."""
        ...

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        """Send through the platform's HTTP API; raise SendError (retryable or not)."""
        ...

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        """Fetch an attachment's bytes; raise SendError (retryable or not) on failure."""
        ...
