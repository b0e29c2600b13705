"""X (Twitter) direct messages: Account Activity webhooks in, API v2 DMs out.

Webhook (https://docs.x.com/x-api/enterprise-gnip-2.0/fundamentals/account-activity). X checks the
endpoint with a CRC: ``GET ?crc_token=...`` answered with ``{"response_token": "sha256=" +
base64(HMAC-SHA256(consumer secret, crc_token))}``, at registration and about hourly after. Each
POST carries ``X-Twitter-Webhooks-Signature: sha256=<base64 HMAC-SHA256(consumer secret, raw
body)>``. The consumer secret is the account's ``app_secret``; comparisons are constant-time.

Events (one body may carry several, for the subscribed user ``for_user_id``, the account id):

- ``direct_message_events`` of type ``message_create``: one message each, external id the event
  id. A DM the account itself sent (from the X app, or Care's own reply echoed back) is imported
  with ``from_account=True`` and ``sender_id`` = the recipient, i.e. always the customer: the
  conversation is identified by the customer. ``t.co`` links are replaced by their
  ``expanded_url`` (as Zammad does); the link X adds for an attached photo or GIF is removed from
  the text, the media becomes an attachment instead (``media_url_https``, the JPEG; for a video or
  GIF ``data["video_url"]`` names the best MP4 variant). ``conversation_id`` is X's one-to-one
  ``dm_conversation_id``: the two user ids, numerically sorted, joined by "-" (what API v2 returns).
- ``tweet_create_events``: a public tweet by someone else that mentions or replies to the account
  becomes a message of kind ``mention`` (the full text of an extended tweet, links expanded,
  photos attached), external id the tweet id (tweet and DM ids are snowflakes from one sequence,
  so they do not collide). ``data`` has ``public: True`` and the tweet ids; replies still go out as
  DMs (Care sends no public tweets), which the customer may not accept. A reply the account tweeted
  to a customer is imported ``from_account``. Retweets, the account's other own tweets, and
  mentions of itself are ignored.
- ``direct_message_mark_read_events``: the customer read the conversation up to
  ``last_read_event_id``: a READ ``StatusUpdate`` for that event id (best effort: it moves the
  delivery only when that id is one Care sent; X reports no per-message delivery).
- typing indicators, favourites, follows, blocks, mutes, tweet deletions, app revocations and
  unknown keys: ignored, named in ``ignored``.

Reply rules: X has no reply window; a DM is only accepted when the customer allows DMs from the
account (follows it, or has open DMs) and has not blocked it; X answers 403 otherwise, which Care
reports to the agent as final. Sending: ``POST /2/dm_conversations/with/<recipient>/messages``
``{"text"}`` with the bearer token (a user-context OAuth 2.0 token with ``dm.write``). API v2
attaches media only by an uploaded ``media_id``: a media URL is sent as a link in the text. Limits:
about 200 DM sends per 15 minutes per user and 1,000 a day, so Care keeps 0.2 a second. 429 is
retryable at ``x-rate-limit-reset``; 5xx and network errors are retryable; other refusals are
final with X's ``detail``.

Downloads: the media URL with the bearer token (DM media on ``ton.twitter.com`` needs the
user-context token), capped at 25 MB.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import mimetypes
import posixpath
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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
from care.connectors.social.http import read_capped
from care.connectors.social.values import header, mapping, platform_id
from care.connectors.social.values import text as text_of

X_API = "https://api.x.com/2"
TIMEOUT = 10
MAX_DOWNLOAD = 25 * 1024 * 1024
MAX_TEXT = 10_000
SIGNATURE_HEADER = "x-twitter-webhooks-signature"

_IGNORED_EVENTS = (
    "direct_message_indicate_typing_events",
    "favorite_events",
    "follow_events",
    "block_events",
    "mute_events",
    "tweet_delete_events",
    "user_event",
)


class XAdapter:
    platform = "x"
    reply_window: dt.timedelta | None = None
    rate_per_second = 0.2

    # -- webhook -------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: Credentials) -> HandshakeResponse:
        if not credentials.app_secret:
            raise SignatureError(_("This X account has no consumer secret to answer the CRC check."))
        crc_token = request.query.get("crc_token", "")
        if not crc_token:
            raise ParseError(_("The CRC check needs a crc_token parameter."))
        body = json.dumps({"response_token": _sign(credentials.app_secret, crc_token.encode())})
        return HandshakeResponse(status=200, body=body, content_type="application/json")

    def verify(self, request: WebhookRequest, credentials: Credentials) -> None:
        if not credentials.app_secret:
            raise SignatureError(_("This X account has no consumer secret to check signatures with."))
        given = header(request.headers, SIGNATURE_HEADER)
        if not given:
            raise SignatureError(_("The X-Twitter-Webhooks-Signature header is missing."))
        expected = _sign(credentials.app_secret, request.body)
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise SignatureError(_("The X-Twitter-Webhooks-Signature header does not match."))

    def parse(self, body: bytes) -> Parsed:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ParseError(_("The body is not JSON.")) from exc
        if not isinstance(payload, dict):
            raise ParseError(_("An Account Activity event is a JSON object."))
        account_id = platform_id(payload.get("for_user_id"))
        if account_id is None:
            raise ParseError(_("An Account Activity event names the subscribed user in for_user_id."))
        users = mapping(payload.get("users"))

        messages: list[InboundSocialMessage] = []
        statuses: list[StatusUpdate] = []
        ignored: list[str] = []
        for event in _events(payload, "direct_message_events"):
            message = _direct_message(event, account_id, users)
            if message is None:
                ignored.append(f"direct message event {text_of(event.get('type')) or 'without type'}")
            else:
                messages.append(message)
        for event in _events(payload, "tweet_create_events"):
            message, why = _tweet(event, account_id)
            if message is None:
                ignored.append(why)
            else:
                messages.append(message)
        for event in _events(payload, "direct_message_mark_read_events"):
            status = _mark_read(event, account_id)
            if status is None:
                ignored.append("direct_message_mark_read_events (by the account)")
            else:
                statuses.append(status)
        for key in _IGNORED_EVENTS:
            if key in payload:
                ignored.append(key)
        handled = {
            "for_user_id",
            "users",
            "apps",
            "user_has_blocked",
            "source",
            "direct_message_events",
            "tweet_create_events",
            "direct_message_mark_read_events",
            *_IGNORED_EVENTS,
        }
        ignored.extend(
            sorted(str(key) for key in payload if key not in handled and str(key).endswith("_events"))
        )
        return Parsed(messages=tuple(messages), statuses=tuple(statuses), ignored=tuple(ignored))

    # -- replies -------------------------------------------------------------------------------

    def send(
        self, session: requests.Session, credentials: Credentials, message: OutboundMessage
    ) -> SendResult:
        recipient = message.recipient_id
        if not recipient:
            raise SendError(_("The X reply has no recipient."), retryable=False)
        if not credentials.access_token:
            raise SendError(_("This X account has no access token."), retryable=False)
        text = message.text.strip()
        if message.media_url:
            # API v2 attaches media only by an uploaded media_id; the URL goes out as a link.
            text = f"{text}\n{message.media_url}" if text else message.media_url
        if not text:
            raise SendError(_("The X reply is empty."), retryable=False)
        if len(text) > MAX_TEXT:
            raise SendError(
                _("An X direct message is limited to %(limit)d characters.") % {"limit": MAX_TEXT},
                retryable=False,
            )
        url = f"{_base(credentials)}/dm_conversations/with/{recipient}/messages"
        try:
            response = session.post(
                url,
                json={"text": text},
                headers={"Authorization": f"Bearer {credentials.access_token}"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise SendError(
                _("X could not be reached (%(error)s).") % {"error": type(exc).__name__}, retryable=True
            ) from None
        answer = _json(response)
        if response.status_code in (200, 201):
            data = mapping(answer.get("data"))
            event_id = platform_id(data.get("dm_event_id"))
            if event_id is None:
                raise SendError(
                    _("X accepted the message but did not return its id: %(detail)s")
                    % {"detail": _problem(answer) or response.text[:200]},
                    retryable=False,
                )
            return SendResult(external_id=event_id)
        raise _failure(response, answer, credentials.access_token)

    def download(self, session: requests.Session, credentials: Credentials, media: MediaRef) -> Downloaded:
        if not media.url:
            raise SendError(_("The X attachment has no URL."), retryable=False)
        if media.size is not None and media.size > MAX_DOWNLOAD:
            raise SendError(_("The X file is larger than 25 MB."), retryable=False)
        headers = {"Authorization": f"Bearer {credentials.access_token}"} if credentials.access_token else {}
        try:
            with session.get(media.url, headers=headers, timeout=TIMEOUT, stream=True) as response:
                if response.status_code != 200:
                    raise _failure(response, {}, credentials.access_token)
                content = read_capped(response, MAX_DOWNLOAD, too_large=_("The X file is larger than 25 MB."))
                header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        except requests.RequestException as exc:
            raise SendError(
                _("X could not be reached (%(error)s).") % {"error": type(exc).__name__}, retryable=True
            ) from None
        path = urlsplit(media.url).path
        mime_type = (
            media.mime_type
            or (header_type if header_type and header_type != "application/octet-stream" else "")
            or mimetypes.guess_type(path)[0]
            or "application/octet-stream"
        )
        return Downloaded(
            content=content, mime_type=mime_type, filename=media.filename or posixpath.basename(path)
        )


ADAPTER = XAdapter()


# -- signatures --------------------------------------------------------------------------------


def _sign(secret: str, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


# -- parsing helpers ---------------------------------------------------------------------------


def _events(payload: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    if key not in payload:
        return []
    events = payload[key]
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise ParseError(_("%(key)s is a list of event objects.") % {"key": key})
    return events


def _millis(value: Any, what: str) -> dt.datetime:
    """X's millisecond timestamps, sent as strings (or numbers in older events)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int | float):
        raise ParseError(_("The X %(what)s has no timestamp.") % {"what": what})
    try:
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ParseError(_("The X %(what)s has an impossible timestamp.") % {"what": what}) from exc


