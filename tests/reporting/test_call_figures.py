"""Call-center figures (care/reporting/call_figures.py) against hand counts, per abandoned-counting rule,
per wall-clock interval on DST days, and as properties over generated calls. Pure functions: no
database.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from care.reporting.call_figures import (
    AbandonedCounting,
    CallFacts,
    CallFigures,
    CallOutcome,
    ServiceLevelTarget,
    figures,
    figures_by_interval,
    interval_starts,
)

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BERLIN = ZoneInfo("Europe/Berlin")
T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
TARGET = ServiceLevelTarget()  # 80 % within 20 s
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)
COUNTS = (
    "offered",
    "answered",
    "abandoned",
    "abandoned_short",
    "rejected",
    "voicemail",
    "missed",
    "answered_in_target",
    "service_level_base",
)


def answered(
    wait: float, *, talk: int = 0, hold: int = 0, wrapup: int = 0, by_pbx: bool = True, at: dt.datetime = T0
) -> CallFacts:
    """An answered call; the wait comes from the PBX (``queue_wait_seconds``) or from ``answered_at``."""
    return CallFacts(
        offered_at=at,
        outcome=CallOutcome.ANSWERED,
        answered_at=at + wait * SECOND,
        ended_at=at + (wait + talk + hold) * SECOND,
        queue_wait_seconds=int(wait) if by_pbx else None,
        talk_seconds=talk,
        hold_seconds=hold,
        wrapup_seconds=wrapup,
    )


def abandoned(wait: int, *, by_pbx: bool = True, at: dt.datetime = T0) -> CallFacts:
    return CallFacts(
        offered_at=at,
        outcome=CallOutcome.ABANDONED,
        ended_at=at + wait * SECOND,
        queue_wait_seconds=wait if by_pbx else None,
    )


def rejected(at: dt.datetime = T0) -> CallFacts:
    return CallFacts(offered_at=at, outcome=CallOutcome.REJECTED, ended_at=at)


def voicemail(at: dt.datetime = T0) -> CallFacts:
    # The caller left a 90-second message; the PBX reported no queue wait, so the wait is unknown.
    return CallFacts(offered_at=at, outcome=CallOutcome.VOICEMAIL, ended_at=at + 90 * SECOND)


def ten_calls() -> list[CallFacts]:
    """6 answered at 5/12/19/20/25/40 s, 2 abandoned at 3 s and 30 s, 1 rejected, 1 voicemail."""
    return [
        answered(5, talk=100, wrapup=20, by_pbx=False),  # handle 100 + 0 + 20 = 120
        answered(12, talk=200, hold=30, wrapup=30),  # 260
        answered(19, talk=150, wrapup=10),  # 160
        answered(20, talk=300, hold=60, wrapup=40, by_pbx=False),  # 400
        answered(25, talk=90, wrapup=30),  # 120
        answered(40, talk=240, hold=20, wrapup=20),  # 280
        abandoned(3),  # short: 3 <= 5
        abandoned(30, by_pbx=False),  # wait from ended_at - offered_at = 30
        rejected(),
        voicemail(),
    ]


# The figures every rule shares:
#   offered 10; answered 6; abandoned 2 (1 short); rejected 1; voicemail 1; missed 0
#   answered in target (wait <= 20): 5, 12, 19, 20 -> 4
#   ASA = (5 + 12 + 19 + 20 + 25 + 40) / 6 = 121 / 6 = 20.1666...
#   AHT = (120 + 260 + 160 + 400 + 120 + 280) / 6 = 1340 / 6 = 223.333...
#   abandonment rate = 2 / (10 offered - 1 rejected) = 2 / 9
#   rejection rate = 1 / 10
#   longest wait = 40 (the answered call; the voicemail's wait is unknown)
SHARED = {
    "offered": 10,
    "answered": 6,
    "abandoned": 2,
    "abandoned_short": 1,
    "rejected": 1,
    "voicemail": 1,
    "missed": 0,
    "answered_in_target": 4,
}


@pytest.mark.parametrize(
    ("rule", "base", "service_level"),
    [
        # base = offered - short abandoned = 10 - 1 = 9; SL = 4 / 9 = 0.444...
        (AbandonedCounting.EXCLUDE_SHORT, 9, 4 / 9),
        # base = offered = 10; SL = 4 / 10 = 0.4
        (AbandonedCounting.COUNT_AS_MISSED, 10, 0.4),
        # base = offered - all abandoned = 10 - 2 = 8 (rejected and voicemail stay in); SL = 4 / 8 = 0.5
        (AbandonedCounting.EXCLUDE_ALL, 8, 0.5),
    ],
)
def test_ten_calls_by_hand_for_each_abandoned_rule(rule, base, service_level):
    result = figures(ten_calls(), target=TARGET, abandoned_counting=rule)

    assert {name: getattr(result, name) for name in SHARED} == SHARED
    assert result.service_level_base == base
    assert result.service_level == pytest.approx(service_level)
    assert result.service_level_met is False  # all below 80 %
    assert result.average_speed_of_answer == pytest.approx(121 / 6)
    assert result.average_handle_time == pytest.approx(1340 / 6)
    assert result.abandonment_rate == pytest.approx(2 / 9)
    assert result.rejection_rate == pytest.approx(0.1)
    assert result.longest_wait == 40


def test_default_rule_excludes_short_abandons():
    assert figures(ten_calls(), target=TARGET).service_level_base == 9


def test_target_met_exactly_at_the_percentage():
    # 4 in target of a base of 10 is 40 %: a 40 % target is met (4 * 100 >= 40 * 10), 41 % is not.
    rule = AbandonedCounting.COUNT_AS_MISSED
    at_40 = figures(ten_calls(), target=ServiceLevelTarget(20, 40), abandoned_counting=rule)
    at_41 = figures(ten_calls(), target=ServiceLevelTarget(20, 41), abandoned_counting=rule)
    assert (at_40.service_level_met, at_41.service_level_met) == (True, False)


def test_target_seconds_change_what_is_in_target():
    # Within 10 s: only the 5 s call -> 1 / 9. Within 40 s: all 6 answered -> 6 / 9.
    assert figures(ten_calls(), target=ServiceLevelTarget(10, 80)).service_level == pytest.approx(1 / 9)
    assert figures(ten_calls(), target=ServiceLevelTarget(40, 80)).service_level == pytest.approx(6 / 9)


def test_answered_exactly_at_the_target_counts_as_within():
    # 20 s (PBX), 20 s (timestamps) are within 20 s; 20.5 s (timestamps) is not: 2 / 3.
    calls = [answered(20), answered(20, by_pbx=False), answered(20.5, by_pbx=False)]
    result = figures(calls, target=TARGET)
    assert result.answered_in_target == 2
    assert result.service_level == pytest.approx(2 / 3)
    assert result.average_speed_of_answer == pytest.approx(60.5 / 3)


def test_abandoned_exactly_at_the_short_threshold_is_short():
    # 5 s (<= 5) and 2 s are short, 6 s is not; with a 10 s threshold all three are.
    calls = [abandoned(5), abandoned(2, by_pbx=False), abandoned(6), answered(1)]
    assert figures(calls, target=TARGET).abandoned_short == 2
    assert figures(calls, target=TARGET, short_abandon_seconds=10).abandoned_short == 3
    # Default rule: base = 4 - 2 = 2, SL = 1 / 2.
    assert figures(calls, target=TARGET).service_level == pytest.approx(0.5)


def test_abandoned_with_unknown_wait_is_not_short():
    call = CallFacts(offered_at=T0, outcome=CallOutcome.ABANDONED)
    result = figures([call, answered(3)], target=TARGET)
    # Not provably short, so it stays in the base: 1 / 2.
    assert (result.abandoned_short, result.service_level_base, result.service_level) == (0, 2, 0.5)
    assert result.longest_wait == 3


def test_empty_input_gives_zeros_and_nones():
    for rule in AbandonedCounting:
        assert figures([], target=TARGET, abandoned_counting=rule) == CallFigures(
            offered=0,
            answered=0,
            abandoned=0,
            abandoned_short=0,
            rejected=0,
            voicemail=0,
            missed=0,
            answered_in_target=0,
            service_level_base=0,
            service_level=None,
            service_level_met=None,
            average_speed_of_answer=None,
            average_handle_time=None,
            abandonment_rate=None,
            rejection_rate=None,
            longest_wait=None,
        )


def test_only_short_abandons_leave_no_service_level_but_a_rate():
    # Base 2 - 2 = 0 -> SL None; abandonment rate 2 / 2 = 1; no answered -> ASA and AHT None.
    result = figures([abandoned(1), abandoned(4)], target=TARGET)
    assert (result.service_level, result.service_level_met) == (None, None)
    assert result.abandonment_rate == 1.0
    assert (result.average_speed_of_answer, result.average_handle_time) == (None, None)
    # Counted as missed, they are in the base: 0 / 2.
    as_missed = figures([abandoned(1)], target=TARGET, abandoned_counting=AbandonedCounting.COUNT_AS_MISSED)
    assert (as_missed.service_level, as_missed.service_level_met) == (0.0, False)


def test_only_rejected_calls_count_against_the_service_level_under_every_rule():
    # Overload: 3 offered, 3 rejected. Base 3 under every rule, SL 0 / 3; abandonment rate 0 / 0 -> None.
    for rule in AbandonedCounting:
        result = figures([rejected(), rejected(), rejected()], target=TARGET, abandoned_counting=rule)
        assert (result.service_level_base, result.service_level, result.service_level_met) == (3, 0.0, False)
        assert (result.rejection_rate, result.abandonment_rate) == (1.0, None)
        assert result.longest_wait == 0


def test_voicemail_and_missed_count_as_not_answered_in_time():
    missed = CallFacts(offered_at=T0, outcome=CallOutcome.MISSED, ended_at=T0 + 45 * SECOND)
    queued_voicemail = CallFacts(offered_at=T0, outcome=CallOutcome.VOICEMAIL, queue_wait_seconds=60)
    result = figures(
        [answered(10), missed, queued_voicemail],
        target=TARGET,
        abandoned_counting=AbandonedCounting.EXCLUDE_ALL,
    )
    # 1 in target of 3 offered (none abandoned): 1 / 3. Waits 10, 45 (ended - offered), 60 (PBX).
    assert (result.missed, result.voicemail, result.service_level_base) == (1, 1, 3)
    assert result.service_level == pytest.approx(1 / 3)
    assert result.longest_wait == 60


def test_wait_from_timestamps_across_a_dst_change_uses_real_seconds():
    # Offered 02:59:50 summer time, answered 02:00:05 winter time (one zone object, fold=1): 15 s, not
    # the -3585 s the wall clocks suggest.
    offered = dt.datetime(2026, 10, 25, 2, 59, 50, tzinfo=BERLIN)
    call = CallFacts(
        offered_at=offered,
        outcome=CallOutcome.ANSWERED,
        answered_at=dt.datetime(2026, 10, 25, 2, 0, 5, tzinfo=BERLIN, fold=1),
    )
    assert call.wait_seconds == 15


@pytest.mark.parametrize(
    "kwargs",
    [
        {"offered_at": dt.datetime(2026, 1, 1, 9, 0), "outcome": CallOutcome.REJECTED},  # noqa: DTZ001
        {"offered_at": T0, "outcome": CallOutcome.ANSWERED},  # no way to tell the wait
        {"offered_at": T0, "outcome": CallOutcome.ANSWERED, "queue_wait_seconds": -1},
        {"offered_at": T0, "outcome": CallOutcome.ANSWERED, "answered_at": T0 - SECOND},
        {"offered_at": T0, "outcome": CallOutcome.ABANDONED, "ended_at": T0 - SECOND},
        {"offered_at": T0, "outcome": CallOutcome.ANSWERED, "queue_wait_seconds": 1, "talk_seconds": -5},
    ],
)
def test_impossible_calls_are_refused(kwargs):
    with pytest.raises(ValueError):
        CallFacts(**kwargs)


@pytest.mark.parametrize(("seconds", "percent"), [(-1, 80), (20, 101), (20, -1)])
def test_impossible_targets_are_refused(seconds, percent):
    with pytest.raises(ValueError):
        ServiceLevelTarget(seconds, percent)


# --- intervals -----------------------------------------------------------------------------------


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, fold: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=BERLIN, fold=fold)


def test_spring_forward_day_has_23_hourly_buckets_and_no_2_oclock():
    # 2026-03-29: at 02:00 CET the clocks jump to 03:00 CEST.
    day, next_day = berlin(2026, 3, 29), berlin(2026, 3, 30)
    starts = interval_starts(start=day, end=next_day, interval=HOUR, tz="Europe/Berlin")
    assert len(starts) == 23
    assert [start.hour for start in starts] == [0, 1, *range(3, 24)]
    assert starts[2].utcoffset() == 2 * HOUR
    quarters = interval_starts(start=day, end=next_day, interval=dt.timedelta(minutes=15), tz="Europe/Berlin")
    assert len(quarters) == 23 * 4
    assert (
        len(interval_starts(start=day, end=next_day, interval=dt.timedelta(minutes=30), tz="Europe/Berlin"))
        == 23 * 2
    )


def test_fall_back_day_has_25_hourly_buckets_with_two_2_oclocks():
    # 2026-10-25: at 03:00 CEST the clocks go back to 02:00 CET; 02:00-03:00 happens twice.
    day, next_day = berlin(2026, 10, 25), berlin(2026, 10, 26)
    starts = interval_starts(start=day, end=next_day, interval=HOUR, tz="Europe/Berlin")
    assert len(starts) == 25
    assert [start.hour for start in starts] == [0, 1, 2, 2, *range(3, 24)]
    assert [starts[2].utcoffset(), starts[3].utcoffset()] == [2 * HOUR, HOUR]
    assert (
        len(interval_starts(start=day, end=next_day, interval=dt.timedelta(minutes=15), tz="Europe/Berlin"))
        == 25 * 4
    )


def test_fall_back_calls_land_in_their_own_2_oclock():
    # 00:30 UTC is 02:30 CEST (bucket 2), 01:30 UTC is 02:30 CET (bucket 3), also when given as a
    # Berlin wall-clock time with fold=1; 02:00 CET exactly opens bucket 3.
    calls = [
        rejected(dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)),
        rejected(dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)),
        rejected(berlin(2026, 10, 25, 2, 45, fold=1)),
        rejected(berlin(2026, 10, 25, 2, 0, fold=1)),
    ]
    rows = figures_by_interval(
        calls,
        start=berlin(2026, 10, 25),
        end=berlin(2026, 10, 26),
        interval=HOUR,
        tz="Europe/Berlin",
        target=TARGET,
    )
    assert [row[1].offered for row in rows[:5]] == [0, 0, 1, 3, 0]
    assert sum(row[1].offered for row in rows) == 4


def test_days_follow_local_midnight_across_both_dst_changes():
    # One call at 23:30 local on each day; the DST days are 23 and 25 hours long, one bucket each.
    for day, hours in [((2026, 3, 29), 23), ((2026, 10, 25), 25), ((2026, 11, 27), 24)]:
        start = berlin(*day)
        next_day = start + dt.timedelta(days=1)  # same wall clock, next date: local midnight
        late = rejected(berlin(*day, 23, 30))
        rows = figures_by_interval(
            [late],
            start=start,
            end=next_day,
            interval=dt.timedelta(days=1),
            tz="Europe/Berlin",
            target=TARGET,
        )
        assert [(bucket, result.offered) for bucket, result in rows] == [(start, 1)]
        assert (next_day.astimezone(dt.UTC) - start.astimezone(dt.UTC)) == hours * HOUR


def test_a_week_of_days_across_spring_forward():
    starts = interval_starts(
        start=berlin(2026, 3, 26), end=berlin(2026, 4, 2), interval=dt.timedelta(days=1), tz="Europe/Berlin"
    )
    assert [(start.day, start.hour, start.utcoffset()) for start in starts] == [
        (26, 0, HOUR),
        (27, 0, HOUR),
        (28, 0, HOUR),
        (29, 0, HOUR),
        (30, 0, 2 * HOUR),
        (31, 0, 2 * HOUR),
        (1, 0, 2 * HOUR),
    ]


def test_a_call_on_a_boundary_opens_the_later_bucket_and_the_end_is_exclusive():
    start, end = berlin(2026, 11, 27, 9), berlin(2026, 11, 27, 11)
    calls = [
        answered(10, at=berlin(2026, 11, 27, 9)),  # the start: first bucket
        answered(30, at=berlin(2026, 11, 27, 9, 59, 59)),  # first bucket
        answered(10, at=berlin(2026, 11, 27, 10)),  # exactly on the boundary: second bucket
        answered(10, at=berlin(2026, 11, 27, 11)),  # the end: left out
        answered(10, at=berlin(2026, 11, 27, 8, 59, 59)),  # before the start: left out
    ]
    rows = figures_by_interval(calls, start=start, end=end, interval=HOUR, tz="Europe/Berlin", target=TARGET)
    assert [bucket for bucket, _ in rows] == [start, berlin(2026, 11, 27, 10)]
    # First hour: 2 answered, 1 in target (10 s <= 20, 30 s > 20): SL 1 / 2. Second hour: 1 of 1.
    assert [(r.answered, r.service_level) for _, r in rows] == [(2, 0.5), (1, 1.0)]


def test_buckets_are_listed_even_when_empty():
    rows = figures_by_interval(
        [],
        start=berlin(2026, 11, 27),
        end=berlin(2026, 11, 27, 2),
        interval=dt.timedelta(minutes=30),
        tz="Europe/Berlin",
        target=TARGET,
    )
    assert [bucket.strftime("%H:%M") for bucket, _ in rows] == ["00:00", "00:30", "01:00", "01:30"]
    assert all(result.offered == 0 and result.service_level is None for _, result in rows)


@pytest.mark.parametrize(
    ("start", "interval"),
    [
        (berlin(2026, 11, 27, 0, 10), dt.timedelta(minutes=15)),  # not on a quarter hour
        (berlin(2026, 11, 27, 0, 30), HOUR),  # not on an hour
        (berlin(2026, 11, 27, 1), dt.timedelta(days=1)),  # not local midnight
        (dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC), dt.timedelta(days=1)),  # UTC, not Berlin, midnight
        (berlin(2026, 11, 27), dt.timedelta(minutes=45)),  # not an allowed interval
        (dt.datetime(2026, 11, 27), HOUR),  # naive  # noqa: DTZ001
    ],
)
def test_bad_interval_bounds_are_refused(start, interval):
    with pytest.raises(ValueError):
        interval_starts(start=start, end=start + 4 * HOUR, interval=interval, tz="Europe/Berlin")


def test_other_zones_follow_their_own_wall_clock():
    # Kathmandu is UTC+05:45: its hours start at :15 UTC.
    starts = interval_starts(
        start=dt.datetime(2026, 11, 26, 18, 15, tzinfo=dt.UTC),
        end=dt.datetime(2026, 11, 26, 20, 15, tzinfo=dt.UTC),
        interval=HOUR,
        tz="Asia/Kathmandu",
    )
    assert [start.strftime("%H:%M") for start in starts] == ["00:00", "01:00"]


# --- properties ----------------------------------------------------------------------------------

WINDOW_START = berlin(2026, 10, 24)  # three days around the fall-back night
WINDOW = dt.timedelta(days=3)
INTERVALS = [dt.timedelta(minutes=15), dt.timedelta(minutes=30), HOUR, dt.timedelta(days=1)]


@st.composite
def calls_strategy(draw: st.DrawFn) -> CallFacts:
    offered = WINDOW_START + draw(st.integers(0, int(WINDOW.total_seconds()) - 1)) * SECOND
    outcome = draw(st.sampled_from(CallOutcome))
    wait = draw(st.integers(0, 600))
    pbx_wait = draw(st.booleans())
    talk, hold, wrapup = (draw(st.integers(0, 3600)) for _ in range(3))
    if outcome is CallOutcome.ANSWERED:
        return CallFacts(
            offered_at=offered,
            outcome=outcome,
            answered_at=offered + wait * SECOND,
            queue_wait_seconds=wait if pbx_wait else None,
            talk_seconds=talk,
            hold_seconds=hold,
            wrapup_seconds=wrapup,
        )
    ended = draw(st.one_of(st.none(), st.just(offered + wait * SECOND)))
    return CallFacts(
        offered_at=offered, outcome=outcome, ended_at=ended, queue_wait_seconds=wait if pbx_wait else None
    )


CALLS = st.lists(calls_strategy(), max_size=60)
TARGETS = st.builds(ServiceLevelTarget, st.integers(0, 120), st.integers(0, 100))


@FAST
@given(CALLS, TARGETS, st.integers(0, 30))
def test_service_level_is_a_share_and_orders_by_rule(calls, target, short):
    levels = {}
    for rule in AbandonedCounting:
        result = figures(calls, target=target, short_abandon_seconds=short, abandoned_counting=rule)
        assert (result.service_level is None) == (result.service_level_base == 0)
        if result.service_level is not None:
            assert 0 <= result.service_level <= 1
            assert result.service_level_met == (result.service_level * 100 >= target.percent - 1e-9)
        levels[rule] = result.service_level
    # Leaving more abandoned calls out of the base can only raise the share (the bases shrink in
    # that order, the numerator is the same).
    ordered = [
        levels[AbandonedCounting.COUNT_AS_MISSED],
        levels[AbandonedCounting.EXCLUDE_SHORT],
        levels[AbandonedCounting.EXCLUDE_ALL],
    ]
    known = [level for level in ordered if level is not None]
    assert known == sorted(known)
    # Once a base is empty, the bases of the rules that leave out more are empty too.
    assert ordered[: len(known)] == known


@FAST
@given(CALLS, st.integers(0, int(WINDOW.total_seconds())))
def test_counts_of_two_disjoint_intervals_add_up(calls, cut_seconds):
    cut = WINDOW_START + cut_seconds * SECOND
    before = [call for call in calls if call.offered_at < cut]
    after = [call for call in calls if call.offered_at >= cut]
    whole, first, second = (figures(part, target=TARGET) for part in (calls, before, after))
    for name in COUNTS:
        assert getattr(whole, name) == getattr(first, name) + getattr(second, name)
    waits = [w for w in (first.longest_wait, second.longest_wait) if w is not None]
    assert whole.longest_wait == (max(waits) if waits else None)


@FAST
@given(CALLS, st.lists(st.integers(0, 600), max_size=10))
def test_abandoned_calls_do_not_change_handle_time_or_speed_of_answer(calls, waits):
    more = calls + [abandoned(wait, at=WINDOW_START) for wait in waits]
    before, after = figures(calls, target=TARGET), figures(more, target=TARGET)
    assert after.average_handle_time == before.average_handle_time
    assert after.average_speed_of_answer == before.average_speed_of_answer
    assert after.abandoned == before.abandoned + len(waits)


@FAST
@given(CALLS)
def test_order_of_calls_does_not_matter(calls):
    assert figures(list(reversed(calls)), target=TARGET) == figures(calls, target=TARGET)


@FAST
@given(CALLS, st.sampled_from(INTERVALS))
def test_interval_counts_add_up_to_the_whole_range(calls, interval):
    end = WINDOW_START + dt.timedelta(days=3)  # local midnight three days on (a 73-hour range)
    rows = figures_by_interval(
        calls, start=WINDOW_START, end=end, interval=interval, tz="Europe/Berlin", target=TARGET
    )
    whole = figures(calls, target=TARGET)
    for name in COUNTS:
        assert sum(getattr(result, name) for _, result in rows) == getattr(whole, name)
    bucket_utc = [bucket.astimezone(dt.UTC) for bucket, _ in rows]
    assert bucket_utc == sorted(set(bucket_utc))
    assert len(rows) == (3 if interval == dt.timedelta(days=1) else 73 * HOUR // interval)
