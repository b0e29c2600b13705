"""GET /api/reporting/calls: a tenant's inbound call figures over a period, for its supervisors.

One day of Energie Nord's calls is written out below and the figures are counted by hand from it, so a
reader can check every expected number against the table without running the code.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from care.calls.models import AbandonedCounting, Call, CallOutcome, Direction, Provider, ServiceLevelTarget
from care.reporting.calls import call_figures_of, local_days

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 10)  # a Tuesday in winter time: Berlin is UTC+1
URL = "/api/reporting/calls"


def client_for(user) -> Client:
    client = Client()
    client.force_login(getattr(user, "user", user))  # agent fixtures are Agent profiles
    return client


def at(hh_mm_ss: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hh_mm_ss), tzinfo=BERLIN)


def add_call(tenant, number: int, offered: dt.datetime, outcome: str, **fields) -> Call:
    fields.setdefault("direction", Direction.INBOUND)
    return Call.objects.create(
        tenant=tenant,
        provider=Provider.GENERIC,
        external_id=f"call-{number}",
        caller="+4930123456" + f"{number:02d}",
        dialled="+494012345678",
        offered_at=offered,
        outcome=outcome,
        **fields,
    )


S = dt.timedelta(seconds=1)
A, AB, REJ, VM = CallOutcome.ANSWERED, CallOutcome.ABANDONED, CallOutcome.REJECTED, CallOutcome.VOICEMAIL


@pytest.fixture
def day_of_calls(tenant_a, tenant_b):
    """Ten counted calls of Energie Nord on DAY (local times), and five that must not be counted.

    | #  | offered | outcome   | wait                      | talk+hold+wrap-up | 80/20 in target |
    |----|---------|-----------|---------------------------|-------------------|-----------------|
    | 1  | 09:00   | answered  | 10 (queue_wait)           | 200+20+30 = 250   | yes             |
    | 2  | 09:05   | answered  | 15 (answered_at)          | 100+0+50 = 150    | yes             |
    | 3  | 09:20   | answered  | 45 (queue_wait)           | 300+0+60 = 360    | no              |
    | 4  | 09:40   | answered  | 20 (queue_wait, = target) | 90+10+0 = 100     | yes             |
    | 5  | 10:10   | abandoned | 3 (ended_at): short       |                   |                 |
    | 6  | 10:30   | abandoned | 60 (queue_wait): long     |                   |                 |
    | 7  | 11:00   | rejected  | 0                         |                   |                 |
    | 8  | 11:15   | voicemail | unknown                   |                   |                 |
    | 9  | 11:45   | answered  | 5 (queue_wait)            | 140+0+0 = 140     | yes             |
    | 10 | 12:00   | abandoned | 5 (ended_at, = threshold): short |            |                 |
    """
    add_call(tenant_a, 1, at("09:00"), A, answered_at=at("09:00:10"), queue_wait_seconds=10,
             talk_seconds=200, hold_seconds=20, wrapup_seconds=30)  # fmt: skip
    add_call(tenant_a, 2, at("09:05"), A, answered_at=at("09:05:15"), talk_seconds=100, wrapup_seconds=50)
    add_call(tenant_a, 3, at("09:20"), A, answered_at=at("09:21:00"), queue_wait_seconds=45,
             talk_seconds=300, wrapup_seconds=60)  # fmt: skip
    add_call(tenant_a, 4, at("09:40"), A, answered_at=at("09:40:25"), queue_wait_seconds=20,
             talk_seconds=90, hold_seconds=10)  # fmt: skip
    add_call(tenant_a, 5, at("10:10"), AB, ended_at=at("10:10:03"))
    add_call(tenant_a, 6, at("10:30"), AB, ended_at=at("10:31:30"), queue_wait_seconds=60)
    add_call(tenant_a, 7, at("11:00"), REJ, ended_at=at("11:00:01"))
    add_call(tenant_a, 8, at("11:15"), VM, ended_at=at("11:17"))
    add_call(tenant_a, 9, at("11:45"), A, answered_at=at("11:45:05"), queue_wait_seconds=5, talk_seconds=140)
    add_call(tenant_a, 10, at("12:00"), AB, ended_at=at("12:00:05"))
    # Not counted: outbound; still waiting (no outcome yet); the day before and after (local midnight);
    # another tenant's call on the same day.
    add_call(tenant_a, 11, at("13:00"), "", direction=Direction.OUTBOUND, talk_seconds=60)
    add_call(tenant_a, 12, at("13:30"), "")
    add_call(tenant_a, 13, at("23:59:59", DAY - dt.timedelta(days=1)), AB, ended_at=at("00:00:30"))
    add_call(tenant_a, 14, at("00:00", DAY + dt.timedelta(days=1)), REJ)
    add_call(tenant_b, 15, at("10:00"), REJ)


EXPECTED_TOTAL = {
    "offered": 10,
    "answered": 5,
    "abandoned": 3,
    "abandoned_short": 2,  # calls 5 and 10
    "rejected": 1,
    "voicemail": 1,
    "missed": 0,
    "answered_in_target": 4,  # calls 1, 2, 4, 9
    "service_level_base": 8,  # 10 offered - 2 short abandons
    "service_level": 0.5,  # 4 / 8
    "service_level_met": False,  # 50 % < 80 %
    "average_speed_of_answer": 19.0,  # (10 + 15 + 45 + 20 + 5) / 5
    "average_handle_time": 200.0,  # (250 + 150 + 360 + 100 + 140) / 5
    "abandonment_rate": 0.3333,  # 3 / (10 - 1 rejected)
    "rejection_rate": 0.1,  # 1 / 10
    "longest_wait": 60.0,  # call 6
}


def query(**params: str) -> dict[str, str]:
    return {"tenant": "ENN", "from": DAY.isoformat(), "to": DAY.isoformat(), **params}


def test_a_day_of_calls_gives_the_hand_counted_figures(day_of_calls, supervisor):
    response = client_for(supervisor).get(URL, query(tenant="enn"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["tenant"] == "ENN"
    assert body["time_zone"] == "Europe/Berlin"
    assert (body["from"], body["to"]) == ("2026-03-10", "2026-03-10")
    assert body["target"] == {
        "answered_within_seconds": 20,
        "percent": 80,
        "short_abandon_seconds": 5,
        "abandoned_counting": "exclude_short",
    }
    assert body["total"] == EXPECTED_TOTAL
    assert "intervals" not in body


def test_hourly_intervals_in_the_tenants_zone(day_of_calls, supervisor):
    body = client_for(supervisor).get(URL, query(interval="1h")).json()
    intervals = body["intervals"]
    assert len(intervals) == 24
    assert intervals[0]["start"] == "2026-03-10T00:00:00+01:00"
    by_hour = {row["start"][11:16]: row for row in intervals if row["offered"]}
    assert set(by_hour) == {"09:00", "10:00", "11:00", "12:00"}
    nine, ten, eleven, noon = (by_hour[hour] for hour in ("09:00", "10:00", "11:00", "12:00"))
    # 09:00: calls 1-4, three of four answered in target.
    assert (nine["offered"], nine["answered_in_target"], nine["service_level"]) == (4, 3, 0.75)
    assert (nine["average_speed_of_answer"], nine["average_handle_time"]) == (22.5, 215.0)
    # 10:00: calls 5 (short) and 6 (long abandon): base 1, nothing answered.
    assert (ten["abandoned"], ten["abandoned_short"], ten["service_level"]) == (2, 1, 0.0)
    assert ten["average_speed_of_answer"] is None
    # 11:00: rejected, voicemail, one answered in 5 s.
    assert (eleven["offered"], eleven["rejected"], eleven["voicemail"], eleven["service_level"]) == (
        3,
        1,
        1,
        0.3333,
    )
    # 12:00: one short abandon only: no base, no service level, but an abandonment rate.
    assert (noon["service_level_base"], noon["service_level"], noon["abandonment_rate"]) == (0, None, 1.0)
    assert sum(row["offered"] for row in intervals) == EXPECTED_TOTAL["offered"]


def test_the_tenants_contracted_target_is_used(day_of_calls, supervisor, tenant_a):
    ServiceLevelTarget.objects.create(
        tenant=tenant_a,
        answered_within_seconds=30,
        percent=40,
        short_abandon_seconds=5,
        abandoned_counting=AbandonedCounting.COUNT_AS_MISSED,
    )
    body = client_for(supervisor).get(URL, query()).json()
    total = body["total"]
    # Within 30 s: calls 1, 2, 4, 9 (call 3 waited 45 s); every call is in the base.
    assert (total["answered_in_target"], total["service_level_base"], total["service_level"]) == (4, 10, 0.4)
    assert total["service_level_met"] is True  # 40 % >= 40 %
    assert body["target"]["abandoned_counting"] == "count_as_missed"


def test_the_selector_reads_the_same_figures(day_of_calls, tenant_a, django_assert_num_queries):
    start, end = local_days(tenant_a, DAY, DAY)
    with django_assert_num_queries(2):  # the target, the calls
        report = call_figures_of(tenant=tenant_a, start=start, end=end, interval=dt.timedelta(days=1))
    assert report.total.offered == 10
    assert report.by_interval is not None
    assert [(start.date(), figures.offered) for start, figures in report.by_interval] == [(DAY, 10)]


def test_query_count_does_not_grow_with_the_calls(
    day_of_calls, supervisor, tenant_a, django_assert_num_queries
):
    client = client_for(supervisor)
    client.get(URL, query())  # warm the session
    with django_assert_num_queries(6) as captured:
        assert client.get(URL, query(interval="15m")).status_code == 200
    for number in range(20, 40):
        add_call(tenant_a, number, at("15:00"), A, queue_wait_seconds=3)
    with django_assert_num_queries(len(captured.captured_queries)):
        assert client.get(URL, query(interval="15m")).json()["total"]["offered"] == 30


def test_another_companys_figures_are_answered_like_an_unknown_tenant(day_of_calls, supervisor):
    client = client_for(supervisor)
    theirs, unknown = client.get(URL, query(tenant="TSU")), client.get(URL, query(tenant="NOPE"))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() == {"detail": "No such tenant."}


def test_a_supervisor_of_the_other_tenant_sees_only_their_call(day_of_calls, tenant_b):
    from care.accounts.models import Role
    from tests.factories.accounts import make_agent

    theirs = make_agent(tenants=[tenant_b], email="sup-b@care.test", role=Role.SUPERVISOR)
    client = client_for(theirs)
    assert client.get(URL, query()).status_code == 404
    day = query(tenant="TSU")
    assert client.get(URL, day).json()["total"]["rejected"] == 1


def test_agents_and_portal_users_are_refused(day_of_calls, agent, portal_user):
    assert client_for(agent).get(URL, query()).status_code == 403
    assert client_for(portal_user).get(URL, query()).status_code == 403
    assert Client().get(URL, query()).status_code == 403


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"tenant": ""}, {"tenant": ["This field may not be blank."]}),
        (
            {"from": "10.03.2026"},
            {"from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        ({"from": "2026-03-11"}, {"to": ["The period ends before it starts."]}),
        ({"interval": "5m"}, {"interval": ['"5m" is not a valid choice.']}),
        (
            {"from": "2026-01-01", "interval": "1h"},
            {"interval": ["With intervals shorter than a day, a period is at most 31 days long."]},
        ),
        ({"from": "2025-01-01"}, {"to": ["A period is at most 366 days long."]}),
    ],
)
def test_bad_queries_get_400_messages(supervisor, tenant_a, params, errors):
    response = client_for(supervisor).get(URL, query(**params))
    assert response.status_code == 400
    assert response.json() == errors


def test_tenant_is_required(supervisor):
    response = client_for(supervisor).get(URL, {"from": "2026-03-10", "to": "2026-03-10"})
    assert response.json() == {"tenant": ["This field is required."]}


def test_a_month_of_days_with_daily_intervals(day_of_calls, supervisor):
    body = (
        client_for(supervisor)
        .get(URL, query(**{"from": "2026-03-01", "to": "2026-03-31", "interval": "1d"}))
        .json()
    )
    # The 29th is the spring-forward day: its interval still starts at local midnight.
    assert [row["start"] for row in body["intervals"]][28:30] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]
    assert [row["offered"] for row in body["intervals"]][8:11] == [1, 10, 1]  # calls 13 and 14 now count
