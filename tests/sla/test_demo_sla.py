"""The SLA issue's "Done when", played in the demo world with the clock in the test's hands.

"In the demo, tickets show live SLA countdowns; one left alone breaches on time, once, and escalates
as its policy says." The demo is seeded once for the module; its tickets' clocks were rebuilt from
their back-dated history. New work arrives at a moment the test chooses: ``timezone.now`` is patched
while the pipeline runs, and the engine is driven with explicit ``now=`` afterwards, so due times can
be checked against the tenant's calendar by hand.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from care.accounts.models import Agent
from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundStatus, Mailbox
from care.contacts.models import Customer
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.demo.build import seed_demo
from care.demo.data import CLOSING_DAYS, ESCALATIONS, SLA_POLICIES
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue
from care.routing.services import route_item
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.selectors import clocks_of
from care.sla.services import sla_event_apply_actions, sla_fire
from care.sla.signals import sla_event_recorded
from care.tenants.calendar import ServiceCalendar, calendar_of, calendars_of
from care.tenants.models import Tenant, TenantHoliday
from care.tickets.models import Direction, Interaction, Priority, Ticket, TicketEvent
from care.tickets.services import ticket_create
from care.tickets.status import ACTIONABLE, Status

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MADRID, BERLIN = ZoneInfo("Europe/Madrid"), ZoneInfo("Europe/Berlin")
SECOND, MINUTE = dt.timedelta(seconds=1), dt.timedelta(minutes=1)


@pytest.fixture(scope="module")
def seeded_at(django_db_setup, django_db_blocker):
    """The demo, seeded once for this module (and rolled back after it); each test runs in a savepoint."""
    now = timezone.now()
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        seed_demo(now=now)
        yield now
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _media(media_root, seeded_at):
    """Every test runs in the seeded demo, and stores what it receives in a temporary directory."""


# --- Helpers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def clock_at(moment: dt.datetime) -> Iterator[None]:
    """The services' "now" (``timezone.now``, ``auto_now_add``) is ``moment`` inside the block."""
    with mock.patch("django.utils.timezone.now", return_value=moment.astimezone(dt.UTC)):
        yield


def at(day: dt.date, clock: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), tzinfo=zone)


def calendar(code: str) -> ServiceCalendar:
    return calendar_of(Tenant.objects.get(code=code))


def upcoming(weekday: int, code: str, *, open_days_after: tuple[int, ...] = ()) -> dt.date:
    """The next ``weekday`` (Monday 0) two days ahead or more (after all the demo's history) that is
    no holiday of tenant ``code``, nor are the days ``open_days_after`` it."""
    tenant_calendar = calendar(code)
    day = timezone.now().date() + dt.timedelta(days=2)
    while day.weekday() != weekday or any(
        tenant_calendar.is_holiday(day + dt.timedelta(days=offset)) for offset in (0, *open_days_after)
    ):
        day += dt.timedelta(days=1)
    return day


def spanish_email(sent_at: dt.datetime) -> bytes:
    message = EmailMessage()
    message["From"] = "Marta Gómez <marta.gomez@correo.example>"
    message["To"] = "support@telesol.example"
    message["Subject"] = "Sin conexión de fibra desde ayer"
    message["Message-ID"] = "<fibra-sla@correo.example>"
    message["Date"] = format_datetime(sent_at)
    message.set_content("Hola, desde ayer no tengo conexión de fibra en casa. ¿Pueden revisar la línea?")
    return message.as_bytes()


def receive(raw: bytes) -> Ticket:
    """The email as the HTTP endpoint takes it in: stored, then processed (as the worker would)."""
    mailbox = Mailbox.objects.get(address="support@telesol.example")
    message, created = email_receive(mailbox=mailbox, raw=raw, source="cli", process=False)
    assert created
    processed = process_stored(message.pk)
    assert processed is not None
    assert (processed.status, processed.outcome) == (InboundStatus.PROCESSED, "created")
    assert processed.ticket is not None
    return processed.ticket


def clocks(ticket: Ticket) -> dict[str, SlaClock]:
    return {clock.target: clock for clock in SlaClock.objects.filter(ticket=ticket).select_related("policy")}


