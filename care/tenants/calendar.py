"""When a tenant is open for service: its weekly service hours in its own time zone, minus holidays.

Rules (documented in docs/routing.md):
- A tenant with no service-hours rows at all is served round the clock (24/7), holidays included.
- Otherwise a weekday without rows is closed, and so is every public holiday of the tenant's holiday
  country and subdivision (from the ``holidays`` library).
- Intervals are local wall-clock times, so 08:00-18:00 stays 08:00-18:00 across daylight-saving
  changes; ``closes_at`` 00:00 means midnight at the end of the day.

Routing asks ``is_open``; the SLA engine builds its business-time arithmetic on the same calendar.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from care.tenants.models import ServiceHours, Tenant

Interval = tuple[dt.time, dt.time]


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

    @property
    def round_the_clock(self) -> bool:
        return not self.weekly

    @property
    def ever_closed(self) -> bool:
        """Whether there is any instant at which the tenant is closed."""
        if self.round_the_clock:
            return False
        if len(self.weekly) < 7 or self.holiday_country:
            return True
        return any(not _covers_whole_day(intervals) for intervals in self.weekly.values())

    def is_holiday(self, day: dt.date) -> bool:
        return bool(self.holiday_country) and day in _holiday_table(
            self.holiday_country, self.holiday_subdivision
        )

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


def calendar_of(tenant: Tenant, hours: Iterable[ServiceHours] | None = None) -> ServiceCalendar:
    """The tenant's calendar; pass ``hours`` when they were loaded already (one query otherwise)."""
    rows = list(hours) if hours is not None else list(ServiceHours.objects.filter(tenant=tenant))
    weekly: dict[int, list[Interval]] = defaultdict(list)
    for row in rows:
        weekly[row.weekday].append((row.opens_at, row.closes_at))
    return ServiceCalendar(
        time_zone=tenant.time_zone,
        weekly={day: tuple(sorted(intervals)) for day, intervals in weekly.items()},
        holiday_country=tenant.holiday_country,
        holiday_subdivision=tenant.holiday_subdivision,
    )


def calendars_of(tenants: Iterable[Tenant]) -> dict[int, ServiceCalendar]:
    """Calendars of several tenants in one query."""
    tenants = list(tenants)
    by_tenant: dict[int, list[ServiceHours]] = defaultdict(list)
    for row in ServiceHours.objects.filter(tenant__in=tenants):
        by_tenant[row.tenant_id].append(row)
    return {tenant.pk: calendar_of(tenant, by_tenant[tenant.pk]) for tenant in tenants}