def _conversation(first: str, second: str) -> str:
    """X's one-to-one ``dm_conversation_id``: both user ids, numerically sorted."""
    pair = sorted((first, second), key=lambda value: (len(value), value) if value.isdigit() else (0, value))
    return "-".join(pair)


def _expand(text: str, entities: Any, drop: frozenset[str] = frozenset()) -> str:
    """Replace each ``t.co`` link by its ``expanded_url``; links in ``drop`` (the media link) go."""
    if not isinstance(entities, dict) or not isinstance(entities.get("urls"), list):
        urls: list[Any] = []
    else:
        urls = entities["urls"]
    for link in urls:
        if not isinstance(link, dict):
            continue
        short, expanded = text_of(link.get("url")), text_of(link.get("expanded_url"))
        if short and expanded and short not in drop:
            text = text.replace(short, expanded)
    for short in drop:
        text = text.replace(short, "")
    return text.strip()


def _media_refs(items: Any) -> tuple[tuple[MediaRef, ...], frozenset[str], dict[str, Any]]:
    """Attachments of a DM or tweet, the ``t.co`` links that stand for them, and extras."""
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return (), frozenset(), {}
    refs: list[MediaRef] = []
    links: set[str] = set()
    data: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        url = text_of(item.get("media_url_https")) or text_of(item.get("media_url"))
        if not url:
            continue
        if text_of(item.get("url")):
            links.add(item["url"])
        media_type = text_of(item.get("type")) or "photo"
        name = posixpath.basename(urlsplit(url).path)
        refs.append(
            MediaRef(
                kind="image",
                url=url,
                mime_type=mimetypes.guess_type(name)[0] or "image/jpeg",
                filename=name,
            )
        )
        if media_type in ("video", "animated_gif"):
            video = _best_variant(item.get("video_info"))
            if video:
                data.setdefault("video_url", video)
    return tuple(refs), frozenset(links), data


