"""Call-center figures of inbound calls, as pure functions (no database): what a client is paid for
and penalised by (issue 7, item 6).

A call is described by ``CallFacts``; ``figures(calls, target=...)`` sums any number of them into one
``CallFigures``, and ``figures_by_interval`` does the same per wall-clock interval of the tenant's zone.

Definitions
-----------
- **offered**: every inbound call that reached the tenant's line, whatever became of it: answered,
  abandoned, rejected, voicemail or missed. Each call has exactly one outcome.
- **wait** of a call: the PBX's ``queue_wait_seconds`` when it reports one (it leaves out the IVR menu,
  which contracts do not count as waiting); otherwise derived from the timestamps: ``answered_at -
  offered_at`` for an answered call, ``ended_at - offered_at`` for an abandoned or missed one. A
  voicemail call has a wait only when the PBX reports one (its ``ended_at`` includes the message), a
  rejected call never waited (it was turned away at once).
- **answered in target**: answered with a wait of at most ``target.answered_within_seconds``; a call
  answered exactly at T counts as within.
- **abandoned_short**: abandoned with a wait of at most ``short_abandon_seconds`` (default 5 s): the
  caller hung up before anyone could reasonably answer (misdial, changed their mind). An abandoned
  call whose wait is unknown is not short: without proof it counts against the call center.
- **service level** = answered in target / ``service_level_base``, where the base depends on how the
  contract counts abandoned calls (``AbandonedCounting``):

  ``EXCLUDE_SHORT`` (default, usual in German contracts): base = offered - abandoned_short.
  ``COUNT_AS_MISSED``: base = offered; every abandoned call is a call not answered in time.
  ``EXCLUDE_ALL``: base = offered - abandoned (all abandoned calls left out). With no rejected,
  voicemail or missed calls this is "answered in target / answered"; those three still count against
  the service level under every rule (below), so the base is not simply ``answered``.

  In every rule, **rejected** calls (overload: all lines busy or the queue full) were offered and never
  answered, so they stay in the base and count as not answered in time; they are also counted on
  their own (``rejected``, ``rejection_rate``), as the client's overload penalty is based on them.
  **Voicemail** and **missed** calls stay in the base as not answered in time: the caller wanted a
  person and did not get one. ``service_level`` is None when the base is 0.
- **service_level_met**: service level >= ``target.percent`` / 100 (compared exactly, in integers);
  None when the service level is None.
- **average_speed_of_answer** (ASA): mean wait of the answered calls; None without answered calls.
- **average_handle_time** (AHT): mean of talk + hold + wrap-up seconds over the answered calls;
  unanswered calls have no handling and do not dilute it. None without answered calls.
- **abandonment_rate** = abandoned (short ones included) / (offered - rejected): of the callers
  admitted to the queue, the share who gave up. Rejected calls never reached the queue, so they
  could not abandon. ``abandoned_short`` lets a reader compute a variant without short abandons.
  None when the base is 0.
- **rejection_rate** = rejected / offered; None without offered calls.
- **longest_wait**: the longest known wait of any call, answered or not; None when no wait is known.

Counts add up over disjoint sets of calls; rates and averages do not, so a caller combining intervals
must recompute them from all calls (or from ``answered_in_target`` and ``service_level_base``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Every time zone in use today is offset from UTC by a multiple of 15 minutes, so any wall-clock
# boundary of a 15/30/60-minute or daily interval falls on a UTC quarter-hour.
_STEP = dt.timedelta(minutes=15)
_DAY = dt.timedelta(days=1)
ALLOWED_INTERVALS = (dt.timedelta(minutes=15), dt.timedelta(minutes=30), dt.timedelta(hours=1), _DAY)


class CallOutcome(enum.StrEnum):
    ANSWERED = "answered"
    # The caller hung up while waiting.
    ABANDONED = "abandoned"
    # Overload: all lines busy or the queue full; the call was turned away without waiting.
    REJECTED = "rejected"
    VOICEMAIL = "voicemail"
    # Ended unanswered for another reason (ring timeout, dropped by the system, out-of-hours notice).
    MISSED = "missed"


class AbandonedCounting(enum.StrEnum):
    """How abandoned calls enter the service level's base (see the module docstring)."""

    EXCLUDE_SHORT = "exclude_short"
    COUNT_AS_MISSED = "count_as_missed"
    EXCLUDE_ALL = "exclude_all"


def _require_aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be an aware datetime")


