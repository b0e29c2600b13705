"""SLA clock rules, the firing of warnings and breaches, and the actions they trigger.

Clock rules (docs/sla.md):
- A new ticket gets the first active policy of its tenant matching its priority and channel, and
  starts its first-response and resolution clocks at its creation time.
- An agent's reply (outbound, counted as a response) meets the first-response clock and the running
  next-response clock. A customer message after the first response starts a next-response clock,
  unless one is running already.
- Pending (waiting on the customer) pauses every running clock; leaving pending resumes them with
  the business time they had used. On hold (waiting on a third party) does not pause: the client
  pays for the wait.
- Solved or closed meets the resolution clock and stops the others. Reopening a solved ticket
  restores its resolution clock with the business time it had used.
- Due and warning times are business time in the tenant's calendar (service hours, holidays, time
  zone) or round the clock, per policy; a breached clock keeps running until it is met.

Firing is set-based (``sla_fire``): one statement finds the due clocks through a partial index, the
events are inserted with ON CONFLICT DO NOTHING on their uniqueness constraint, and the clocks are
flagged under row locks, so a warning or breach is recorded once whatever is retried, duplicated or
recovered after a crash. The per-clock timers and the periodic sweep both call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from care.sla.models import LIVE_STATES, ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.signals import sla_event_recorded
from care.tenants.calendar import ServiceCalendar, calendar_of
from care.tickets.models import Direction, Interaction, Priority, Ticket
from care.tickets.status import Status

if TYPE_CHECKING:
    from care.tenants.models import Tenant

FIRE_BATCH = 5_000


# --- Policies and calendars ----------------------------------------------------------------------


def policy_for(ticket: Ticket) -> SlaPolicy | None:
    """The first active policy of the ticket's tenant that matches its priority and channel."""
    return (
        SlaPolicy.objects.filter(tenant_id=ticket.tenant_id, is_active=True)
        .filter(Q(priority__isnull=True) | Q(priority=ticket.priority))
        .filter(Q(channel="") | Q(channel=ticket.channel))
        .order_by("position", "pk")
        .first()
    )


def _round_the_clock(tenant: Tenant) -> ServiceCalendar:
    return ServiceCalendar(time_zone=tenant.time_zone, weekly={})


class _Calendars:
    """The tenant's calendars, loaded at most once per operation."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._business: ServiceCalendar | None = None

    def for_clock(self, clock: SlaClock) -> ServiceCalendar:
        if not clock.business_hours:
            return _round_the_clock(self.tenant)
        if self._business is None:
            self._business = calendar_of(self.tenant)
        return self._business


# --- Clock arithmetic ----------------------------------------------------------------------------


def _plan(clock: SlaClock, calendar: ServiceCalendar) -> None:
    """Set due and warning instants of a clock that runs from ``resumed_at``."""
    assert clock.resumed_at is not None  # noqa: S101 - only running clocks are planned
    left = dt.timedelta(seconds=max(clock.budget_seconds - clock.elapsed_seconds, 0))
    clock.due_at = calendar.add(clock.resumed_at, left)
    warn_after = clock.budget_seconds * clock.policy.warning_percent // 100
    warn_left = dt.timedelta(seconds=max(warn_after - clock.elapsed_seconds, 0))
    clock.warn_at = calendar.add(clock.resumed_at, warn_left)


def _used(clock: SlaClock, calendar: ServiceCalendar, until: dt.datetime) -> int:
    """Business seconds used, up to ``until``."""
    if clock.state != ClockState.RUNNING or clock.resumed_at is None:
        return clock.elapsed_seconds
    return clock.elapsed_seconds + int(calendar.between(clock.resumed_at, until).total_seconds())


# Timers are sent to the broker only for instants this close: a Redis broker hands an unacknowledged
# message (an ETA task a worker holds) to another worker after its visibility timeout (one hour), so
# far-off timers would multiply. ``arm_upcoming`` (Celery beat, every ARM_EVERY) sends the timers of
# instants that come within the window; the sweep catches whatever is still missed.
ARM_WINDOW = dt.timedelta(minutes=30)
ARM_EVERY = dt.timedelta(minutes=15)


def _arm(clock: SlaClock) -> None:
    """Schedule the clock's timers after commit (robust: the sweep makes up for a lost one)."""
    horizon = timezone.now() + ARM_WINDOW
    clock_id = clock.pk
    instants = [i for i in (clock.warn_at, clock.due_at) if i is not None and i < horizon]
    if not instants:
        return

    def send() -> None:
        from care.sla.tasks import fire_clock

        for instant in instants:
            fire_clock.apply_async(args=(clock_id,), eta=instant)

    transaction.on_commit(send, robust=True)


