"""Benchmark ``call_events``: telephone-system events per second into PostgreSQL.

Every call is five events, in order: offered, queued, ringing (at an agent authorised for the
tenant), answered, ended (with talk time). The last one makes the answered call an interaction on
the caller's ticket (a new ticket the first time a caller rings, which queues it for routing; the
tasks routing schedules go to a queue of this run's own, deleted at the end). The world is
``call_route``'s (its tenants, agents and phone lines); callers are drawn from 50 numbers per tenant,
so later calls find the customer and often their open ticket.

Variants (one JSON line each; samples are per event, ``per_second`` is events over the wall time):

- ``call_events.service``: ``care.calls.services.call_event_apply`` per event, one process;
- ``call_events.http``: ``POST /inbound/phone/<token>/events`` per event (Care's JSON, signed) with
  ``django.test.Client``: authenticate, store the raw bytes (``InboundMessage``), parse, apply.

Full size: 400 calls (2,000 events) through the service and 200 calls over HTTP; ``--quick``: 30 and
15 calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from bench.call_route import FULL, QUICK, SECRET, PhoneWorld, Series, build_world, clear_world, result, timed
from bench.harness import Context, Result, benchmark, log, percentile
from bench.routing import exclusive_run, own_task_queue
from bench.routing_data import SEED
from care.accounts.models import TenantAuthorisation
from care.calls.events import CallEvent, CallEventKind
from care.calls.models import PhoneLine
from care.calls.services import call_event_apply

FULL_CALLS, QUICK_CALLS = 400, 30
FULL_HTTP_CALLS, QUICK_HTTP_CALLS = 200, 15
KINDS = (
    CallEventKind.OFFERED,
    CallEventKind.QUEUED,
    CallEventKind.RINGING,
    CallEventKind.ANSWERED,
    CallEventKind.ENDED,
)
CALLERS_PER_TENANT = 50


@dataclass(frozen=True)
class Planned:
    line: PhoneLine
    call_id: str
    kind: CallEventKind
    at: dt.datetime
    sequence: int
    caller: str
    agent_ref: str
    talk_seconds: int | None

    def event(self) -> CallEvent:
        return CallEvent(
            provider="generic",
            call_id=self.call_id,
            kind=self.kind,
            occurred_at=self.at,
            sequence=self.sequence,
            caller=self.caller,
            caller_raw=self.caller,
            dialled=self.line.number,
            dialled_raw=self.line.number,
            agent_ref=self.agent_ref if self.kind in _WITH_AGENT else "",
            talk_seconds=self.talk_seconds if self.kind == CallEventKind.ENDED else None,
            ivr_digits="1",
        )

    def json(self) -> bytes:
        item: dict[str, Any] = {
            "call_id": self.call_id,
            "event": str(self.kind),
            "at": self.at.isoformat(),
            "sequence": self.sequence,
            "caller": self.caller,
            "dialled": self.line.number,
            "ivr": "1",
        }
        if self.kind in _WITH_AGENT:
            item["agent"] = self.agent_ref
        if self.kind == CallEventKind.ENDED:
            item["talk_seconds"] = self.talk_seconds
        return json.dumps(item).encode()


_WITH_AGENT = {CallEventKind.RINGING, CallEventKind.ANSWERED, CallEventKind.ENDED}


def plan(world: PhoneWorld, calls: int, prefix: str) -> list[Planned]:
    """``calls`` calls of five events each, in order, spread over the tenants' lines."""
    rng = random.Random(SEED + 11)
    authorised: dict[int, list[int]] = {}
    for tenant_id, agent_id in TenantAuthorisation.objects.filter(
        tenant_id__in=[line.tenant_id for line in world.lines]
    ).values_list("tenant_id", "agent_id"):
        authorised.setdefault(tenant_id, []).append(agent_id)
    start = timezone.now() - dt.timedelta(hours=2)
    events: list[Planned] = []
    for n in range(calls):
        line = rng.choice(world.lines)
        caller = f"+4915{line.tenant_id % 1000:03d}{rng.randrange(CALLERS_PER_TENANT):06d}"
        agent = rng.choice(authorised[line.tenant_id])
        at = start + dt.timedelta(seconds=n * 3)
        offsets = (0, 5, 20, 25, 25 + rng.randint(30, 600))
        talk = offsets[-1] - offsets[3]
        for sequence, (kind, offset) in enumerate(zip(KINDS, offsets, strict=True)):
            events.append(
                Planned(
                    line=line,
                    call_id=f"{prefix}-{n}",
                    kind=kind,
                    at=at + dt.timedelta(seconds=offset),
                    sequence=sequence,
                    caller=caller,
                    agent_ref=f"agent:{agent}",
                    talk_seconds=talk,
                )
            )
    return events


@benchmark("call_events", description="Phone call events per second into PostgreSQL: service and HTTP")
def call_events(ctx: Context) -> Iterator[Result]:
    shape = QUICK if ctx.options.quick else FULL
    calls = QUICK_CALLS if ctx.options.quick else FULL_CALLS
    http_calls = QUICK_HTTP_CALLS if ctx.options.quick else FULL_HTTP_CALLS
    with exclusive_run(), own_task_queue():
        try:
            world = build_world(shape)
            log(f"call_events: {shape.tenants} tenants, {len(world.lines)} lines; {calls} calls of 5 events")
            yield from _variants(ctx, world, calls, http_calls)
        finally:
            clear_world()


def _extra(ctx: Context, series_calls: int, wall_ns: int) -> dict[str, Any]:
    return {
        "calls": series_calls,
        "events_per_call": len(KINDS),
        "events_per_second_wall": round(series_calls * len(KINDS) / (wall_ns / 1e9), 1),
        "quick": ctx.options.quick,
    }


def _variants(ctx: Context, world: PhoneWorld, calls: int, http_calls: int) -> Iterator[Result]:
    warm = plan(world, 4, "warm")
    timed(lambda i: _apply(warm[i]), range(len(warm)))
    events = plan(world, calls, "svc")
    series = timed(lambda i: _apply(events[i]), range(len(events)))
    yield result(
        "call_events.service",
        series,
        _extra(ctx, calls, series.wall_ns) | _by_kind(series),
        rows=len(events),
        target_ms=None,
    )

    client = Client()
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        posted = plan(world, http_calls, "http")
        series = timed(lambda i: _post(client, posted[i]), range(len(posted)))
    yield result(
        "call_events.http",
        series,
        _extra(ctx, http_calls, series.wall_ns) | _by_kind(series),
        rows=len(posted),
        target_ms=None,
    )


def _by_kind(series: Series) -> dict[str, Any]:
    """Median per event kind: the ``ended`` event writes the ticket and interaction."""
    kinds: dict[str, list[float]] = {}
    for call in series.calls:
        kinds.setdefault(call.kind, []).append(call.ns / 1e6)
    return {"median_ms_by_kind": {kind: round(percentile(ms, 50), 3) for kind, ms in kinds.items()}}


def _apply(planned: Planned) -> str:
    applied = call_event_apply(line=planned.line, event=planned.event())
    return str(planned.kind) if applied.applied else "duplicate"


def _post(client: Client, planned: Planned) -> str:
    body = planned.json()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        reverse("inbound:phone_events", kwargs={"token": planned.line.inbound_token}),
        body,
        content_type="application/json",
        HTTP_X_CARE_SIGNATURE=signature,
    )
    if response.status_code != 200:
        raise RuntimeError(f"events answered {response.status_code}: {response.content!r}")
    return str(planned.kind)