def _utc(moment: dt.datetime) -> dt.datetime:
    # Aware datetimes sharing a tzinfo compare and subtract by wall clock, ignoring a DST change
    # between them; in UTC they cannot.
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a figure needs of one inbound call.

    Preconditions (checked): datetimes are aware; seconds are not negative; an answered call has
    ``answered_at`` or ``queue_wait_seconds``; ``answered_at`` and ``ended_at`` are not before
    ``offered_at``.
    """

    offered_at: dt.datetime
    outcome: CallOutcome
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    queue_wait_seconds: int | None = None
    talk_seconds: int = 0
    hold_seconds: int = 0
    wrapup_seconds: int = 0

    def __post_init__(self) -> None:
        _require_aware("offered_at", self.offered_at)
        _require_aware("answered_at", self.answered_at)
        _require_aware("ended_at", self.ended_at)
        seconds = (self.queue_wait_seconds or 0, self.talk_seconds, self.hold_seconds, self.wrapup_seconds)
        if min(seconds) < 0:
            raise ValueError("durations must not be negative")
        for name, moment in (("answered_at", self.answered_at), ("ended_at", self.ended_at)):
            if moment is not None and _utc(moment) < _utc(self.offered_at):
                raise ValueError(f"{name} is before offered_at")
        if (
            self.outcome is CallOutcome.ANSWERED
            and self.answered_at is None
            and self.queue_wait_seconds is None
        ):
            raise ValueError("an answered call needs answered_at or queue_wait_seconds")

    @property
    def wait_seconds(self) -> float | None:
        """The wait as defined in the module docstring; None when it is not known."""
        if self.outcome is CallOutcome.REJECTED:
            return 0.0
        if self.queue_wait_seconds is not None:
            return float(self.queue_wait_seconds)
        if self.outcome is CallOutcome.ANSWERED:
            until = self.answered_at
        elif self.outcome in (CallOutcome.ABANDONED, CallOutcome.MISSED):
            until = self.ended_at
        else:
            until = None
        return None if until is None else (_utc(until) - _utc(self.offered_at)).total_seconds()

    @property
    def handle_seconds(self) -> int:
        return self.talk_seconds + self.hold_seconds + self.wrapup_seconds


@dataclass(frozen=True, slots=True)
class ServiceLevelTarget:
    """``percent`` % of calls answered within ``answered_within_seconds`` (80/20 by default)."""

    answered_within_seconds: int = 20
    percent: int = 80

    def __post_init__(self) -> None:
        if self.answered_within_seconds < 0:
            raise ValueError("answered_within_seconds must not be negative")
        if not 0 <= self.percent <= 100:
            raise ValueError("percent must be between 0 and 100")


@dataclass(frozen=True, slots=True)
class CallFigures:
    offered: int
    answered: int
    abandoned: int
    abandoned_short: int
    rejected: int
    voicemail: int
    missed: int
    answered_in_target: int
    service_level_base: int
    service_level: float | None
    service_level_met: bool | None
    average_speed_of_answer: float | None
    average_handle_time: float | None
    abandonment_rate: float | None
    rejection_rate: float | None
    longest_wait: float | None


def _ratio(part: float, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def figures(
    calls: Iterable[CallFacts],
    *,
    target: ServiceLevelTarget,
    short_abandon_seconds: int = 5,
    abandoned_counting: AbandonedCounting = AbandonedCounting.EXCLUDE_SHORT,
) -> CallFigures:
    """The figures of ``calls`` (any order), as defined in the module docstring."""
    counts = dict.fromkeys(CallOutcome, 0)
    abandoned_short = answered_in_target = handle_total = 0
    wait_total = 0.0
    longest_wait: float | None = None
    for call in calls:
        counts[call.outcome] += 1
        wait = call.wait_seconds
        if wait is not None and (longest_wait is None or wait > longest_wait):
            longest_wait = wait
        # An answered call's wait is always known (CallFacts checks it).
        if call.outcome is CallOutcome.ANSWERED and wait is not None:
            wait_total += wait
            handle_total += call.handle_seconds
            if wait <= target.answered_within_seconds:
                answered_in_target += 1
        elif call.outcome is CallOutcome.ABANDONED and wait is not None and wait <= short_abandon_seconds:
            abandoned_short += 1

    offered = sum(counts.values())
    answered = counts[CallOutcome.ANSWERED]
    abandoned = counts[CallOutcome.ABANDONED]
    rejected = counts[CallOutcome.REJECTED]
    left_out = {
        AbandonedCounting.EXCLUDE_SHORT: abandoned_short,
        AbandonedCounting.COUNT_AS_MISSED: 0,
        AbandonedCounting.EXCLUDE_ALL: abandoned,
    }[abandoned_counting]
    base = offered - left_out
    service_level = _ratio(answered_in_target, base)
    return CallFigures(
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        abandoned_short=abandoned_short,
        rejected=rejected,
        voicemail=counts[CallOutcome.VOICEMAIL],
        missed=counts[CallOutcome.MISSED],
        answered_in_target=answered_in_target,
        service_level_base=base,
        service_level=service_level,
        # In integers, so 8 of 10 meets 80 % exactly, whatever the float 0.8 rounds to.
        service_level_met=None if base == 0 else answered_in_target * 100 >= target.percent * base,
        average_speed_of_answer=_ratio(wait_total, answered),
        average_handle_time=_ratio(handle_total, answered),
        abandonment_rate=_ratio(abandoned, offered - rejected),
        rejection_rate=_ratio(rejected, offered),
        longest_wait=longest_wait,
    )


def _bucket_key(moment: dt.datetime, zone: ZoneInfo, interval: dt.timedelta) -> Hashable:
    local = moment.astimezone(zone)
    if interval == _DAY:
        return local.date()
    minutes = local.hour * 60 + local.minute
    # The offset is part of the key so that the repeated hour of a fall-back night is a bucket of its
    # own (02:00 summer time, then 02:00 winter time) instead of one two-hour bucket.
    return local.date(), minutes // (interval // dt.timedelta(minutes=1)), local.utcoffset()


def interval_starts(
    *, start: dt.datetime, end: dt.datetime, interval: dt.timedelta, tz: str
) -> list[dt.datetime]:
    """The starts of the wall-clock intervals of ``tz`` in [start, end), as aware datetimes in ``tz``.

    Intervals follow the local clock: a day is from one local midnight to the next (23 or 25 hours on
    a DST change day); a spring-forward night has no 02:00 bucket, a fall-back night has two (summer
    time, then winter time). Preconditions: ``interval`` is one of ``ALLOWED_INTERVALS``; ``start``
    and ``end`` are aware and ``start`` is the start of an interval in ``tz``.
    """
    if interval not in ALLOWED_INTERVALS:
        raise ValueError("interval must be 15, 30 or 60 minutes or one day")
    _require_aware("start", start)
    _require_aware("end", end)
    zone = ZoneInfo(tz)
    start_utc = _utc(start)
    on_quarter_hour = start_utc.timestamp() % _STEP.total_seconds() == 0
    if not on_quarter_hour or _bucket_key(start_utc - _STEP, zone, interval) == _bucket_key(
        start_utc, zone, interval
    ):
        raise ValueError("start must be the start of an interval in the given time zone")
    starts: list[dt.datetime] = []
    previous: Hashable = None
    moment, end_utc = start_utc, _utc(end)
    while moment < end_utc:
        key = _bucket_key(moment, zone, interval)
        if key != previous:
            starts.append(moment.astimezone(zone))
            previous = key
        moment += _STEP
    return starts


def figures_by_interval(
    calls: Iterable[CallFacts],
    *,
    start: dt.datetime,
    end: dt.datetime,
    interval: dt.timedelta,
    tz: str,
    target: ServiceLevelTarget,
    short_abandon_seconds: int = 5,
    abandoned_counting: AbandonedCounting = AbandonedCounting.EXCLUDE_SHORT,
) -> list[tuple[dt.datetime, CallFigures]]:
    """The figures of each wall-clock interval of ``tz`` in [start, end) (see ``interval_starts``),
    every interval listed, empty ones too. A call belongs to the interval its ``offered_at`` falls in
    (a call offered exactly at a boundary opens the later interval); calls outside [start, end) are
    left out. Preconditions as for ``interval_starts``."""
    starts = interval_starts(start=start, end=end, interval=interval, tz=tz)
    starts_utc = [_utc(moment) for moment in starts]
    end_utc = _utc(end)
    buckets: list[list[CallFacts]] = [[] for _ in starts]
    for call in calls:
        offered = _utc(call.offered_at)
        if starts_utc and starts_utc[0] <= offered < end_utc:
            buckets[bisect.bisect_right(starts_utc, offered) - 1].append(call)
    return [
        (
            bucket_start,
            figures(
                bucket,
                target=target,
                short_abandon_seconds=short_abandon_seconds,
                abandoned_counting=abandoned_counting,
            ),
        )
        for bucket_start, bucket in zip(starts, buckets, strict=True)
    ]