def _sync_ticket(ticket: Ticket) -> None:
    """Keep ``Ticket.sla_due_at`` (what queues sort on) at the earliest running clock's due time."""
    due = SlaClock.objects.filter(ticket=ticket, state=ClockState.RUNNING).aggregate(due=Min("due_at"))["due"]
    if due != ticket.sla_due_at:
        Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=due)
        ticket.sla_due_at = due
        from care.routing.services import routing_refresh

        routing_refresh(ticket=ticket)


# --- Clock rules ---------------------------------------------------------------------------------


def _live(ticket: Ticket, targets: Iterable[str] = Target.values) -> list[SlaClock]:
    return list(
        SlaClock.objects.select_for_update(of=("self",))
        .select_related("policy")
        .filter(ticket=ticket, target__in=list(targets), state__in=LIVE_STATES)
        .order_by("pk")
    )


def clock_start(
    *, ticket: Ticket, target: str, policy: SlaPolicy, at: dt.datetime, calendars: _Calendars | None = None
) -> SlaClock | None:
    """Start ``target``'s clock at ``at`` unless the policy has no such target or one is live."""
    minutes = policy.minutes_for(target)
    if not minutes or SlaClock.objects.filter(ticket=ticket, target=target, state__in=LIVE_STATES).exists():
        return None
    calendars = calendars or _Calendars(ticket.tenant)
    clock = SlaClock(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        policy=policy,
        target=target,
        budget_seconds=minutes * 60,
        business_hours=policy.business_hours,
        started_at=at,
        resumed_at=at,
    )
    _plan(clock, calendars.for_clock(clock))
    clock.save()
    _arm(clock)
    return clock


def sla_ticket_created(*, ticket: Ticket) -> list[SlaClock]:
    policy = policy_for(ticket)
    if policy is None:
        return []
    calendars = _Calendars(ticket.tenant)
    started = [
        clock_start(ticket=ticket, target=target, policy=policy, at=ticket.created_at, calendars=calendars)
        for target in (Target.FIRST_RESPONSE, Target.RESOLUTION)
    ]
    _sync_ticket(ticket)
    return [clock for clock in started if clock is not None]


def _fire_if_overdue(clock: SlaClock, at: dt.datetime) -> None:
    """Met, paused or stopped late before the timer fired: the breach is still a breach, recorded now
    (a paused or stopped clock has no due time left for the timer or the sweep to find)."""
    if (
        clock.state == ClockState.RUNNING
        and clock.due_at is not None
        and at > clock.due_at
        and not clock.breached_at
    ):
        clock.save(update_fields=["elapsed_seconds", "updated_at"])
        sla_fire(clock_ids=[clock.pk], now=at)
        clock.refresh_from_db(fields=["breached_at", "warned_at"])


def _meet(clock: SlaClock, calendar: ServiceCalendar, at: dt.datetime) -> None:
    clock.elapsed_seconds = _used(clock, calendar, at)
    _fire_if_overdue(clock, at)
    clock.state, clock.met_at, clock.resumed_at = ClockState.MET, at, None
    clock.save(update_fields=["elapsed_seconds", "state", "met_at", "resumed_at", "updated_at"])


def _stop(clock: SlaClock, calendar: ServiceCalendar, at: dt.datetime) -> None:
    clock.elapsed_seconds = _used(clock, calendar, at)
    _fire_if_overdue(clock, at)
    clock.state, clock.stopped_at, clock.resumed_at = ClockState.STOPPED, at, None
    clock.save(update_fields=["elapsed_seconds", "state", "stopped_at", "resumed_at", "updated_at"])


def sla_interaction_added(*, ticket: Ticket, interaction: Interaction, counts_as_response: bool) -> None:
    at = interaction.occurred_at
    calendars = _Calendars(ticket.tenant)
    if interaction.direction == Direction.OUTBOUND and counts_as_response:
        for clock in _live(ticket, [Target.FIRST_RESPONSE, Target.NEXT_RESPONSE]):
            _meet(clock, calendars.for_clock(clock), at)
    elif interaction.direction == Direction.INBOUND:
        first_pending = SlaClock.objects.filter(
            ticket=ticket, target=Target.FIRST_RESPONSE, state__in=LIVE_STATES
        ).exists()
        answered = (
            ticket.first_response_at is not None
            or SlaClock.objects.filter(
                ticket=ticket, target=Target.FIRST_RESPONSE, state=ClockState.MET
            ).exists()
        )
        if answered and not first_pending and ticket.status != Status.CLOSED:
            policy = policy_for(ticket)
            if policy is not None:
                clock_start(
                    ticket=ticket, target=Target.NEXT_RESPONSE, policy=policy, at=at, calendars=calendars
                )
    _sync_ticket(ticket)


