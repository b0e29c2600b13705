"""Care's own JSON call events (the schema in docs/phone.md) as ``CallEvent``.

A request body is one event object or a non-empty list of them::

    {"call_id": "c-1", "event": "answered", "at": "2025-03-03T09:00:12+01:00", "sequence": 3,
     "caller": "+4930123456", "dialled": "+4940999000", "agent": "201", "ivr": "1",
     "wait_seconds": 12, "talk_seconds": null, "hold_seconds": null, "wrapup_seconds": null,
     "recording_url": "",
     "direction": "inbound"}

Only ``call_id``, ``event`` and ``at`` are required. ``at`` must carry its UTC offset: a time
without one is refused rather than guessed. Unknown keys are kept in ``CallEvent.extra``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.utils.translation import gettext as _

from care.calls.events import CallEvent, CallEventKind, Direction, ParseError, normalise_number

PROVIDER = "generic"
MAX_EVENTS = 500
MAX_CALL_ID = 200  # Call.external_id
_KNOWN = frozenset(
    {
        "call_id",
        "event",
        "at",
        "sequence",
        "caller",
        "dialled",
        "agent",
        "ivr",
        "wait_seconds",
        "talk_seconds",
        "hold_seconds",
        "wrapup_seconds",
        "recording_url",
        "direction",
    }
)
_KINDS = ", ".join(kind.value for kind in CallEventKind)


def _text(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(_("%(where)s: %(name)s must be a string.") % {"where": where, "name": name})
    return str(value).strip()


def _seconds(item: dict[str, Any], name: str, where: str) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParseError(
            _("%(where)s: %(name)s must be a whole number of seconds (0 or more), not %(value)s.")
            % {"where": where, "name": name, "value": json.dumps(value)}
        )
    seconds: int = value
    return seconds


def _moment(item: dict[str, Any], where: str) -> datetime:
    raw = item.get("at")
    if not isinstance(raw, str) or not raw.strip():
        raise ParseError(
            _('%(where)s: "at" (the time of the event, ISO 8601) is missing.') % {"where": where}
        )
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError as error:
        raise ParseError(
            _('%(where)s: "at" %(value)s is not an ISO 8601 time such as 2025-03-03T09:00:12+01:00.')
            % {"where": where, "value": json.dumps(raw)}
        ) from error
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ParseError(
            _('%(where)s: "at" %(value)s has no UTC offset; add one (e.g. +01:00 or Z).')
            % {"where": where, "value": json.dumps(raw)}
        )
    try:
        # In UTC now: a time near year 1 or 9999 cannot be moved to UTC (OverflowError otherwise).
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise ParseError(
            _('%(where)s: "at" %(value)s is out of range.') % {"where": where, "value": json.dumps(raw)}
        ) from error


def _event(item: object, where: str) -> CallEvent:
    if not isinstance(item, dict):
        raise ParseError(_("%(where)s must be a JSON object.") % {"where": where})
    call_id = _text(item, "call_id", where)
    if not call_id:
        raise ParseError(_('%(where)s: "call_id" is missing or empty.') % {"where": where})
    if len(call_id) > MAX_CALL_ID:
        # Cut short, two different calls could become one.
        raise ParseError(
            _('%(where)s: "call_id" is longer than %(limit)d characters.')
            % {"where": where, "limit": MAX_CALL_ID}
        )
    kind_raw = _text(item, "event", where).lower()
    if kind_raw not in CallEventKind.__members__.values():
        raise ParseError(
            _("%(where)s: the event %(value)s is not one Care knows (use one of: %(kinds)s).")
            % {"where": where, "value": json.dumps(item.get("event")), "kinds": _KINDS}
        )
    direction_raw = _text(item, "direction", where).lower() or "inbound"
    if direction_raw not in ("inbound", "outbound"):
        raise ParseError(_('%(where)s: "direction" must be "inbound" or "outbound".') % {"where": where})
    direction: Direction = "inbound" if direction_raw == "inbound" else "outbound"
    sequence = item.get("sequence")
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0):
        raise ParseError(_('%(where)s: "sequence" must be a whole number (0 or more).') % {"where": where})
    ivr = _text(item, "ivr", where)
    if ivr and not all(ch.isdigit() or ch in "*#" for ch in ivr):
        raise ParseError(_('%(where)s: "ivr" must be the digits pressed (0-9, * and #).') % {"where": where})
    recording_url = _text(item, "recording_url", where)
    if recording_url and not recording_url.lower().startswith(("https://", "http://")):
        raise ParseError(_('%(where)s: "recording_url" must be an http(s) URL.') % {"where": where})
    caller_raw, dialled_raw = _text(item, "caller", where), _text(item, "dialled", where)
    return CallEvent(
        provider=PROVIDER,
        call_id=call_id,
        kind=CallEventKind(kind_raw),
        occurred_at=_moment(item, where),
        sequence=sequence,
        caller=normalise_number(caller_raw),
        caller_raw=caller_raw,
        dialled=normalise_number(dialled_raw),
        dialled_raw=dialled_raw,
        agent_ref=_text(item, "agent", where),
        talk_seconds=_seconds(item, "talk_seconds", where),
        hold_seconds=_seconds(item, "hold_seconds", where),
        wait_seconds=_seconds(item, "wait_seconds", where),
        wrapup_seconds=_seconds(item, "wrapup_seconds", where),
        recording_url=recording_url,
        ivr_digits=ivr,
        direction=direction,
        extra={key: value for key, value in item.items() if key not in _KNOWN},
    )


def parse_events(body: bytes | str) -> list[CallEvent]:
    """The events of one request body (an event object or a list of them).

    Raises ``ParseError`` (its text names the event and field) for anything but valid events.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ParseError(_("The body is not valid JSON: %(error)s") % {"error": error}) from error
    except RecursionError as error:  # arrays nested thousands deep: no event looks like that
        raise ParseError(_("The body is nested too deeply to be call events.")) from error
    if isinstance(document, dict):
        return [_event(document, _("The event"))]
    if not isinstance(document, list):
        raise ParseError(_("The body must be a JSON object (one event) or a list of events."))
    if not document:
        raise ParseError(_("The list of events is empty."))
    if len(document) > MAX_EVENTS:
        raise ParseError(_("Send at most %(limit)d events in one request.") % {"limit": MAX_EVENTS})
    return [
        _event(item, _("Event %(number)d") % {"number": number}) for number, item in enumerate(document, 1)
    ]