@contextlib.contextmanager
def recorded_events() -> Iterator[list[Any]]:
    """The events ``sla_event_recorded`` announces to the realtime layer."""
    seen: list[Any] = []

    def listen(sender: Any, *, event: SlaEvent, **_: Any) -> None:
        seen.append(event.pk)

    sla_event_recorded.connect(listen, dispatch_uid="test_demo_sla_listener")
    try:
        yield seen
    finally:
        sla_event_recorded.disconnect(dispatch_uid="test_demo_sla_listener")


# --- The seeded configuration ----------------------------------------------------------------------


def test_every_tenant_has_the_policies_of_the_table_valid_and_in_order():
    for code in {spec.tenant for spec in SLA_POLICIES}:
        specs = [spec for spec in SLA_POLICIES if spec.tenant == code]
        policies = list(SlaPolicy.objects.filter(tenant__code=code).order_by("position"))
        assert [p.name for p in policies] == [spec.name for spec in specs]
        for policy, spec in zip(policies, specs, strict=True):
            policy.full_clean()  # the admin's checks, the escalation queue's tenant included
            assert (policy.first_response_minutes, policy.next_response_minutes) == (
                spec.first_response,
                spec.next_response,
            )
            assert (policy.resolution_minutes, policy.priority, policy.is_active) == (
                spec.resolution,
                spec.priority,
                True,
            )
    standard = SlaPolicy.objects.get(tenant__code="SWN", name="Standard")
    assert (standard.first_response_minutes, standard.next_response_minutes) == (4 * 60, 8 * 60)
    assert (standard.resolution_minutes, standard.warning_percent, standard.business_hours) == (
        3 * 12 * 60,
        75,
        True,
    )
    assert SlaPolicy.objects.get(tenant__code="SWN", name="Hohe Priorität").raise_priority_on_breach
    telesol = SlaPolicy.objects.filter(tenant__code="TSOL").select_related("escalate_to_queue")
    assert {p.escalate_to_queue.name for p in telesol} == {ESCALATIONS}
    assert not SlaPolicy.objects.filter(tenant__code="CATS", business_hours=True).exists()
    # The escalation queue sits behind TeleSol's catch-all queue: only breaches send work there.
    queues = list(RoutingQueue.objects.filter(tenant__code="TSOL").order_by("position"))
    assert queues[-1].name == ESCALATIONS
    assert not QueuedItem.objects.filter(queue__name=ESCALATIONS).exists()


def test_the_closing_days_are_seeded_and_closed(seeded_at):
    swn = calendar("SWN")
    for code, month, day, name in CLOSING_DAYS:
        for year in (seeded_at.year, seeded_at.year + 1):
            assert TenantHoliday.objects.get(tenant__code=code, date=dt.date(year, month, day)).name == name
            assert swn.is_holiday(dt.date(year, month, day))
    assert not calendar("TSOL").closed_dates  # one tenant's own days, not everyone's


# --- The seeded tickets: live countdowns, consistent with their history -------------------------------


def test_waiting_demo_tickets_show_live_countdowns(seeded_at):
    left: list[int] = []
    tickets = Ticket.objects.select_related("tenant").prefetch_related("sla_clocks")
    for ticket in tickets:
        statuses = {status.target: status for status in clocks_of(ticket, now=seeded_at)}
        running = [c for c in ticket.sla_clocks.all() if c.state == ClockState.RUNNING]
        if ticket.status in (*ACTIONABLE, Status.ON_HOLD):  # on hold does not pause: the client pays
            assert running, ticket
            assert ticket.sla_due_at == min(c.due_at for c in running)
            soonest = statuses[min(running, key=lambda c: c.due_at).target]
            assert soonest.seconds_left == int((ticket.sla_due_at - seeded_at).total_seconds())
            assert soonest.breached == (soonest.seconds_left < 0)  # overdue history shows as breached
            left.append(soonest.seconds_left)
        elif ticket.status == Status.PENDING:
            assert not running
            assert ticket.sla_due_at is None
            assert statuses[Target.RESOLUTION].state == ClockState.PAUSED
            assert statuses[Target.RESOLUTION].seconds_left is None
        else:
            assert not running
            assert statuses[Target.RESOLUTION].state == ClockState.MET
    assert min(left) < 0 < max(left)
    # Queues sort on the same due time.
    for item in QueuedItem.objects.select_related("ticket"):
        assert item.sla_due_at == item.ticket.sla_due_at


