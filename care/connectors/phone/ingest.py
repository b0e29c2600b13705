"""Phone in: store the raw request or file first, then parse it and apply its events to calls.

``phone_receive`` is what every way in calls (the JSON events endpoint, Twilio status callbacks, the
``import_cdr`` command): it stores the bytes with the line and read options in the message's
summary. ``phone_apply`` is the processing, run by ``care.connectors.services.inbound_process``
(one transaction, the stored row locked), so a failed message can be replayed with
``inbound_retry`` once its cause is fixed (docs/phone.md).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from care.calls.events import CallEvent, ParseError
from care.calls.models import PhoneLine
from care.connectors.models import InboundMessage, InboundStatus
from care.connectors.phone import asterisk_cdr, generic, twilio
from care.connectors.services import inbound_store
from care.core.channels import Channel

# Providers of stored messages (InboundMessage.provider): the format of the bytes, not the line's PBX.
PROVIDER_GENERIC = "phone-generic"
PROVIDER_TWILIO = "twilio-voice"
PROVIDER_ASTERISK_CDR = "asterisk-cdr"
PROVIDERS = (PROVIDER_GENERIC, PROVIDER_TWILIO, PROVIDER_ASTERISK_CDR)


class PhoneInputError(ParseError):
    """Input that cannot be applied; ``str()`` is user-facing, ``status`` the HTTP status to answer."""

    status = 400


class UnknownLineError(PhoneInputError):
    status = 404


@dataclass
class PhoneResult:
    """What one stored message did: calls touched (ids, in order), events applied and repeated."""

    calls: list[int] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    def as_summary(self) -> dict[str, Any]:
        return {
            "call": self.calls[-1] if self.calls else None,
            "calls": self.calls,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rows": self.rows,
            "errors": self.errors,
        }


def phone_receive(
    *, line: PhoneLine, provider: str, raw: bytes, source: str, source_ref: str = "", **options: str
) -> tuple[InboundMessage, bool]:
    """Store ``raw`` for ``line`` (idempotent on its bytes per tenant and provider).

    ``options`` (CDR time zone and region) are kept with the line in the summary, so that a replay
    reads the bytes the same way. Returns (message, created).
    """
    message, created = inbound_store(
        tenant=line.tenant,
        channel=Channel.PHONE,
        provider=provider,
        source=source,
        raw=raw,
        source_ref=source_ref,
    )
    if created:
        message.summary = {"line": line.pk, **options}
        InboundMessage.objects.filter(pk=message.pk).update(summary=message.summary)
    return message, created


def _line_of(message: InboundMessage) -> PhoneLine:
    line_id = (message.summary or {}).get("line")
    if not isinstance(line_id, int):
        raise UnknownLineError(_("The stored phone message does not name its line."))
    line = (
        PhoneLine.objects.select_related("tenant")
        .filter(pk=line_id, tenant_id=message.tenant_id, is_active=True)
        .first()
    )
    if line is None:
        raise UnknownLineError(_("The phone line this message arrived on no longer exists or is inactive."))
    return line


class _Lines:
    """Which line an event belongs to: the number it names (dialled, or the caller if outbound),
    looked up among the active lines of the same tenant only."""

    def __init__(self, line: PhoneLine) -> None:
        self.line = line
        self.known: dict[str, PhoneLine] = {line.number: line}

    def __call__(self, event: CallEvent) -> PhoneLine:
        number = event.caller if event.direction == "outbound" else event.dialled
        if not number or number in self.known:
            return self.known.get(number, self.line)
        found = (
            PhoneLine.objects.select_related("tenant")
            .filter(tenant_id=self.line.tenant_id, number=number, is_active=True)
            .first()
        )
        if found is None:
            raise UnknownLineError(
                _("The number %(number)s is not an active phone line of this client.") % {"number": number}
            )
        self.known[number] = found
        return found


class _Fixed(_Lines):
    def __call__(self, event: CallEvent) -> PhoneLine:
        return self.line


def _apply(line_for: _Lines, events: list[CallEvent], result: PhoneResult) -> None:
    from care.calls.services import call_event_apply

    for event in events:
        applied = call_event_apply(line=line_for(event), event=event)
        if applied.call.pk not in result.calls:
            result.calls.append(applied.call.pk)
        if applied.applied:
            result.applied += 1
        else:
            result.duplicates += 1


def _cdr_records(message: InboundMessage, result: PhoneResult) -> list[asterisk_cdr.CdrRecord]:
    """Every readable row; unreadable ones are listed in ``result.errors`` with their line numbers."""
    summary = message.summary or {}
    zone_name = str(summary.get("time_zone") or message.tenant.time_zone)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise PhoneInputError(_("%(zone)r is not a known time zone name.") % {"zone": zone_name}) from error
    try:
        text = bytes(message.raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise PhoneInputError(_("The CDR file is not UTF-8 text: %(error)s") % {"error": error}) from error
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[asterisk_cdr.CdrRecord] = []
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            result.errors.append(
                _("Line %(line)d is not valid CSV: %(error)s") % {"line": line, "error": error}
            )
            break  # the reader cannot resynchronise after broken quoting
        if row:
            result.rows += 1
            try:
                # The row parser of asterisk_cdr, row by row, so that one bad row does not lose the file.
                records.append(asterisk_cdr._record(row, zone=zone, line=line))
            except ParseError as error:
                result.errors.append(str(error))
        line = reader.line_num + 1
    return records


def _apply_cdr(message: InboundMessage, line: PhoneLine, result: PhoneResult) -> None:
    region = str((message.summary or {}).get("region") or "") or None
    records = _cdr_records(message, result)
    if result.rows == 0:
        raise PhoneInputError(_("The CDR file has no rows."))
    # The command names the line: every call of the file goes to it, whatever number was dialled
    # (CDR "dst" is often an extension or a queue, not the public number).
    fixed = _Fixed(line)
    for record in asterisk_cdr.collapse_parallel_calls(records):
        try:
            events = asterisk_cdr.to_call_events(record, region=region)
            with transaction.atomic():  # a call that cannot be applied is reported, the others kept
                _apply(fixed, events, result)
        except ParseError as error:
            result.errors.append(str(error))
        except ValidationError as error:
            result.errors.append(
                _("Line %(line)d: %(error)s") % {"line": record.line, "error": "; ".join(error.messages)}
            )


def phone_apply(message: InboundMessage) -> None:
    """Parse a stored phone message and apply its events (the handler of ``inbound_process``).

    Precondition: the message row is locked and a transaction is open. Raises ``PhoneInputError``
    (rolled back, message marked failed) for bad input or a number that is no line of the tenant.
    """
    line = _line_of(message)
    result = PhoneResult()
    if message.provider == PROVIDER_ASTERISK_CDR:
        _apply_cdr(message, line, result)
    else:
        try:
            events = _parse(message)
        except PhoneInputError:
            raise
        except ParseError as error:
            raise PhoneInputError(str(error)) from error
        result.rows = len(events)
        try:
            _apply(_Lines(line), events, result)
        except ValidationError as error:  # a value the call records refuse (e.g. an invalid number)
            raise PhoneInputError("; ".join(error.messages)) from error
    message.summary = {**(message.summary or {}), **result.as_summary()}
    message.outcome = "applied" if result.applied else "duplicate"


def _parse(message: InboundMessage) -> list[CallEvent]:
    raw = bytes(message.raw)
    if message.provider == PROVIDER_TWILIO:
        try:
            params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as error:
            raise PhoneInputError(_("The Twilio callback is not UTF-8 form data.")) from error
        return twilio.parse_status_callback(params, received_at=message.received_at)
    return generic.parse_events(raw)


def phone_reapply(*, message: InboundMessage) -> InboundMessage:
    """Apply an already processed message again (``import_cdr --force``); changes nothing new,
    as every event is recognised by its id. The result replaces the stored summary."""
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().select_related("tenant").get(pk=message.pk)
        phone_apply(locked)
        locked.status = InboundStatus.PROCESSED
        locked.error = ""
        locked.processed_at = timezone.now()
        locked.save(update_fields=["status", "error", "processed_at", "summary", "outcome", "updated_at"])
    return locked