def _best_variant(info: Any) -> str:
    if not isinstance(info, dict) or not isinstance(info.get("variants"), list):
        return ""
    mp4 = [
        variant
        for variant in info["variants"]
        if isinstance(variant, dict)
        and variant.get("content_type") == "video/mp4"
        and text_of(variant.get("url"))
    ]
    if not mp4:
        return ""

    def bitrate(variant: Mapping[str, Any]) -> int:
        value = variant.get("bitrate")
        return value if isinstance(value, int) else 0

    return text_of(max(mp4, key=bitrate)["url"])


def _user(users: Mapping[str, Any], user_id: str) -> tuple[str, str]:
    user = users.get(user_id)
    if not isinstance(user, dict):
        return "", ""
    return text_of(user.get("name")), text_of(user.get("screen_name"))


def _direct_message(
    event: Mapping[str, Any], account_id: str, users: Mapping[str, Any]
) -> InboundSocialMessage | None:
    if event.get("type") != "message_create":
        return None
    event_id = platform_id(event.get("id"))
    create = event.get("message_create")
    if event_id is None or not isinstance(create, dict):
        raise ParseError(_("A direct message event needs an id and message_create."))
    sender = platform_id(create.get("sender_id"))
    target = create.get("target")
    recipient = platform_id(target.get("recipient_id")) if isinstance(target, dict) else None
    if sender is None or recipient is None:
        raise ParseError(_("A direct message needs a sender_id and a target recipient_id."))
    data_in = mapping(create.get("message_data"))
    attachment = data_in.get("attachment")
    media = attachment.get("media") if isinstance(attachment, dict) else None
    attachments, media_links, data = _media_refs(media)
    text = _expand(text_of(data_in.get("text")), data_in.get("entities"), media_links)

    from_account = sender == account_id and recipient != account_id
    customer = recipient if from_account else sender
    name, screen_name = _user(users, customer)
    if screen_name:
        data["screen_name"] = screen_name
    if from_account and platform_id(create.get("source_app_id")):
        data["source_app_id"] = platform_id(create.get("source_app_id"))
    quick_reply = data_in.get("quick_reply_response")
    kind = "image" if attachments else "text"
    if isinstance(quick_reply, dict) and text_of(quick_reply.get("metadata")):
        kind = "button"
        data["payload"] = quick_reply["metadata"]
    return InboundSocialMessage(
        platform="x",
        account_id=account_id,
        external_id=event_id,
        sender_id=customer,
        sender_name=name,
        conversation_id=_conversation(sender, recipient),
        occurred_at=_millis(event.get("created_timestamp"), "direct message"),
        text=text,
        kind=kind,
        attachments=attachments,
        from_account=from_account,
        data=data,
    )