def test_the_clocks_follow_each_tickets_back_dated_history(seeded_at):
    calendars = calendars_of(Tenant.objects.all())
    round_the_clock = {t.pk: ServiceCalendar(time_zone=t.time_zone, weekly={}) for t in Tenant.objects.all()}
    first_replies = dict(  # latest first, so the earliest reply of each ticket is what stays
        Interaction.objects.filter(direction=Direction.OUTBOUND)
        .order_by("-occurred_at")
        .values_list("ticket_id", "occurred_at")
    )
    tickets = {ticket.pk: ticket for ticket in Ticket.objects.all()}
    clocks = list(SlaClock.objects.select_related("policy"))
    assert {clock.ticket_id for clock in clocks if clock.target == Target.FIRST_RESPONSE} == set(tickets)
    for clock in clocks:
        ticket = tickets[clock.ticket_id]
        # Nothing is left of the clocks the services started while the seeding ran.
        assert ticket.created_at <= clock.started_at < seeded_at
        assert clock.policy.tenant_id == ticket.tenant_id
        tenant_calendar = (calendars if clock.business_hours else round_the_clock)[ticket.tenant_id]
        if clock.target == Target.FIRST_RESPONSE:
            assert clock.started_at == ticket.created_at
            if clock.state == ClockState.MET:
                assert clock.met_at == first_replies[ticket.pk] == ticket.first_response_at
            if clock.state == ClockState.RUNNING:  # never paused: planned from the ticket's creation
                assert clock.due_at == tenant_calendar.add(
                    ticket.created_at, dt.timedelta(seconds=clock.budget_seconds)
                )
        if clock.state == ClockState.PAUSED:
            assert clock.paused_at == ticket.status_changed_at  # when the plan set it pending
        if clock.target == Target.RESOLUTION and clock.state == ClockState.MET:
            assert clock.met_at == ticket.solved_at


def test_overdue_history_is_breached_once_at_its_due_time_and_takes_no_actions(seeded_at):
    breached = SlaClock.objects.filter(breached_at__isnull=False)
    assert breached.exists()
    breaches = {event.clock_id: event for event in SlaEvent.objects.filter(kind=SlaEvent.Kind.BREACH)}
    assert set(breaches) == set(breached.values_list("pk", flat=True))  # one each, no more
    for clock in SlaClock.objects.all():
        if clock.state == ClockState.RUNNING:
            assert clock.is_breached == (clock.due_at <= seeded_at)
        if clock.state == ClockState.MET and clock.due_at is not None:
            assert clock.is_breached == (clock.met_at > clock.due_at)  # a late reply is still a breach
        if clock.is_breached:
            event = breaches[clock.pk]
            # Fired at the instant its timer would have, not when the demo was seeded.
            assert clock.breached_at == event.created_at == event.due_at
    # The history's warnings and breaches are done: no action storm after the seeding commits.
    assert not SlaEvent.objects.filter(actions_done_at__isnull=True).exists()
    assert not RoutingDecision.objects.filter(kind=RoutingDecision.Kind.OVERFLOWED).exists()
    # And firing again at the seeding's moment finds nothing new.
    assert sla_fire(now=seeded_at) == {"warning": 0, "breach": 0}


# --- The story -------------------------------------------------------------------------------------


