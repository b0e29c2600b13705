"""Reads of the SLA engine: a ticket's clocks with time left, and attainment per tenant and period."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection

from django.db.models import Count, F, Q
from django.utils import timezone

from care.sla.models import ClockState, SlaClock, Target
from care.tickets.models import Ticket


@dataclasses.dataclass(frozen=True)
class ClockStatus:
    target: str
    state: str
    due_at: dt.datetime | None
    seconds_left: int | None  # negative: overdue; None: not running
    breached: bool
    warned: bool


def clocks_of(ticket: Ticket, *, now: dt.datetime | None = None) -> list[ClockStatus]:
    """The ticket's live clocks and the last finished one per target, most urgent first. One query."""
    now = now or timezone.now()
    statuses = []
    seen: set[str] = set()
    for clock in SlaClock.objects.filter(ticket=ticket).order_by("-started_at", "-pk"):
        if clock.target in seen:
            continue
        seen.add(clock.target)
        left = (
            int((clock.due_at - now).total_seconds())
            if clock.state == ClockState.RUNNING and clock.due_at
            else None
        )
        statuses.append(
            ClockStatus(
                target=clock.target,
                state=clock.state,
                due_at=clock.due_at,
                seconds_left=left,
                breached=clock.breached_at is not None,
                warned=clock.warned_at is not None,
            )
        )
    return sorted(statuses, key=lambda s: (s.seconds_left is None, s.seconds_left or 0))


@dataclasses.dataclass(frozen=True)
class Attainment:
    tenant_id: int
    target: str
    finished: int  # clocks met or breached in the period
    met: int  # of those, met in time
    breached: int

    @property
    def share(self) -> float | None:
        return self.met / self.finished if self.finished else None


def attainment(*, tenant_ids: Collection[int], start: dt.datetime, end: dt.datetime) -> list[Attainment]:
    """Per tenant and target: clocks that started in [start, end) and were decided (met, or breached),
    and the share met in time. Clocks still running unbreached are not decided yet and not counted;
    stopped clocks (the target no longer applied) count only if they had breached. One query."""
    rows = (
        SlaClock.objects.filter(tenant_id__in=list(tenant_ids), started_at__gte=start, started_at__lt=end)
        .filter(Q(state=ClockState.MET) | Q(breached_at__isnull=False))
        .values("tenant_id", "target")
        .annotate(
            finished=Count("pk"),
            breached=Count("pk", filter=Q(breached_at__isnull=False)),
            met=Count(
                # Business seconds used, not met_at <= due_at: a clock met from a pause (solved while
                # pending) has no due time.
                "pk",
                filter=Q(
                    state=ClockState.MET,
                    breached_at__isnull=True,
                    elapsed_seconds__lte=F("budget_seconds"),
                ),
            ),
        )
        .order_by("tenant_id", "target")
    )
    return [
        Attainment(
            tenant_id=row["tenant_id"],
            target=row["target"],
            finished=row["finished"],
            met=row["met"],
            breached=row["breached"],
        )
        for row in rows
        if row["target"] in Target.values
    ]
