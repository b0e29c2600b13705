"""Benchmark ``call_route``: where a ringing call goes, decided while the caller waits.

The world is the routing benchmark's (``bench/routing_data.py``): ``agents`` online agents in 10
provider teams, each authorised for 3 of ``tenants`` tenants and speaking 3 of 12 languages, half of
them taking calls (capacity 1), about 60 authorised per tenant whatever the size. Each tenant gets
one phone line whose IVR offers its language (1), English (2), its third language (3) and Japanese
(9, which nobody speaks). No tickets are made. Full size: 1,000 agents, 50 tenants; ``--quick``:
200 agents, 10 tenants (the same number of agents per tenant, so the same decision cost).

Variants (one JSON line each; ``target_p99_ms`` is the server-side goal, 10 ms):

- ``call_route.service``: ``care.calls.routing.route_ringing_call`` for a shuffled sample of calls
  (70 % press 1, 20 % 2, 10 % 3): service hours, queue match, the facts query, lock, ``on_call``, and
  the ``Call`` through ``call_event_apply``. After each timed call the agent is set online again
  (untimed, as the call's end would), so every decision sees the same world.
- ``call_route.queue``: callers who pressed 9: nobody speaks the language, every candidate is rejected
  with reasons, the answer is the queue.
- ``call_route.http``: the same as ``service`` through ``POST /inbound/phone/<token>/route`` with
  ``django.test.Client`` (signed body, JSON in and out): the whole request in the server process.

The data is created at the start and deleted at the end (``clear``), like the routing benchmark's,
under the same advisory lock (the two would clear each other's rows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from bench import routing_data
from bench.harness import Context, Result, benchmark, log, machine_load, percentile
from bench.routing import exclusive_run, own_task_queue
from bench.routing_data import SEED, UNSPOKEN, Built, Shape
from care.accounts.models import Agent, Presence
from care.calls.models import PhoneLine, Provider
from care.calls.routing import RingingCall, route_ringing_call
from care.tenants.models import Tenant

FULL = Shape(agents=1_000, tenants=50, items=0, decisions=0, pulls=0, scale_decisions=0)
QUICK = Shape(agents=200, tenants=10, items=0, decisions=0, pulls=0, scale_decisions=0)
FULL_CALLS, QUICK_CALLS = 500, 60
TARGET_P99_MS = 10.0
SECRET = "bench-phone-secret"  # noqa: S105 - the bench lines' HMAC key, not a credential


@dataclass
class Timed:
    ns: int
    db_ns: int
    queries: int
    kind: str


@dataclass
class Series:
    calls: list[Timed] = field(default_factory=list)
    wall_ns: int = 0


@dataclass(frozen=True)
class PhoneWorld:
    built: Built
    lines: list[PhoneLine]  # one per main tenant, tenant loaded


# --- the world ---------------------------------------------------------------------------------------


def build_world(shape: Shape) -> PhoneWorld:
    """The routing benchmark's agents and tenants, plus one phone line per tenant."""
    clear_world()
    built = routing_data.build(shape)
    tenants = Tenant.objects.filter(pk__in=built.tenant_ids).order_by("pk")
    lines = []
    for index, tenant in enumerate(tenants):
        third = next(c for c in tenant.supported_languages if c not in {tenant.default_language, "en"})
        lines.append(
            PhoneLine(
                tenant=tenant,
                number=f"+4930555{index:04d}",
                name=f"Bench line {index}",
                provider=Provider.GENERIC,
                signing_secret=SECRET,
                ivr_menu={
                    "1": {"language": tenant.default_language},
                    "2": {"language": "en"},
                    "3": {"language": third},
                    "9": {"language": UNSPOKEN},
                },
                default_language=tenant.default_language,
                voicemail_target="sip:voicemail@bench.test",
                overflow_target="sip:queue@bench.test",
            )
        )
    PhoneLine.objects.bulk_create(lines)
    lines = list(
        PhoneLine.objects.select_related("tenant").filter(tenant_id__in=built.tenant_ids).order_by("pk")
    )
    with connection.cursor() as cursor:
        for table in ("accounts_agent", "accounts_agentlanguage", "accounts_agentchannel"):
            cursor.execute(f"ANALYZE {table}")
    return PhoneWorld(built=built, lines=lines)


def clear_world() -> None:
    """Delete the phone rows of the bench tenants, then everything the routing data made."""
    tenant_ids = list(
        Tenant.objects.filter(code__startswith=routing_data.CODE_PREFIX).values_list("pk", flat=True)
    )
    if tenant_ids:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tickets_ticket SET assignee_id = NULL WHERE tenant_id = ANY(%s)", [tenant_ids]
            )
            for table in (
                "calls_call",
                "connectors_inboundmessage",
                "tickets_interaction",
                "calls_phoneline",
                "contacts_identity",
            ):
                cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])
    routing_data.clear()


def all_online(built: Built) -> None:
    Agent.objects.filter(pk__in=built.agent_ids).update(presence=Presence.ONLINE)


# --- timing ------------------------------------------------------------------------------------------


def timed(
    call: Callable[[int], str], indexes: Sequence[int], after: Callable[[], None] | None = None
) -> Series:
    """``call(i)`` for each index, timed (wall, time in ``cursor.execute``, queries); ``after`` runs
    untimed after each call."""
    in_db = [0]

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.perf_counter_ns() - started

    series = Series()
    begun = time.perf_counter_ns()
    with connection.execute_wrapper(timed_execute):
        for index in indexes:
            in_db[0] = 0
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter_ns()
                kind = call(index)
                elapsed = time.perf_counter_ns() - start
            series.calls.append(Timed(elapsed, in_db[0], len(captured), kind))
            if after is not None:
                after()
    series.wall_ns = time.perf_counter_ns() - begun
    return series


