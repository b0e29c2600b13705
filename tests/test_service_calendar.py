"""The tenant's service calendar: weekly hours in its own time zone, holidays closed, no rows = 24/7."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from care.tenants.calendar import calendar_of
from care.tenants.models import ServiceHours, Weekday
from tests.factories.tenants import TenantFactory

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _hours(tenant, weekday, opens, closes):
    ServiceHours.objects.create(tenant=tenant, weekday=weekday, opens_at=opens, closes_at=closes)


@pytest.fixture
def office(db):
    tenant = TenantFactory(code="OFF", slug="office", time_zone="Europe/Berlin", holiday_country="DE")
    for day in range(Weekday.MONDAY, Weekday.FRIDAY + 1):
        _hours(tenant, day, dt.time(8), dt.time(18))
    return tenant


def test_a_tenant_without_service_hours_is_served_round_the_clock(db):
    tenant = TenantFactory(code="ALL", slug="all-day", holiday_country="DE")
    calendar = calendar_of(tenant)
    assert calendar.round_the_clock
    assert not calendar.ever_closed
    christmas_night = dt.datetime(2026, 12, 25, 3, 0, tzinfo=BERLIN)
    assert calendar.is_open(christmas_night)


def test_weekly_hours_are_read_in_the_tenants_time_zone(office):
    calendar = calendar_of(office)
    assert calendar.is_open(dt.datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN))  # Thursday 08:00 opens
    assert not calendar.is_open(dt.datetime(2026, 11, 26, 7, 59, tzinfo=BERLIN))
    assert not calendar.is_open(dt.datetime(2026, 11, 26, 18, 0, tzinfo=BERLIN))  # closes at 18:00
    # 07:30 UTC is 08:30 in Berlin in winter: open, although the UTC clock says 07:30.
    assert calendar.is_open(dt.datetime(2026, 11, 26, 7, 30, tzinfo=dt.UTC))
    assert not calendar.is_open(dt.datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN))  # Saturday: no rows


def test_opening_hours_stay_on_the_wall_clock_across_daylight_saving(office):
    calendar = calendar_of(office)
    # 2026-03-30 (Monday after the switch to CEST): 08:00 local is 06:00 UTC, not 07:00.
    assert calendar.is_open(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
    assert not calendar.is_open(dt.datetime(2026, 3, 30, 5, 59, tzinfo=dt.UTC))
    # A week earlier (CET) 06:00 UTC is 07:00 local: still closed.
    assert not calendar.is_open(dt.datetime(2026, 3, 23, 6, 0, tzinfo=dt.UTC))


def test_public_holidays_of_the_tenants_region_are_closed(office):
    calendar = calendar_of(office)
    # 2026-12-25 is a Friday and a German public holiday; 2026-12-23 a normal Wednesday.
    assert not calendar.is_open(dt.datetime(2026, 12, 25, 12, 0, tzinfo=BERLIN))
    assert calendar.is_open(dt.datetime(2026, 12, 23, 12, 0, tzinfo=BERLIN))
    assert calendar.ever_closed


def test_midnight_closing_and_split_shifts(db):
    tenant = TenantFactory(code="NYC", slug="nyc", time_zone="America/New_York", holiday_country="")
    _hours(tenant, Weekday.MONDAY, dt.time(9), dt.time(12))
    _hours(tenant, Weekday.MONDAY, dt.time(13), dt.time(0))  # until midnight
    calendar = calendar_of(tenant)
    monday = dt.date(2026, 11, 23)
    assert calendar.is_open(dt.datetime.combine(monday, dt.time(11, 59), NEW_YORK))
    assert not calendar.is_open(dt.datetime.combine(monday, dt.time(12, 30), NEW_YORK))
    assert calendar.is_open(dt.datetime.combine(monday, dt.time(23, 59), NEW_YORK))
    assert not calendar.is_open(dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(0, 30), NEW_YORK))


def test_every_day_all_day_without_holidays_is_never_closed(db):
    tenant = TenantFactory(code="AAA", slug="aaa", holiday_country="")
    for day in Weekday.values:
        _hours(tenant, day, dt.time(0), dt.time(0))
    assert not calendar_of(tenant).ever_closed


# --- Business time: what the SLA engine computes due times with ---------------------------------

H = dt.timedelta(hours=1)


def test_business_time_skips_nights_and_weekends(office):
    calendar = calendar_of(office)
    friday_five_pm = dt.datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
    # One hour left on Friday, then Monday from 08:00: four hours are due Monday 11:00.
    assert calendar.add(friday_five_pm, 4 * H) == dt.datetime(2026, 11, 30, 11, 0, tzinfo=BERLIN)
    assert calendar.between(friday_five_pm, dt.datetime(2026, 11, 30, 11, 0, tzinfo=BERLIN)) == 4 * H


def test_work_created_outside_hours_starts_counting_at_the_next_opening(office):
    calendar = calendar_of(office)
    sunday_night = dt.datetime(2026, 11, 29, 23, 30, tzinfo=BERLIN)
    assert calendar.add(sunday_night, 2 * H) == dt.datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
    assert calendar.between(sunday_night, dt.datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN)) == dt.timedelta(0)


def test_a_holiday_weekend_is_skipped(office):
    calendar = calendar_of(office)
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April are holidays in Germany.
    thursday = dt.datetime(2026, 4, 2, 17, 0, tzinfo=BERLIN)
    assert calendar.add(thursday, 2 * H) == dt.datetime(2026, 4, 7, 9, 0, tzinfo=BERLIN)


def test_the_tenants_own_closing_days_are_skipped(office):
    from care.tenants.models import TenantHoliday

    TenantHoliday.objects.create(tenant=office, date=dt.date(2026, 11, 30), name="Company day")
    calendar = calendar_of(office)
    friday_five_pm = dt.datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
    assert calendar.add(friday_five_pm, 2 * H) == dt.datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN)


def test_business_hours_across_the_spring_daylight_saving_switch_in_berlin(db):
    tenant = TenantFactory(code="B24", slug="b24", time_zone="Europe/Berlin", holiday_country="")
    for day in Weekday.values:
        _hours(tenant, day, dt.time(0), dt.time(0))  # open all day, every day
    calendar = calendar_of(tenant)
    # 29 March 2026 02:00 CET the clocks jump to 03:00 CEST: that day has 23 hours.
    start = dt.datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    end = dt.datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    assert calendar.between(start, end) == 23 * H
    assert calendar.add(start, 3 * H) == dt.datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN)


def test_office_hours_on_a_new_york_fall_back_day_stay_on_the_wall_clock(db):
    tenant = TenantFactory(code="NY1", slug="ny1", time_zone="America/New_York", holiday_country="")
    _hours(tenant, Weekday.SUNDAY, dt.time(0), dt.time(12))
    _hours(tenant, Weekday.MONDAY, dt.time(9), dt.time(17))
    calendar = calendar_of(tenant)
    # 1 November 2026 02:00 EDT falls back to 01:00 EST: midnight to noon is 13 real hours.
    sunday = dt.datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK)
    assert calendar.between(sunday, dt.datetime(2026, 11, 1, 12, 0, tzinfo=NEW_YORK)) == 13 * H
    due = calendar.add(sunday, 14 * H)  # 13 hours on Sunday, the 14th on Monday from 09:00
    assert due == dt.datetime(2026, 11, 2, 10, 0, tzinfo=NEW_YORK)
    assert due.tzinfo == dt.UTC  # returned in UTC


def test_round_the_clock_business_time_is_plain_time(db):
    tenant = TenantFactory(code="R24", slug="r24", holiday_country="DE")
    calendar = calendar_of(tenant)
    christmas = dt.datetime(2026, 12, 25, 10, 0, tzinfo=dt.UTC)
    assert calendar.add(christmas, 5 * H) == christmas + 5 * H
    assert calendar.between(christmas, christmas + 5 * H) == 5 * H