def _tweet(event: Mapping[str, Any], account_id: str) -> tuple[InboundSocialMessage | None, str]:
    tweet_id = platform_id(event.get("id_str")) or platform_id(event.get("id"))
    author = event.get("user")
    author_id = (
        (platform_id(author.get("id_str")) or platform_id(author.get("id")))
        if isinstance(author, dict)
        else None
    )
    if tweet_id is None or author_id is None or not isinstance(author, dict):
        raise ParseError(_("A tweet event needs an id and a user."))
    if "retweeted_status" in event and event["retweeted_status"] is not None:
        return None, "tweet_create_events (retweet)"
    in_reply_to = platform_id(event.get("in_reply_to_user_id_str")) or platform_id(
        event.get("in_reply_to_user_id")
    )
    extended = event.get("extended_tweet") if isinstance(event.get("extended_tweet"), dict) else None
    source = extended or event
    entities = source.get("entities")
    mentioned = set()
    if isinstance(entities, dict) and isinstance(entities.get("user_mentions"), list):
        mentioned = {
            platform_id(mention.get("id_str")) or platform_id(mention.get("id"))
            for mention in entities["user_mentions"]
            if isinstance(mention, dict)
        }

    if author_id == account_id:
        if not in_reply_to or in_reply_to == account_id:
            return None, "tweet_create_events (the account's own tweet)"
        customer, from_account = in_reply_to, True
        name, screen_name = "", text_of(event.get("in_reply_to_screen_name"))
    else:
        if account_id not in mentioned and in_reply_to != account_id:
            return None, "tweet_create_events (not addressed to the account)"
        customer, from_account = author_id, False
        name, screen_name = text_of(author.get("name")), text_of(author.get("screen_name"))

    extended_entities = source.get("extended_entities") or event.get("extended_entities")
    media = extended_entities.get("media") if isinstance(extended_entities, dict) else None
    if media is None and isinstance(entities, dict):
        media = entities.get("media")
    attachments, media_links, data = _media_refs(media)
    text = text_of(source.get("full_text")) or text_of(event.get("text"))
    text = _expand(text, entities, media_links)
    data.update({"public": True, "tweet_id": tweet_id})
    if screen_name:
        data["screen_name"] = screen_name
    in_reply_to_status = platform_id(event.get("in_reply_to_status_id_str")) or platform_id(
        event.get("in_reply_to_status_id")
    )
    if in_reply_to_status:
        data["in_reply_to_status_id"] = in_reply_to_status
    return (
        InboundSocialMessage(
            platform="x",
            account_id=account_id,
            external_id=tweet_id,
            sender_id=customer,
            sender_name=name,
            conversation_id=_conversation(account_id, customer),
            occurred_at=_millis(event.get("timestamp_ms"), "tweet"),
            text=text,
            kind="mention",
            attachments=attachments,
            reply_to=in_reply_to_status or "",
            from_account=from_account,
            data=data,
        ),
        "",
    )