def result(
    name: str,
    series: Series,
    extra: dict[str, Any],
    *,
    rows: int | None = None,
    target_ms: float | None = TARGET_P99_MS,
) -> Result:
    db_ms = [c.db_ns / 1e6 for c in series.calls]
    counts = [c.queries for c in series.calls]
    p99 = percentile([c.ns / 1e6 for c in series.calls], 99)
    target = {"meets_target": p99 < target_ms, "target_p99_ms": target_ms} if target_ms else {}
    return Result(
        name=name,
        samples_ns=[c.ns for c in series.calls],
        queries=max(counts),
        rows=rows,
        extra={
            **({"queries_min": min(counts)} if min(counts) != max(counts) else {}),
            "db_median_ms": round(percentile(db_ms, 50), 3),
            "db_p95_ms": round(percentile(db_ms, 95), 3),
            "kinds": dict(Counter(c.kind for c in series.calls)),
            **target,
            "load_1m": machine_load(),
            **extra,
        },
    )


# --- the benchmark -----------------------------------------------------------------------------------


@benchmark("call_route", description="Route a ringing call: the decision, queue answers, the HTTP endpoint")
def call_route(ctx: Context) -> Iterator[Result]:
    shape = QUICK if ctx.options.quick else FULL
    count = QUICK_CALLS if ctx.options.quick else FULL_CALLS
    with exclusive_run(), own_task_queue():
        try:
            world = build_world(shape)
            log(
                f"call_route: {shape.agents} agents, {shape.tenants} tenants, "
                f"built in {world.built.seconds:.1f} s"
            )
            yield from _variants(ctx, shape, world, count)
        finally:
            clear_world()


def _sample(
    world: PhoneWorld, count: int, *, digits: Sequence[str], weights: Sequence[int]
) -> list[tuple[PhoneLine, str]]:
    rng = random.Random(SEED + 7)
    return [(rng.choice(world.lines), rng.choices(digits, weights)[0]) for _ in range(count)]


def _decision(decided: Sequence[float]) -> dict[str, float]:
    """The decision before its commit (see ``route``): what the caller waits for in the server."""
    return {
        "decision_median_ms": round(percentile(decided, 50), 3),
        "decision_p99_ms": round(percentile(decided, 99), 3),
    }


def _variants(ctx: Context, shape: Shape, world: PhoneWorld, count: int) -> Iterator[Result]:
    per_tenant = Agent.objects.filter(authorisations__tenant=world.lines[0].tenant).count()
    common = {
        "agents": shape.agents,
        "tenants": shape.tenants,
        "agents_per_tenant": per_tenant,
        "quick": ctx.options.quick,
    }
    warm = _sample(world, 10, digits=("1",), weights=(1,))
    asks = _sample(world, count, digits=("1", "2", "3"), weights=(70, 20, 10))
    chosen: list[int] = []
    decided: list[float] = []

    def route(index: int, sample: Sequence[tuple[PhoneLine, str]], prefix: str) -> str:
        line, digits = sample[index]
        ringing = RingingCall(call_id=f"{prefix}-{index}", caller="+4915112345678", ivr=digits)
        # The outer block holds the commit back: the time inside is the decision with its writes;
        # the rest is the commit and its hooks (presence published live, wallboard refresh).
        with transaction.atomic():
            start = time.perf_counter_ns()
            answer = route_ringing_call(line=line, ringing=ringing)
            decided.append((time.perf_counter_ns() - start) / 1e6)
        if answer.agent is not None:
            chosen.append(answer.agent.pk)
        return answer.target

    def free_again() -> None:
        if chosen:
            Agent.objects.filter(pk=chosen.pop()).update(presence=Presence.ONLINE)

    all_online(world.built)
    timed(lambda i: route(i, warm, "warm"), range(len(warm)), free_again)
    decided.clear()
    series = timed(lambda i: route(i, asks, "svc"), range(len(asks)), free_again)
    log(f"call_route.service: {len(asks)} calls")
    yield result("call_route.service", series, common | _decision(decided))

    unspoken = _sample(world, max(count // 2, 20), digits=("9",), weights=(1,))
    decided.clear()
    series = timed(lambda i: route(i, unspoken, "q"), range(len(unspoken)), free_again)
    yield result("call_route.queue", series, common | _decision(decided))

    client = Client()
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        prefix = ["http-warm"]

        def post(index: int) -> str:
            line, digits = asks[index]
            body = json.dumps(
                {
                    "call_id": f"{prefix[0]}-{index}",
                    "caller": "+4915112345678",
                    "dialled": line.number,
                    "ivr": digits,
                }
            ).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            response = client.post(
                reverse("inbound:phone_route", kwargs={"token": line.inbound_token}),
                body,
                content_type="application/json",
                HTTP_X_CARE_SIGNATURE=signature,
            )
            if response.status_code != 200:
                raise RuntimeError(f"route answered {response.status_code}: {response.content!r}")
            payload = response.json()
            if payload.get("agent"):
                chosen.append(int(payload["agent"]["id"]))
            return str(payload["target"])

        all_online(world.built)
        timed(post, range(10), free_again)
        prefix[0] = "http"
        series = timed(post, range(len(asks)), free_again)
    log(f"call_route.http: {len(asks)} requests")
    yield result("call_route.http", series, common)
