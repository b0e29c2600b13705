"""FreeSWITCH ``mod_json_cdr`` call detail records as ``FreeSwitchCdr`` and ``CallEvent``.

A mod_json_cdr document describes one channel (leg): ``variables`` (strings), ``callflow`` (a list,
newest caller profile first, or a single object in older versions) and, in partial CDRs, ``times``
(microseconds since the epoch, "0" when it did not happen). Fields are taken from the most
specific place that has them:

- call id: ``variables.uuid``, else the caller profile's ``uuid``;
- from/to: the caller profile's ``caller_id_number``/``destination_number``, else the variables
  ``caller_id_number``, ``sip_from_user``, ``effective_caller_id_number`` / ``destination_number``,
  ``sip_to_user``, ``dialed_user``;
- times: ``*_uepoch`` (µs), else ``*_epoch`` (s), else ``times.*_time`` (µs);
- durations: ``duration``, ``billsec``, ``hold_accum_seconds``, else computed from the times.

Events: offered at start; if answered, answered (agent = the dialled user) and ended with
``talk_seconds`` = billsec (FreeSWITCH counts hold time in it; ``hold_seconds`` says how much);
if not answered, rejected for busy/refused/congested hangup causes, else abandoned with the wait.
A partial CDR without a hangup time gives only the offered event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.translation import gettext as _

from care.calls.events import (
    CallEvent,
    CallEventKind,
    Direction,
    ParseError,
    normalise_number,
)

PROVIDER = "freeswitch"
_REJECTING_CAUSES = frozenset(
    {
        "USER_BUSY",
        "CALL_REJECTED",
        "NORMAL_CIRCUIT_CONGESTION",
        "SWITCH_CONGESTION",
        "NO_ROUTE_DESTINATION",
        "UNALLOCATED_NUMBER",
        "INCOMPATIBLE_DESTINATION",
        "OUTGOING_CALL_BARRED",
    }
)


@dataclass(frozen=True)
class FreeSwitchCdr:
    """The fields Care uses from one mod_json_cdr document; times aware UTC, None if not reached."""

    call_id: str
    caller: str
    caller_name: str
    destination: str
    direction: Direction
    start: datetime
    answer: datetime | None
    end: datetime | None
    duration: int
    billsec: int
    hold_seconds: int
    hangup_cause: str
    agent_ref: str
    user_agent: str
    accountcode: str
    variables: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


def _document(source: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    try:
        document = json.loads(source)
    except (ValueError, UnicodeDecodeError) as error:
        raise ParseError(_("The FreeSWITCH CDR is not valid JSON: %(error)s") % {"error": error}) from error
    if not isinstance(document, dict):
        raise ParseError(_("The FreeSWITCH CDR must be a JSON object."))
    return document


def _caller_profile(document: Mapping[str, Any]) -> Mapping[str, Any]:
    callflow = document.get("callflow")
    if isinstance(callflow, list):
        callflow = callflow[0] if callflow else None
    profile = callflow.get("caller_profile") if isinstance(callflow, dict) else None
    return profile if isinstance(profile, dict) else {}


def _first(*candidates: Any) -> str:
    for candidate in candidates:
        if isinstance(candidate, str | int) and str(candidate).strip():
            return str(candidate).strip()
    return ""


def _number(value: str, *, name: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise ParseError(
            _("The FreeSWITCH field %(name)s must be a whole number, not %(value)r.")
            % {"name": name, "value": value}
        ) from error


def _moment(
    variables: Mapping[str, Any], times: Mapping[str, Any], prefix: str, time_key: str
) -> datetime | None:
    micro = _first(variables.get(f"{prefix}_uepoch"))
    if not micro:
        seconds = _first(variables.get(f"{prefix}_epoch"))
        micro = str(_number(seconds, name=f"{prefix}_epoch") * 1_000_000) if seconds else ""
    if not micro:
        micro = _first(times.get(time_key))
    if not micro:
        return None
    value = _number(micro, name=f"{prefix}_uepoch")
    if value <= 0:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def _seconds(variables: Mapping[str, Any], name: str, fallback: int) -> int:
    text = _first(variables.get(name))
    return _number(text, name=name) if text else fallback


def parse_cdr(source: str | bytes | Mapping[str, Any]) -> FreeSwitchCdr:
    """One mod_json_cdr document (JSON text or already decoded). ``ParseError`` if unusable."""
    document = _document(source)
    variables = document.get("variables")
    variables = variables if isinstance(variables, dict) else {}
    times = document.get("times")
    times = times if isinstance(times, dict) else {}
    profile = _caller_profile(document)
    call_id = _first(variables.get("uuid"), profile.get("uuid"), variables.get("call_uuid"))
    if not call_id:
        raise ParseError(_("The FreeSWITCH CDR has no call uuid, so it cannot be matched to a call."))
    start = _moment(variables, times, "start", "created_time")
    if start is None:
        raise ParseError(_("The FreeSWITCH CDR %(call)s has no start time.") % {"call": call_id})
    answer = _moment(variables, times, "answer", "answered_time")
    end = _moment(variables, times, "end", "hangup_time")
    elapsed = int((end - start).total_seconds()) if end else 0
    talked = int((end - answer).total_seconds()) if end and answer else 0
    destination = _first(
        profile.get("destination_number"),
        variables.get("destination_number"),
        variables.get("sip_to_user"),
        variables.get("dialed_user"),
    )
    direction: Direction = "outbound" if _first(variables.get("direction")) == "outbound" else "inbound"
    return FreeSwitchCdr(
        call_id=call_id,
        caller=_first(
            profile.get("caller_id_number"),
            variables.get("caller_id_number"),
            variables.get("sip_from_user"),
            variables.get("effective_caller_id_number"),
        ),
        caller_name=_first(
            profile.get("caller_id_name"),
            variables.get("caller_id_name"),
            variables.get("effective_caller_id_name"),
        ),
        destination=destination,
        direction=direction,
        start=start,
        answer=answer,
        end=end,
        duration=_seconds(variables, "duration", elapsed),
        billsec=_seconds(variables, "billsec", talked),
        hold_seconds=_seconds(variables, "hold_accum_seconds", 0),
        hangup_cause=_first(variables.get("hangup_cause")),
        agent_ref=_first(variables.get("dialed_user"), variables.get("last_sent_callee_id_number")),
        user_agent=_first(variables.get("sip_user_agent")),
        accountcode=_first(variables.get("accountcode")),
        variables=variables,
    )


def to_call_events(cdr: FreeSwitchCdr, *, region: str | None = None) -> list[CallEvent]:
    """The events of one CDR (see the module docstring); ``region`` reads national numbers."""
    offered = CallEvent(
        provider=PROVIDER,
        call_id=cdr.call_id,
        kind=CallEventKind.OFFERED,
        occurred_at=cdr.start,
        caller=normalise_number(cdr.caller, default_region=region),
        caller_raw=cdr.caller,
        dialled=normalise_number(cdr.destination, default_region=region),
        dialled_raw=cdr.destination,
        direction=cdr.direction,
        extra={
            "caller_name": cdr.caller_name,
            "hangup_cause": cdr.hangup_cause,
            "user_agent": cdr.user_agent,
            "accountcode": cdr.accountcode,
        },
    )
    events = [offered]
    if cdr.answer is not None:
        wait = max(int((cdr.answer - cdr.start).total_seconds()), 0)
        answered = replace(
            offered,
            kind=CallEventKind.ANSWERED,
            occurred_at=cdr.answer,
            agent_ref=cdr.agent_ref,
            wait_seconds=wait,
        )
        events.append(answered)
        if cdr.end is not None:
            events.append(
                replace(
                    answered,
                    kind=CallEventKind.ENDED,
                    occurred_at=cdr.end,
                    talk_seconds=cdr.billsec,
                    hold_seconds=cdr.hold_seconds,
                )
            )
    elif cdr.end is not None:
        kind = CallEventKind.REJECTED if cdr.hangup_cause in _REJECTING_CAUSES else CallEventKind.ABANDONED
        events.append(replace(offered, kind=kind, occurred_at=cdr.end, wait_seconds=cdr.duration))
    return events