def _mark_read(event: Mapping[str, Any], account_id: str) -> StatusUpdate | None:
    reader = platform_id(event.get("sender_id"))
    last_read = platform_id(event.get("last_read_event_id"))
    if reader is None or last_read is None:
        raise ParseError(_("A mark-read event needs a sender_id and a last_read_event_id."))
    if reader == account_id:
        return None
    return StatusUpdate(
        platform="x",
        account_id=account_id,
        external_id=last_read,
        state=DeliveryState.READ,
        occurred_at=_millis(event.get("created_timestamp"), "mark-read event"),
        recipient_id=reader,
    )


# -- HTTP helpers ------------------------------------------------------------------------------


def _base(credentials: Credentials) -> str:
    return (credentials.api_base or X_API).rstrip("/")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _problem(answer: Mapping[str, Any]) -> str:
    """X's explanation: a problem document's ``detail``/``title``, or the first ``errors`` entry."""
    for key in ("detail", "title"):
        if text_of(answer.get(key)):
            return text_of(answer[key])
    errors = answer.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                text = (
                    text_of(error.get("detail"))
                    or text_of(error.get("message"))
                    or text_of(error.get("title"))
                )
                if text:
                    return text
    return ""


def _failure(response: requests.Response, answer: Mapping[str, Any], token: str) -> SendError:
    status = response.status_code
    detail = _problem(answer or _json(response)) or f"HTTP {status}"
    if token:
        detail = detail.replace(token, "<token>")
    if status == 429:
        retry_after: float | None = None
        reset = response.headers.get("x-rate-limit-reset", "")
        if reset.isdigit():
            retry_after = max(0.0, int(reset) - time.time())
        else:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        return SendError(
            _("X asked to slow down: %(detail)s") % {"detail": detail},
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500:
        return SendError(_("X failed: %(detail)s") % {"detail": detail}, retryable=True)
    return SendError(_("X refused: %(detail)s") % {"detail": detail}, retryable=False)
