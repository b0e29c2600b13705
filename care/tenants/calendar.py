"""When a tenant is open for service: its weekly service hours in its own time zone, minus holidays.

Rules (documented in docs/routing.md):
- A tenant with no service-hours rows at all is served round the clock (24/7), holidays included.
- Otherwise a weekday without rows is closed, and so is every public holiday of the tenant's holiday
  country and subdivision (from the ``holidays`` library) and every closing day of its own
  (``TenantHoliday``, e.g. a company party).
- Intervals are local wall-clock times, so 08:00-18:00 stays 08:00-18:00 across daylight-saving
  changes; ``closes_at`` 00:00 means midnight at the end of the day.

Routing asks ``is_open``; the SLA engine builds its business-time arithmetic on the same calendar.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from care.core.memo import ConfigMemo
from care.tenants.models import ServiceHours, Tenant, TenantHoliday

Interval = tuple[dt.time, dt.time]
# How far ahead business-time arithmetic looks for open time before giving up.
MAX_SEARCH_DAYS = 400


@cache
def _holiday_table(country: str, subdivision: str) -> Any:
    # The library computes years lazily and caches them on the object: keep one per region.
    return holidays.country_holidays(country, subdiv=subdivision or None)


@dataclasses.dataclass(frozen=True)
class ServiceCalendar:
    time_zone: str
    weekly: dict[int, tuple[Interval, ...]]  # weekday (Monday 0) -> intervals, sorted
    holiday_country: str = ""
    holiday_subdivision: str = ""
    closed_dates: frozenset[dt.date] = frozenset()  # the tenant's own closing days (TenantHoliday)

    @property
    def round_the_clock(self) -> bool:
        return not self.weekly

    @property
    def ever_closed(self) -> bool:
        """Whether there is any instant at which the tenant is closed."""
        if self.round_the_clock:
            return False
        if len(self.weekly) < 7 or self.holiday_country or self.closed_dates:
            return True
        return any(not _covers_whole_day(intervals) for intervals in self.weekly.values())

    def is_holiday(self, day: dt.date) -> bool:
        if day in self.closed_dates:
            return True
        return bool(self.holiday_country) and day in _holiday_table(
            self.holiday_country, self.holiday_subdivision
        )

    # --- Business time (the SLA engine's arithmetic) ----------------------------------------------

    def open_intervals(self, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The open intervals from ``start`` on, in order, as aware datetimes (clipped to start).

        Wall-clock intervals are placed on each local day with its own UTC offset, so a day of a
        daylight-saving change has 23 or 25 hours and 08:00-18:00 is ten hours on either side of it.
        Raises ValueError when nothing is open within MAX_SEARCH_DAYS (a calendar that never opens).
        """
        # Arithmetic in UTC only: Python subtracts and compares two datetimes that share a tzinfo by
        # their wall clocks, which is wrong across a daylight-saving change.
        start = start.astimezone(dt.UTC)
        if self.round_the_clock:
            yield start, dt.datetime.max.replace(tzinfo=dt.UTC)
            return
        zone = ZoneInfo(self.time_zone)
        day = start.astimezone(zone).date()
        for _ in range(MAX_SEARCH_DAYS):
            if not self.is_holiday(day):
                for opens, closes in self.weekly.get(day.weekday(), ()):
                    begin = dt.datetime.combine(day, opens, tzinfo=zone).astimezone(dt.UTC)
                    closing_day = day + dt.timedelta(days=1) if closes == dt.time(0) else day
                    end = dt.datetime.combine(closing_day, closes, tzinfo=zone).astimezone(dt.UTC)
                    if end <= start:
                        continue
                    yield max(begin, start), end
            day += dt.timedelta(days=1)
        raise ValueError(f"The calendar has no open time within {MAX_SEARCH_DAYS} days of {start}.")

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The instant at which ``duration`` of open time has passed since ``start``."""
        if duration <= dt.timedelta(0):
            return start.astimezone(dt.UTC)
        left = duration
        for begin, end in self.open_intervals(start):
            if end - begin >= left:
                return (begin + left).astimezone(dt.UTC)
            left -= end - begin
        raise AssertionError("open_intervals ends only by raising")  # pragma: no cover

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Open time between two instants (zero when ``end`` is not after ``start``)."""
        total = dt.timedelta(0)
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        if end <= start:
            return total
        for begin, close in self.open_intervals(start):
            if begin >= end:
                break
            total += min(close, end) - begin
        return total

    def is_open(self, at: dt.datetime) -> bool:
        if self.round_the_clock:
            return True
        local = at.astimezone(ZoneInfo(self.time_zone))
        if self.is_holiday(local.date()):
            return False
        moment = local.time().replace(tzinfo=None)
        for opens, closes in self.weekly.get(local.weekday(), ()):
            if opens <= moment and (closes == dt.time(0) or moment < closes):
                return True
        return False


def _covers_whole_day(intervals: Iterable[Interval]) -> bool:
    reached = dt.time(0)
    for opens, closes in sorted(intervals):
        if opens > reached:
            return False
        if closes == dt.time(0):
            return True
        reached = max(reached, closes)
    return False


def calendar_of(
    tenant: Tenant, hours: Iterable[ServiceHours] | None = None, closed: Iterable[dt.date] | None = None
) -> ServiceCalendar:
    """The tenant's calendar; pass ``hours`` and ``closed`` dates when they were loaded already (two
    queries otherwise)."""
    rows = list(hours) if hours is not None else list(ServiceHours.objects.filter(tenant=tenant))
    if closed is None:
        closed = TenantHoliday.objects.filter(tenant=tenant).values_list("date", flat=True)
    weekly: dict[int, list[Interval]] = defaultdict(list)
    for row in rows:
        weekly[row.weekday].append((row.opens_at, row.closes_at))
    return ServiceCalendar(
        time_zone=tenant.time_zone,
        weekly={day: tuple(sorted(intervals)) for day, intervals in weekly.items()},
        holiday_country=tenant.holiday_country,
        holiday_subdivision=tenant.holiday_subdivision,
        closed_dates=frozenset(closed),
    )


CALENDAR_MEMO: ConfigMemo[ServiceCalendar] = ConfigMemo("calendars")


def calendar_of_memoised(tenant: Tenant) -> ServiceCalendar:
    """``calendar_of`` read at most every ``CONFIG_MEMO_SECONDS`` per process (no query when fresh).
    For hot paths such as routing a ringing call; the memo is cleared when hours, closing days or
    tenants are saved in this process (TenantsConfig.ready)."""
    return CALENDAR_MEMO.get(tenant.pk, lambda: calendar_of(tenant))


def calendars_of(tenants: Iterable[Tenant]) -> dict[int, ServiceCalendar]:
    """Calendars of several tenants in one query."""
    tenants = list(tenants)
    by_tenant: dict[int, list[ServiceHours]] = defaultdict(list)
    for row in ServiceHours.objects.filter(tenant__in=tenants):
        by_tenant[row.tenant_id].append(row)
    closed: dict[int, list[dt.date]] = defaultdict(list)
    for tenant_id, date in TenantHoliday.objects.filter(tenant__in=tenants).values_list("tenant_id", "date"):
        closed[tenant_id].append(date)
    return {tenant.pk: calendar_of(tenant, by_tenant[tenant.pk], closed[tenant.pk]) for tenant in tenants}