def test_a_telesol_email_left_alone_breaches_on_time_once_and_is_escalated():
    friday = upcoming(4, "TSOL", open_days_after=(1, 3, 4))  # Saturday, Monday and Tuesday open too
    saturday, tuesday = friday + dt.timedelta(days=1), friday + dt.timedelta(days=4)
    sent = at(friday, "20:30", MADRID)  # TeleSol closes at 21:00 on weekdays, opens 10-14 on Saturday

    with clock_at(sent):
        ticket = receive(spanish_email(sent))

    assert (ticket.tenant.code, ticket.created_at) == ("TSOL", sent)
    by_target = clocks(ticket)
    assert set(by_target) == {Target.FIRST_RESPONSE, Target.RESOLUTION}
    first, resolution = by_target[Target.FIRST_RESPONSE], by_target[Target.RESOLUTION]
    assert first.policy.name == "Estándar"
    # First response in 2 h of service time: 30 min on Friday, 90 min from Saturday 10:00; the warning
    # at 75 % (90 min): 30 + 60.
    assert (first.warn_at, first.due_at) == (at(saturday, "11:00", MADRID), at(saturday, "11:30", MADRID))
    # Resolution in 24 h: Friday 0.5 + Saturday 4 + Monday 12 = 16.5 h, then 7.5 h on Tuesday from
    # 09:00; the warning at 18 h: 1.5 h into Tuesday.
    assert (resolution.warn_at, resolution.due_at) == (
        at(tuesday, "10:30", MADRID),
        at(tuesday, "16:30", MADRID),
    )
    # The automatic acknowledgement went out, and is not a response.
    assert Interaction.objects.filter(ticket=ticket, direction=Direction.OUTBOUND).count() == 1
    assert first.state == ClockState.RUNNING
    ticket.refresh_from_db()
    item = QueuedItem.objects.get(ticket=ticket)
    assert ticket.sla_due_at == item.sla_due_at == first.due_at

    # The countdown, a quarter of an hour later: 14 h 45 min of wall-clock time to Saturday 11:30.
    countdown = clocks_of(ticket, now=sent + 15 * MINUTE)
    assert [(s.target, s.seconds_left, s.breached) for s in countdown] == [
        (Target.FIRST_RESPONSE, (14 * 60 + 45) * 60, False),
        (Target.RESOLUTION, int((resolution.due_at - sent - 15 * MINUTE).total_seconds()), False),
    ]

    # Left alone: the clocks' timers fire at their instants (``fire_clock`` calls sla_fire like this).
    timers = [first.pk, resolution.pk]
    assert sla_fire(clock_ids=timers, now=first.warn_at - SECOND) == {"warning": 0, "breach": 0}
    assert sla_fire(clock_ids=timers, now=first.warn_at) == {"warning": 1, "breach": 0}
    assert sla_fire(clock_ids=timers, now=first.due_at - SECOND) == {"warning": 0, "breach": 0}
    assert sla_fire(clock_ids=timers, now=first.due_at + SECOND) == {"warning": 0, "breach": 1}
    assert sla_fire(clock_ids=timers, now=first.due_at + MINUTE) == {"warning": 0, "breach": 0}
    breach = SlaEvent.objects.get(ticket=ticket, kind=SlaEvent.Kind.BREACH)
    assert (breach.target, breach.due_at) == (Target.FIRST_RESPONSE, first.due_at)
    overdue = clocks_of(ticket, now=first.due_at + SECOND)[0]  # most urgent first
    assert (overdue.target, overdue.seconds_left, overdue.breached) == (Target.FIRST_RESPONSE, -1, True)

    # The breach's actions (the ``apply_actions`` task): routed again through the escalation queue.
    with clock_at(first.due_at + SECOND), recorded_events() as announced:
        actions = sla_event_apply_actions(event_id=breach.pk)
        assert sla_event_apply_actions(event_id=breach.pk) == []  # once

    assert actions == ["notified the assignee and the supervisors", f"routed again through {ESCALATIONS}"]
    assert announced == [breach.pk]
    escalated = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.OVERFLOWED)
    assert (escalated.queue_name, escalated.reason) == (ESCALATIONS, "SLA breached")
    item = QueuedItem.objects.select_related("queue").get(ticket=ticket)
    assert (item.queue.name, item.state) == (ESCALATIONS, QueuedItem.State.WAITING)
    assert Ticket.objects.get(pk=ticket.pk).priority == Priority.NORMAL  # Estándar does not raise it

    # There anyone authorised who speaks Spanish at B2 takes it (TeleSol is open on Saturday morning).
    decision = route_item(item_id=item.pk, now=first.due_at + 2 * SECOND)
    assert decision is not None
    assert (decision.kind, decision.queue_name) == (RoutingDecision.Kind.ASSIGNED, ESCALATIONS)
    taker = Agent.objects.get(pk=decision.agent_id)
    assert taker.authorisations.filter(tenant=ticket.tenant).exists()
    assert taker.languages.get(language="es").proficiency >= Proficiency.B2


