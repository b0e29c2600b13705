"""Call-center figures of a tenant's inbound calls, read from the database (issue 7, item 6).

The definitions are those of ``care/reporting/call_figures.py`` (pure, tested on its own); this module
only reads the tenant's ``Call`` rows and contracted target into it:

- the calls are the tenant's **inbound** calls offered in [start, end) that **have an outcome**: a
  call still ringing or waiting has none yet and is counted once it ends (so a report of today grows
  while calls end, and never counts a call as abandoned that is still being answered);
- the target is the tenant's ``ServiceLevelTarget``, or 80 % within 20 s, short abandons up to 5 s
  left out of the base, when the tenant has none;
- intervals are wall-clock intervals of the tenant's time zone.

Two queries whatever the number of calls: the target, then the calls (``values()`` of the columns the
figures need).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from care.calls.models import Call, Direction
from care.calls.models import ServiceLevelTarget as TargetRow
from care.reporting import call_figures as cf
from care.tenants.models import Tenant

logger = logging.getLogger(__name__)

INTERVALS = {
    "15m": dt.timedelta(minutes=15),
    "30m": dt.timedelta(minutes=30),
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
}
_COLUMNS = (
    "pk",
    "offered_at",
    "outcome",
    "answered_at",
    "ended_at",
    "queue_wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "wrapup_seconds",
)


@dataclass(frozen=True)
class ContractTarget:
    """A tenant's service level target with how it counts abandoned calls (the default when unset)."""

    target: cf.ServiceLevelTarget
    short_abandon_seconds: int
    abandoned_counting: cf.AbandonedCounting


@dataclass(frozen=True)
class TenantCallFigures:
    tenant: Tenant
    start: dt.datetime
    end: dt.datetime
    contract: ContractTarget
    total: cf.CallFigures
    # Only when an interval was asked for: (start of the interval in the tenant's zone, its figures).
    by_interval: list[tuple[dt.datetime, cf.CallFigures]] | None


DEFAULT_CONTRACT = ContractTarget(
    target=cf.ServiceLevelTarget(),
    short_abandon_seconds=5,
    abandoned_counting=cf.AbandonedCounting.EXCLUDE_SHORT,
)


def contract_target_of(tenant: Tenant) -> ContractTarget:
    row = TargetRow.objects.filter(tenant=tenant).first()
    if row is None:
        return DEFAULT_CONTRACT
    return ContractTarget(
        target=cf.ServiceLevelTarget(
            answered_within_seconds=row.answered_within_seconds, percent=row.percent
        ),
        short_abandon_seconds=row.short_abandon_seconds,
        abandoned_counting=cf.AbandonedCounting(row.abandoned_counting),
    )


def _facts(row: dict[str, Any]) -> cf.CallFacts | None:
    try:
        return cf.CallFacts(
            offered_at=row["offered_at"],
            outcome=cf.CallOutcome(row["outcome"]),
            answered_at=row["answered_at"],
            ended_at=row["ended_at"],
            queue_wait_seconds=row["queue_wait_seconds"],
            talk_seconds=row["talk_seconds"],
            hold_seconds=row["hold_seconds"],
            wrapup_seconds=row["wrapup_seconds"],
        )
    except ValueError:
        # The pipeline never writes such a row (an answered call has its answer time); one written by
        # hand must not take the whole report down, so it is left out and logged.
        logger.warning("Call %s left out of the figures: inconsistent times or outcome", row["pk"])
        return None


def call_facts_of(*, tenant: Tenant, start: dt.datetime, end: dt.datetime) -> list[cf.CallFacts]:
    """The facts of the tenant's inbound calls offered in [start, end) that have an outcome (one query)."""
    rows = (
        Call.objects.filter(
            tenant=tenant, direction=Direction.INBOUND, offered_at__gte=start, offered_at__lt=end
        )
        .exclude(outcome="")
        .order_by()
        .values(*_COLUMNS)
    )
    return [facts for row in rows if (facts := _facts(row)) is not None]


def local_days(tenant: Tenant, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The span from the tenant's local midnight starting ``first`` to the one ending ``last``."""
    zone = ZoneInfo(tenant.time_zone)
    return (
        dt.datetime.combine(first, dt.time(0), tzinfo=zone),
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone),
    )


def call_figures_of(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime, interval: dt.timedelta | None = None
) -> TenantCallFigures:
    """The figures of the tenant's inbound calls offered in [start, end), in total and, with an
    ``interval`` (one of ``INTERVALS``), per wall-clock interval of the tenant's time zone.

    Preconditions: ``start`` and ``end`` are aware; with an interval, ``start`` is the start of an
    interval in the tenant's zone (a local midnight always is). Two queries.
    """
    contract = contract_target_of(tenant)
    calls = call_facts_of(tenant=tenant, start=start, end=end)
    options: dict[str, Any] = {
        "target": contract.target,
        "short_abandon_seconds": contract.short_abandon_seconds,
        "abandoned_counting": contract.abandoned_counting,
    }
    by_interval = None
    if interval is not None:
        by_interval = cf.figures_by_interval(
            calls, start=start, end=end, interval=interval, tz=tenant.time_zone, **options
        )
    return TenantCallFigures(
        tenant=tenant,
        start=start,
        end=end,
        contract=contract,
        total=cf.figures(calls, **options),
        by_interval=by_interval,
    )
