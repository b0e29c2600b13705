"""Asterisk ``cdr_csv`` call detail records (Master.csv): parse, re-export, collapse, map to events.

Master.csv has no header and 18 columns per call leg: accountcode, src, dst, dcontext, clid,
channel, dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition,
amaflags, uniqueid, userfield. Times are the PBX's local wall-clock time ("YYYY-MM-DD HH:MM:SS",
answer empty when the leg was not answered); the caller names the PBX's time zone and we store
aware UTC. A wall-clock time that falls in a daylight-saving gap cannot have been shown by a clock
in that zone, so it is refused (the zone given is wrong); an ambiguous one (the repeated hour in
autumn) is read as its first occurrence.

``write_rows`` re-exports in Asterisk's own quoting (every field quoted except duration and
billsec), so a parsed file writes back byte for byte. ``collapse_parallel_calls`` implements
"one phone call = one record" for a Dial() that rang several extensions at once. ``to_call_events``
turns one (collapsed) record into ``CallEvent`` values.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

from care.calls.events import CallEvent, CallEventKind, ParseError, normalise_number

PROVIDER = "asterisk"
COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECONDS = re.compile(r"[0-9]+")
_UNQUOTED = frozenset({"duration", "billsec"})
# Legs of one Dial(A&B) share the uniqueid's sequence and start within a moment of each other; a
# transferred call keeps the sequence but starts later (upstream normalize.go uses the same 2 s).
_PARALLEL_WINDOW = 2
_NO_CHANNEL = frozenset({"", "NOT_AVAILABLE"})
_EXTRA = (
    "accountcode",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "disposition",
    "amaflags",
    "userfield",
    "duration",
    "billsec",
)
_ENDINGS = {
    "NO ANSWER": CallEventKind.ABANDONED,
    "BUSY": CallEventKind.REJECTED,
    "FAILED": CallEventKind.REJECTED,
    "CONGESTION": CallEventKind.REJECTED,
}


@dataclass(frozen=True)
class CdrRecord:
    """One Master.csv row. Times are aware UTC; ``time_zone`` is the PBX zone they were read in."""

    accountcode: str
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    disposition: str
    amaflags: str
    uniqueid: str
    userfield: str
    time_zone: str
    # Provenance, not content: left out of equality so that a record written and read back is equal.
    raw: tuple[str, ...] = field(default=(), compare=False)
    line: int = field(default=0, compare=False)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ParseError(_("%(zone)r is not a known time zone name.") % {"zone": name}) from error


def _local_time(text: str, *, zone: ZoneInfo, column: str, line: int) -> datetime:
    if not _TIME_SHAPE.fullmatch(text):
        raise ParseError(
            _("Line %(line)d: the %(column)s time %(value)r is not in the form YYYY-MM-DD HH:MM:SS.")
            % {"line": line, "column": column, "value": text}
        )
    try:
        naive = datetime.strptime(text, _TIME_FORMAT)  # noqa: DTZ007 -- wall-clock time, zone set below
    except ValueError as error:
        raise ParseError(
            _("Line %(line)d: the %(column)s time %(value)r is not a real date.")
            % {"line": line, "column": column, "value": text}
        ) from error
    local = naive.replace(tzinfo=zone)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != naive:
        raise ParseError(
            _(
                "Line %(line)d: the %(column)s time %(value)r does not exist in the time zone %(zone)s "
                "(it falls in a daylight-saving change); check the time zone given for this PBX."
            )
            % {"line": line, "column": column, "value": text, "zone": zone.key}
        )
    return moment


def _seconds(text: str, *, column: str, line: int) -> int:
    if not _SECONDS.fullmatch(text):
        raise ParseError(
            _("Line %(line)d: %(column)s must be a whole number of seconds, not %(value)r.")
            % {"line": line, "column": column, "value": text}
        )
    return int(text)


def _record(row: list[str], *, zone: ZoneInfo, line: int) -> CdrRecord:
    if len(row) != len(COLUMNS):
        raise ParseError(
            _("Line %(line)d has %(count)d columns; an Asterisk CDR line has %(expected)d.")
            % {"line": line, "count": len(row), "expected": len(COLUMNS)}
        )
    value = dict(zip(COLUMNS, row, strict=True))
    answer = value["answer"]
    return CdrRecord(
        accountcode=value["accountcode"],
        src=value["src"],
        dst=value["dst"],
        dcontext=value["dcontext"],
        clid=value["clid"],
        channel=value["channel"],
        dstchannel=value["dstchannel"],
        lastapp=value["lastapp"],
        lastdata=value["lastdata"],
        start=_local_time(value["start"], zone=zone, column="start", line=line),
        answer=_local_time(answer, zone=zone, column="answer", line=line) if answer else None,
        end=_local_time(value["end"], zone=zone, column="end", line=line),
        duration=_seconds(value["duration"], column="duration", line=line),
        billsec=_seconds(value["billsec"], column="billsec", line=line),
        disposition=value["disposition"],
        amaflags=value["amaflags"],
        uniqueid=value["uniqueid"],
        userfield=value["userfield"],
        time_zone=zone.key,
        raw=tuple(row),
        line=line,
    )


def parse_rows(text: str, *, tz: str) -> list[CdrRecord]:
    """Every record in a Master.csv text; ``tz`` is the PBX's IANA time zone name.

    Blank lines are skipped. Raises ``ParseError`` naming the (first physical) line of the first
    malformed record: wrong column count, broken quoting, a bad time or number.
    """
    zone = _zone(tz)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[CdrRecord] = []
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return records
        except csv.Error as error:
            raise ParseError(
                _("Line %(line)d is not valid CSV: %(error)s") % {"line": line, "error": error}
            ) from error
        if row:
            records.append(_record(row, zone=zone, line=line))
        line = reader.line_num + 1


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _cell(record: CdrRecord, column: str) -> str:
    value = getattr(record, column)
    if column in _UNQUOTED:
        return str(value)
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(record.time_zone)).strftime(_TIME_FORMAT)
    return _quoted("" if value is None else str(value))


def write_rows(records: Iterable[CdrRecord]) -> str:
    """Master.csv text for ``records``, quoted the way Asterisk's cdr_csv writes it ("\\n" ends lines)."""
    return "".join(",".join(_cell(record, column) for column in COLUMNS) + "\n" for record in records)


