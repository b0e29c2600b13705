"""The demo's day of phone calls (care/demo/calls.py), replayed through the phone pipeline.

Only the phone part of the demo is seeded (tenants, people, lines, codes, targets and yesterday's
calls: ``seed_demo_calls``), once for the module. The expected numbers are counted by hand from the
table in care/demo/calls.py: per tenant 8 calls (4 answered, 2 abandoned of which 1 short, 1
rejected, 1 voicemail), 5 tickets and 6 timeline entries; five tenants.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from care.accounts.models import Agent, Presence
from care.calls.models import Call, CallCode, CallOutcome, Campaign, PhoneLine, ServiceLevelTarget
from care.core.channels import Channel
from care.demo.build import seed_demo_calls
from care.demo.calls import DAY, call_id, demo_call_events
from care.demo.data import PHONE_LINES
from care.reporting.calls import call_figures_of, local_days
from care.tenants.models import Tenant
from care.tickets.models import Interaction, Ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TENANT_COUNT = 5


@pytest.fixture(scope="module")
def seeded_at(django_db_setup, django_db_blocker):
    """The phone part of the demo, seeded once for this module (and rolled back after it)."""
    now = timezone.now()
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        applied = seed_demo_calls(now=now)
        yield now, applied
        transaction.set_rollback(True)


def yesterday(tenant: Tenant, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(tenant.time_zone)).date() - dt.timedelta(days=1)


def slot_call(tenant: Tenant, now: dt.datetime, number: int) -> Call:
    slot = next(slot for slot in DAY if slot.number == number)
    return Call.objects.get(tenant=tenant, external_id=call_id(tenant.code, yesterday(tenant, now), slot))


def test_the_generated_day_is_forty_calls_of_a_hundred_and_forty_events(seeded_at):
    now, applied = seeded_at
    events = demo_call_events(now)
    # Per tenant: 4 answered calls x 4 events, 2 abandoned x 3, 1 rejected x 2, 1 voicemail x 4 = 28.
    assert len(events) == applied == 28 * TENANT_COUNT
    assert len({event["call_id"] for event in events}) == 40
    assert events == demo_call_events(now)  # deterministic


def test_the_replay_made_the_hand_counted_calls_and_tickets(seeded_at):
    outcomes = {outcome: Call.objects.filter(outcome=outcome).count() for outcome in CallOutcome}
    assert outcomes == {
        CallOutcome.ANSWERED: 20,
        CallOutcome.ABANDONED: 10,
        CallOutcome.REJECTED: 5,
        CallOutcome.VOICEMAIL: 5,
        CallOutcome.MISSED: 0,
    }
    # Answered (caller 01 twice: one ticket), voicemail and the long abandon make tickets.
    assert Ticket.objects.count() == 5 * TENANT_COUNT
    assert Ticket.objects.exclude(channel=Channel.PHONE).count() == 0
    assert Interaction.objects.filter(channel=Channel.PHONE).count() == 6 * TENANT_COUNT
    assert Call.objects.filter(ticket__isnull=False).count() == 6 * TENANT_COUNT
    assert set(Call.objects.filter(ticket__isnull=True).values_list("outcome", flat=True)) == {
        CallOutcome.ABANDONED,  # the short one
        CallOutcome.REJECTED,
    }


def test_the_same_customers_two_calls_share_a_ticket(seeded_at):
    now, _applied = seeded_at
    for tenant in Tenant.objects.filter(code__in=[line.tenant for line in PHONE_LINES]):
        first, again = slot_call(tenant, now, 1), slot_call(tenant, now, 5)
        assert first.customer_id == again.customer_id is not None
        assert first.ticket_id == again.ticket_id is not None
        assert Interaction.objects.filter(ticket_id=first.ticket_id).count() == 2
        assert slot_call(tenant, now, 3).ticket_id is None  # hung up after 3 s: no call back
        assert slot_call(tenant, now, 6).ticket_id is not None  # waited 95 s: worth a call back


def test_the_lines_agents_and_languages(seeded_at):
    now, _applied = seeded_at
    telesol = Tenant.objects.get(code="TSOL")
    assert slot_call(telesol, now, 1).language == "es"
    assert slot_call(telesol, now, 2).language == "en"  # IVR "2"
    answered = slot_call(telesol, now, 8)
    assert answered.agent is not None
    assert answered.agent.user.email == "lucia@care.example"
    assert PhoneLine.objects.get(tenant=telesol).ivr_menu == {
        "1": {"language": "es"},
        "2": {"language": "en"},
        "3": {"language": "fr"},
    }
    # Every call has ended, so nobody is left on a call.
    assert not Agent.objects.filter(
        presence=Presence.ON_CALL, phone_extension__in=["203", "205", "209", "210"]
    )
    assert CallCode.objects.filter(tenant__code="KOOP", is_sale=True).count() == 1
    assert Campaign.objects.filter(tenant__code="KOOP").exists()


def test_telesols_figures_match_a_hand_count(seeded_at):
    now, _applied = seeded_at
    telesol = Tenant.objects.get(code="TSOL")
    target = ServiceLevelTarget.objects.get(tenant=telesol)
    assert (target.answered_within_seconds, target.percent, target.short_abandon_seconds) == (30, 85, 8)
    day = yesterday(telesol, now)
    start, end = local_days(telesol, day, day)
    figures = call_figures_of(tenant=telesol, start=start, end=end).total
    assert (figures.offered, figures.answered, figures.abandoned, figures.rejected, figures.voicemail) == (
        8,
        4,
        2,
        1,
        1,
    )
    assert figures.abandoned_short == 1  # 3 s <= 8 s
    assert figures.answered_in_target == 3  # waits 12, 28, 8 (45 is over 30)
    assert figures.service_level_base == 7  # 8 offered - 1 short abandon
    assert figures.service_level == pytest.approx(3 / 7)
    assert figures.service_level_met is False  # 43 % < 85 %
    assert figures.average_speed_of_answer == pytest.approx((12 + 28 + 45 + 8) / 4)
    assert figures.average_handle_time == pytest.approx((240 + (410 + 30) + 180 + (300 + 60)) / 4)
    assert figures.abandonment_rate == pytest.approx(2 / 7)  # of the 7 admitted to the queue
    assert figures.rejection_rate == pytest.approx(1 / 8)
    assert figures.longest_wait == 95


def test_a_tenant_without_a_target_is_counted_at_80_20(seeded_at):
    now, _applied = seeded_at
    nordlicht = Tenant.objects.get(code="SWN")
    day = yesterday(nordlicht, now)
    start, end = local_days(nordlicht, day, day)
    figures = call_figures_of(tenant=nordlicht, start=start, end=end).total
    # Within 20 s: waits 12 and 8; short abandons up to 5 s: the 3 s one.
    assert (figures.answered_in_target, figures.service_level_base) == (2, 7)


def test_replaying_again_changes_nothing(seeded_at):
    now, _applied = seeded_at

    def state() -> tuple[object, ...]:
        calls = sorted(
            Call.objects.values_list(
                "external_id",
                "outcome",
                "status",
                "ticket_id",
                "interaction_id",
                "queue_wait_seconds",
                "events_seen",
            )
        )
        return calls, Ticket.objects.count(), Interaction.objects.count()

    before = state()
    assert seed_demo_calls(now=now) == 0
    assert state() == before