def _pause(clock: SlaClock, calendar: ServiceCalendar, at: dt.datetime) -> None:
    clock.elapsed_seconds = _used(clock, calendar, at)
    _fire_if_overdue(clock, at)
    clock.state, clock.paused_at, clock.resumed_at = ClockState.PAUSED, at, None
    clock.due_at = clock.warn_at = None
    clock.save(
        update_fields=[
            "elapsed_seconds",
            "state",
            "paused_at",
            "resumed_at",
            "due_at",
            "warn_at",
            "updated_at",
        ]
    )


def _resume(clock: SlaClock, calendar: ServiceCalendar, at: dt.datetime) -> None:
    clock.state, clock.paused_at, clock.resumed_at = ClockState.RUNNING, None, at
    clock.met_at = None
    _plan(clock, calendar)
    clock.save(
        update_fields=["state", "paused_at", "resumed_at", "met_at", "due_at", "warn_at", "updated_at"]
    )
    _arm(clock)


def sla_status_changed(*, ticket: Ticket, before: str, after: str, at: dt.datetime | None = None) -> None:
    at = at or timezone.now()
    calendars = _Calendars(ticket.tenant)
    if after == Status.PENDING:
        for clock in _live(ticket):
            if clock.state == ClockState.RUNNING:
                _pause(clock, calendars.for_clock(clock), at)
    elif after in (Status.SOLVED, Status.CLOSED):
        for clock in _live(ticket):
            calendar = calendars.for_clock(clock)
            if clock.target == Target.RESOLUTION:
                if clock.state == ClockState.PAUSED:
                    clock.state = ClockState.RUNNING  # met from a pause: no time used since the pause
                    clock.resumed_at = at
                _meet(clock, calendar, at)
            else:
                _stop(clock, calendar, at)
    else:
        if before == Status.SOLVED:
            _restore_resolution(ticket, calendars, at)
        if before == Status.PENDING or before == Status.SOLVED:
            for clock in _live(ticket):
                if clock.state == ClockState.PAUSED:
                    _resume(clock, calendars.for_clock(clock), at)
    _sync_ticket(ticket)


def _restore_resolution(ticket: Ticket, calendars: _Calendars, at: dt.datetime) -> None:
    """Reopening restores the resolution clock with the business time it had used."""
    if SlaClock.objects.filter(ticket=ticket, target=Target.RESOLUTION, state__in=LIVE_STATES).exists():
        return
    clock = (
        SlaClock.objects.select_for_update(of=("self",))
        .select_related("policy")
        .filter(ticket=ticket, target=Target.RESOLUTION, state=ClockState.MET)
        .order_by("-met_at", "-pk")
        .first()
    )
    if clock is not None:
        _resume(clock, calendars.for_clock(clock), at)


def sla_priority_changed(*, ticket: Ticket, at: dt.datetime | None = None) -> None:
    """A new priority may select another policy: live clocks take its targets, keeping the time used."""
    policy = policy_for(ticket)
    at = at or timezone.now()
    calendars = _Calendars(ticket.tenant)
    for clock in _live(ticket):
        if policy is None or clock.policy_id == policy.pk:
            continue
        minutes = policy.minutes_for(clock.target)
        if not minutes:
            continue
        calendar = calendars.for_clock(clock)
        if clock.state == ClockState.RUNNING:
            clock.elapsed_seconds, clock.resumed_at = _used(clock, calendar, at), at
        clock.policy, clock.budget_seconds = policy, minutes * 60
        if clock.state == ClockState.RUNNING:
            _plan(clock, calendar)
        clock.save()
        if clock.state == ClockState.RUNNING:
            _arm(clock)
    _sync_ticket(ticket)


# --- Firing --------------------------------------------------------------------------------------