def _uniqueid_parts(uniqueid: str) -> tuple[int | None, str]:
    """(epoch seconds or None, sequence) of an Asterisk uniqueid such as "1498571580.45"."""
    epoch, dot, sequence = uniqueid.rpartition(".")
    if not dot:
        return None, uniqueid
    return (int(epoch) if _SECONDS.fullmatch(epoch) else None), sequence


def _parallel(first: CdrRecord, other: CdrRecord) -> bool:
    epoch_a, sequence_a = _uniqueid_parts(first.uniqueid)
    epoch_b, sequence_b = _uniqueid_parts(other.uniqueid)
    if sequence_a != sequence_b or (epoch_a is None) != (epoch_b is None):
        return False
    if epoch_a is not None and epoch_b is not None and abs(epoch_a - epoch_b) > _PARALLEL_WINDOW:
        return False
    return abs((other.start - first.start).total_seconds()) <= _PARALLEL_WINDOW


def _representative(legs: Sequence[CdrRecord]) -> CdrRecord:
    """The answered leg if any, else the last busy one, else the first."""
    chosen = legs[0]
    for leg in legs:
        if leg.disposition == "ANSWERED":
            return leg
        if leg.disposition == "BUSY":
            chosen = leg
    return chosen


def collapse_parallel_calls(records: Sequence[CdrRecord]) -> list[CdrRecord]:
    """One record per call: the legs of a Dial() that rang several extensions become one.

    Legs are parallel when their uniqueids share the sequence number (after the dot), the epoch
    parts are at most 2 s apart and they start at most 2 s apart (a transferred call shares the
    uniqueid but starts later, and is kept). Of each group the answered leg is kept, else the last
    busy one, else the first. The kept records stay in input order.
    """
    groups: dict[str, list[list[int]]] = {}
    for index, record in enumerate(records):
        clusters = groups.setdefault(_uniqueid_parts(record.uniqueid)[1], [])
        for cluster in clusters:
            if _parallel(records[cluster[0]], record):
                cluster.append(index)
                break
        else:
            clusters.append([index])
    kept: list[int] = []
    for clusters in groups.values():
        for cluster in clusters:
            chosen = _representative([records[index] for index in cluster])
            kept.append(next(index for index in cluster if records[index] is chosen))
    return [records[index] for index in sorted(kept)]


def to_call_events(record: CdrRecord, *, region: str | None = None) -> list[CallEvent]:
    """The events of one call leg: offered at start, then answered and ended, or how it failed.

    Precondition: parallel legs were collapsed (``collapse_parallel_calls``), otherwise the
    unanswered legs of an answered call read as abandoned. ``region`` (ISO 3166, e.g. "US") reads
    national-format numbers. The agent is ``dstchannel`` when the PBX recorded one, else ``dst``.
    Raises ``ParseError`` for a disposition Care does not know.
    """
    disposition = record.disposition.strip().upper()
    if disposition != "ANSWERED" and disposition not in _ENDINGS:
        raise ParseError(
            _("Line %(line)d: the disposition %(value)r is not one Care knows.")
            % {"line": record.line, "value": record.disposition}
        )
    if not record.uniqueid.strip():
        raise ParseError(
            _("Line %(line)d has no uniqueid, so it cannot be matched to a call.") % {"line": record.line}
        )
    agent = record.dst if record.dstchannel in _NO_CHANNEL else record.dstchannel
    offered = CallEvent(
        provider=PROVIDER,
        call_id=record.uniqueid,
        kind=CallEventKind.OFFERED,
        occurred_at=record.start,
        caller=normalise_number(record.src, default_region=region),
        caller_raw=record.src,
        dialled=normalise_number(record.dst, default_region=region),
        dialled_raw=record.dst,
        extra={name: getattr(record, name) for name in _EXTRA},
    )
    if disposition != "ANSWERED":
        ending = replace(
            offered, kind=_ENDINGS[disposition], occurred_at=record.end, wait_seconds=record.duration
        )
        return [offered, ending]
    wait = max(record.duration - record.billsec, 0)
    try:
        answered_at = record.answer or record.end - timedelta(seconds=record.billsec)
    except OverflowError as error:
        raise ParseError(
            _("Line %(line)d: billsec %(value)d is longer than the call can have lasted.")
            % {"line": record.line, "value": record.billsec}
        ) from error
    answered = replace(
        offered,
        kind=CallEventKind.ANSWERED,
        occurred_at=answered_at,
        agent_ref=agent,
        wait_seconds=wait,
    )
    ended = replace(answered, kind=CallEventKind.ENDED, occurred_at=record.end, talk_seconds=record.billsec)
    return [offered, answered, ended]


__all__ = [
    "COLUMNS",
    "CdrRecord",
    "collapse_parallel_calls",
    "parse_rows",
    "to_call_events",
    "write_rows",
]