def test_a_high_priority_breach_raises_the_priority_and_the_urgent_policy_applies():
    tuesday = upcoming(1, "SWN", open_days_after=(1,))
    opened = at(tuesday, "10:00", BERLIN)  # Stadtwerke Nordlicht serves 08:00-20:00 on weekdays
    swn = Tenant.objects.get(code="SWN")
    with clock_at(opened):
        ticket = ticket_create(
            tenant=swn,
            customer=Customer.objects.filter(tenant=swn).order_by("pk").first(),
            channel=Channel.PHONE,
            subject="Stromzähler zeigt Fehler E5",
            priority=Priority.HIGH,
        )
    first = clocks(ticket)[Target.FIRST_RESPONSE]
    assert (first.policy.name, first.due_at) == ("Hohe Priorität", at(tuesday, "11:00", BERLIN))
    # Resolution in 16 h: 10 h on Tuesday, then Wednesday 08:00 + 6 h.
    assert clocks(ticket)[Target.RESOLUTION].due_at == at(tuesday + dt.timedelta(days=1), "14:00", BERLIN)

    breached_at = first.due_at + SECOND
    assert sla_fire(clock_ids=[first.pk], now=breached_at)["breach"] == 1
    breach = SlaEvent.objects.get(ticket=ticket, kind=SlaEvent.Kind.BREACH)
    with clock_at(breached_at):
        actions = sla_event_apply_actions(event_id=breach.pk)
        assert sla_event_apply_actions(event_id=breach.pk) == []

    assert actions == ["notified the assignee and the supervisors", "raised the priority to Urgent"]
    ticket.refresh_from_db()
    assert ticket.priority == Priority.URGENT  # one step, once
    assert list(
        TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.UPDATED).values_list(
            "changes", flat=True
        )
    ) == [{"priority": [Priority.HIGH, Priority.URGENT]}]
    # The urgent policy now applies to the live clocks, keeping the time used: 8 h to resolve from
    # 10:00, so 18:00.
    first, resolution = clocks(ticket)[Target.FIRST_RESPONSE], clocks(ticket)[Target.RESOLUTION]
    assert {first.policy.name, resolution.policy.name} == {"Störung (dringend)"}
    assert (resolution.budget_seconds, resolution.due_at) == (8 * 3600, at(tuesday, "18:00", BERLIN))
    assert ticket.sla_due_at == first.due_at == breached_at  # 30 min target, an hour used: due now
    # Already breached, so the new policy's shorter target records no second breach.
    assert sla_fire(clock_ids=[first.pk], now=breached_at + MINUTE)["breach"] == 0
    assert SlaEvent.objects.filter(ticket=ticket, kind=SlaEvent.Kind.BREACH).count() == 1


def test_stadtwerke_closing_days_stop_the_clock():
    swn = Tenant.objects.get(code="SWN")
    today = timezone.now().date()
    closing = min(  # an upcoming closing day on which Stadtwerke would otherwise be open
        day
        for day in TenantHoliday.objects.filter(tenant=swn, date__gte=today).values_list("date", flat=True)
        if day.weekday() != 6
    )
    opened = at(closing, "10:00", BERLIN)
    with clock_at(opened):
        ticket = ticket_create(
            tenant=swn,
            customer=Customer.objects.filter(tenant=swn).order_by("pk").first(),
            channel=Channel.EMAIL,
            subject="Abschlag zu hoch",
        )

    # By hand: closed on the closing day, Sundays, and the public holidays that follow the closing
    # days (25 and 26 December, 1 January); open 08:00-20:00 on weekdays and 09:00-14:00 on Saturday.
    public = {(12, 25), (12, 26), (1, 1)}
    day = closing + dt.timedelta(days=1)
    while day.weekday() == 6 or (day.month, day.day) in public:
        day += dt.timedelta(days=1)
    opens = "09:00" if day.weekday() == 5 else "08:00"
    first = clocks(ticket)[Target.FIRST_RESPONSE]
    assert first.policy.name == "Standard"
    assert first.due_at == at(day, opens, BERLIN) + dt.timedelta(hours=4)  # four hours of service