def sla_fire(
    *, clock_ids: list[int] | None = None, now: dt.datetime | None = None, batch: int = FIRE_BATCH
) -> dict[str, int]:
    """Record the warnings and breaches that are due (all, or of ``clock_ids``): once each.

    Returns how many of each were recorded now. Safe to run concurrently and repeatedly.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    with transaction.atomic():
        new_events: list[int] = []
        for kind, instant, flag in (
            (SlaEvent.Kind.WARNING, "warn_at", "warned_at"),
            (SlaEvent.Kind.BREACH, "due_at", "breached_at"),
        ):
            due = SlaClock.objects.select_for_update(skip_locked=True, of=("self",)).filter(
                state=ClockState.RUNNING, **{f"{flag}__isnull": True, f"{instant}__lte": now}
            )
            if clock_ids is not None:
                due = due.filter(pk__in=clock_ids)
            rows = list(
                due.order_by(instant).values_list("pk", "tenant_id", "ticket_id", "target", "due_at")[:batch]
            )
            if not rows:
                counts[kind] = 0
                continue
            SlaEvent.objects.bulk_create(
                [
                    SlaEvent(
                        tenant_id=tenant_id,
                        ticket_id=ticket_id,
                        clock_id=pk,
                        target=target,
                        kind=kind,
                        due_at=due_at or now,  # never None: running clocks are planned
                    )
                    for pk, tenant_id, ticket_id, target, due_at in rows
                ],
                ignore_conflicts=True,
            )
            ids = [row[0] for row in rows]
            SlaClock.objects.filter(pk__in=ids).update(**{flag: now, "updated_at": now})
            created = list(
                SlaEvent.objects.filter(
                    clock_id__in=ids, kind=kind, actions_done_at__isnull=True
                ).values_list("pk", flat=True)
            )
            new_events += created
            counts[kind] = len(rows)
        if new_events:
            transaction.on_commit(lambda: _dispatch_actions(new_events), robust=True)
    return counts


# Events whose actions one task carries out: one broker message per event cost 1-4 ms each, most of
# a sweep's time at 10,000 breaches (docs/performance.md, "SLA sweep").
ACTIONS_PER_TASK = 100


def _dispatch_actions(event_ids: list[int]) -> None:
    from care.sla.tasks import apply_actions_of

    for start in range(0, len(event_ids), ACTIONS_PER_TASK):
        apply_actions_of.delay(event_ids[start : start + ACTIONS_PER_TASK])


@transaction.atomic
def sla_event_apply_actions(*, event_id: int) -> list[str]:
    """Do what the policy says on a warning or breach (idempotent: once per event)."""
    event = (
        SlaEvent.objects.select_for_update(of=("self",))
        .select_related("clock__policy", "ticket__tenant")
        .filter(pk=event_id, actions_done_at__isnull=True)
        .first()
    )
    if event is None:
        return []
    policy, ticket = event.clock.policy, event.ticket
    actions: list[str] = [_("notified the assignee and the supervisors")]
    if event.kind == SlaEvent.Kind.BREACH and ticket.is_open:
        if policy.raise_priority_on_breach and ticket.priority < Priority.URGENT:
            from care.tickets.services import ticket_update

            ticket = ticket_update(ticket=ticket, actor=None, priority=ticket.priority + 1)
            actions.append(
                _("raised the priority to %(priority)s") % {"priority": ticket.get_priority_display()}
            )
        if policy.escalate_to_queue_id:
            from care.routing.services import routing_escalate

            if routing_escalate(
                ticket=ticket, queue_id=policy.escalate_to_queue_id, reason=_("SLA breached")
            ):
                actions.append(_("routed again through %(queue)s") % {"queue": policy.escalate_to_queue})
    event.actions = actions
    event.actions_done_at = timezone.now()
    event.save(update_fields=["actions", "actions_done_at", "updated_at"])
    sla_event_recorded.send(sender=SlaEvent, event=event)
    return actions


def sla_arm_upcoming(*, now: dt.datetime | None = None) -> int:
    """Send the timers of warning and due instants that come within reach: those between the end of
    the window the previous run covered and the end of this run's window."""
    from care.sla.tasks import fire_clock

    now = now or timezone.now()
    start, end = now + ARM_WINDOW - ARM_EVERY, now + ARM_WINDOW
    running = SlaClock.objects.filter(state=ClockState.RUNNING)
    timers = [
        *running.filter(warned_at__isnull=True, warn_at__gte=start, warn_at__lt=end).values_list(
            "pk", "warn_at"
        ),
        *running.filter(breached_at__isnull=True, due_at__gte=start, due_at__lt=end).values_list(
            "pk", "due_at"
        ),
    ]
    for clock_id, instant in timers:
        if instant is not None:  # filtered on it above; None only to the type checker
            fire_clock.apply_async(args=(clock_id,), eta=instant)
    return len(timers)


def sla_sweep(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The safety net (Celery beat): fire whatever is due, in bounded batches, and retry actions
    whose task was lost."""
    now = now or timezone.now()
    counts: dict[str, Any] = sla_fire(now=now)
    stale = list(
        SlaEvent.objects.filter(actions_done_at__isnull=True, created_at__lte=now - dt.timedelta(minutes=1))
        .order_by("created_at")
        .values_list("pk", flat=True)[:FIRE_BATCH]
    )
    if stale:
        _dispatch_actions(stale)
    counts["actions_retried"] = len(stale)
    return counts
