"""Twilio Voice: ``X-Twilio-Signature`` verification and status callbacks as ``CallEvent``.

Signature (https://www.twilio.com/docs/usage/webhooks/webhooks-security): base64 of HMAC-SHA1,
keyed with the account's auth token, over the full URL followed by every POST parameter as
``name + value``, names sorted (a repeated name contributes its distinct values, sorted). Twilio
may sign the URL with or without the port, so both spellings are tried: the URL with any port
removed, and the URL with the scheme's default port added (an explicit port is kept as is). A JSON
body is signed with no parameters; its URL carries ``bodySHA256=<hex sha256 of the body>``, which
must match the body. Comparisons are constant-time.

Status callback ``CallStatus`` to ``CallEventKind``:

============  ====================================================================
queued        queued
initiated     offered
ringing       ringing
in-progress   answered
completed     ended, ``talk_seconds`` = ``CallDuration``
busy          rejected (the far end or all lines busy)
failed        rejected (the call could not be placed or taken)
no-answer     abandoned if the call is inbound (``wait_seconds`` unknown: None);
              ended with ``talk_seconds=0`` if outbound (the customer did not pick up)
canceled      as no-answer (an inbound caller hung up before anyone answered)
============  ====================================================================

``Direction`` "inbound" is inbound; "outbound-api" and "outbound-dial" are outbound. ``From``/``To``
become caller/dialled (E.164 or ""); ``To`` is also the ``agent_ref`` when it is a Twilio Client or
SIP identity (``client:``/``sip:``), i.e. a leg dialled to an agent. Every parameter not mapped to a
field is kept in ``extra``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit, urlunsplit

from django.utils.translation import gettext as _

from care.calls.events import (
    CallEvent,
    CallEventKind,
    Direction,
    ParseError,
    normalise_number,
    parse_int,
)

PROVIDER = "twilio"

ParamsInput = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str | Sequence[str]]]

_STATUS_KINDS: dict[str, CallEventKind] = {
    "queued": CallEventKind.QUEUED,
    "initiated": CallEventKind.OFFERED,
    "ringing": CallEventKind.RINGING,
    "in-progress": CallEventKind.ANSWERED,
    "completed": CallEventKind.ENDED,
    "busy": CallEventKind.REJECTED,
    "failed": CallEventKind.REJECTED,
    "no-answer": CallEventKind.ABANDONED,
    "canceled": CallEventKind.ABANDONED,
}
_UNANSWERED = frozenset({"no-answer", "canceled"})
_MAPPED = frozenset(
    {
        "CallSid",
        "CallStatus",
        "Timestamp",
        "SequenceNumber",
        "CallDuration",
        "From",
        "To",
        "Direction",
        "RecordingUrl",
        "Digits",
    }
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _pairs(params: ParamsInput | None) -> list[tuple[str, str]]:
    """(name, value) pairs, every value of a repeated name included.

    A Django ``QueryDict`` is a Mapping whose ``items()`` gives only the last value of a name, so
    its ``lists()`` is used instead.
    """
    if params is None:
        return []
    lists = getattr(params, "lists", None)
    items: Iterable[tuple[str, str | Sequence[str]]]
    if callable(lists):
        items = lists()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        items = params
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs.extend((name, item) for item in value)
    return pairs


def compute_signature(*, auth_token: str, url: str, params: ParamsInput | None) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for exactly this URL and these parameters."""
    values: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        values.setdefault(name, set()).add(value)
    message = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    mac = hmac.new(auth_token.encode("utf-8"), message.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _url_spellings(url: str) -> tuple[str, str]:
    """The URL without its port, and with the scheme's default port if it had none."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    if parts.port is not None:
        without = urlunsplit(parts._replace(netloc=userinfo + host.rsplit(":", 1)[0]))
        return without, url
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    with_port = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")) if default else url
    return url, with_port


def verify_signature(
    *,
    auth_token: str,
    url: str,
    params: ParamsInput | None,
    signature: str,
    body: bytes | str | None = None,
) -> bool:
    """Whether ``signature`` (the X-Twilio-Signature header) is Twilio's for this request.

    ``url`` is the full URL Twilio requested, query string included. For a form-encoded request pass
    the POST parameters as ``params`` (``request.POST`` itself, a dict, or name/value pairs); for a
    JSON request pass the raw ``body`` (``params`` is then ignored, as Twilio signs no parameters)
    and the URL must carry a matching ``bodySHA256``.
    """
    if not auth_token or not signature:
        return False
    try:
        body_hashes = parse_qs(urlsplit(url).query).get("bodySHA256")
        spellings = _url_spellings(url)
    except ValueError:  # an unparseable URL or port: not a URL Twilio could have signed
        return False
    if body is not None or body_hashes:
        if body is None or not body_hashes:
            return False
        raw = body.encode("utf-8") if isinstance(body, str) else body
        expected_hash = body_hashes[0].lower().encode("utf-8")
        if not hmac.compare_digest(hashlib.sha256(raw).hexdigest().encode("ascii"), expected_hash):
            return False
        params = None
    expected = signature.encode("utf-8")
    results = [
        hmac.compare_digest(
            compute_signature(auth_token=auth_token, url=spelling, params=params).encode("ascii"), expected
        )
        for spelling in spellings
    ]
    return any(results)


def _timestamp(params: Mapping[str, str], received_at: datetime | None) -> datetime:
    raw = params.get("Timestamp", "").strip()
    if not raw:
        if received_at is None:
            raise ParseError(_("The Twilio status callback has no Timestamp."))
        return received_at
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        moment = None
    if moment is not None and moment.tzinfo is not None:
        try:
            return moment.astimezone(UTC)  # near year 1 or 9999 this overflows: refused below
        except OverflowError:
            pass
    raise ParseError(
        _("The Twilio Timestamp %(value)r is not an RFC 2822 date with a time zone.") % {"value": raw}
    )


def parse_status_callback(
    params: Mapping[str, str], *, received_at: datetime | None = None
) -> list[CallEvent]:
    """The call events in one Twilio Voice status callback (its form-encoded POST parameters).

    Precondition: the signature was verified. ``received_at`` (aware) stands in for a missing
    ``Timestamp``. Raises ``ParseError`` for a missing ``CallSid``, an unknown ``CallStatus`` or
    malformed numbers and dates.
    """
    call_id = params.get("CallSid", "").strip()
    if not call_id:
        raise ParseError(_("The Twilio status callback has no CallSid, so it cannot be matched to a call."))
    status = params.get("CallStatus", "").strip().lower()
    kind = _STATUS_KINDS.get(status)
    if kind is None:
        raise ParseError(
            _("The Twilio call status %(status)r is not one Care knows.")
            % {"status": params.get("CallStatus", "")}
        )
    inbound = params.get("Direction", "inbound").strip() == "inbound"
    direction: Direction = "inbound" if inbound else "outbound"
    talk_seconds: int | None = None
    if kind is CallEventKind.ENDED and params.get("CallDuration", "").strip():
        talk_seconds = parse_int(params["CallDuration"], name="CallDuration")
    if status in _UNANSWERED and direction == "outbound":
        kind, talk_seconds = CallEventKind.ENDED, 0
    sequence_raw = params.get("SequenceNumber", "").strip()
    sequence = parse_int(sequence_raw, name="SequenceNumber") if sequence_raw else None
    caller_raw, dialled_raw = params.get("From", ""), params.get("To", "")
    agent_ref = dialled_raw if dialled_raw.lower().startswith(("client:", "sip:")) else ""
    extra: dict[str, object] = {name: value for name, value in params.items() if name not in _MAPPED}
    extra["CallStatus"] = params.get("CallStatus", "")
    return [
        CallEvent(
            provider=PROVIDER,
            call_id=call_id,
            kind=kind,
            occurred_at=_timestamp(params, received_at),
            sequence=sequence,
            caller=normalise_number(caller_raw),
            caller_raw=caller_raw,
            dialled=normalise_number(dialled_raw),
            dialled_raw=dialled_raw,
            agent_ref=agent_ref,
            talk_seconds=talk_seconds,
            recording_url=params.get("RecordingUrl", ""),
            ivr_digits=params.get("Digits", ""),
            direction=direction,
            extra=extra,
        )
    ]
