"""Benchmark ``routing``: how long one routing decision takes, and whether its queries grow with agents.

Calls the engine as the Celery tasks do: ``care.routing.services.route_item(item_id=…)`` (work
arrived or waited long enough: find the agent) and ``route_for_agent(agent_id=…)`` (an agent freed
up: find the work). Each call is one transaction: it locks, decides, writes the decision log and, for
an assignment, assigns the ticket through ``ticket_assign``; a waiting item schedules its next try
(``route_item`` with an ETA) after the commit. Those tasks go to a queue of this benchmark's own on
the configured Redis, deleted at the end: no worker ever runs them.

The data is the benchmark's own (``bench/routing_data.py``): ``agents`` online agents, ``tenants``
tenants, 12 languages, ``items`` queued tickets, created at the start and deleted at the end.
Full size: 1,000 agents, 50 tenants, 10,000 items; ``--quick``: 100 agents, 10 tenants, 1,000 items.

Before each variant the routing state is reset: tickets back to new and unassigned, decisions and
events deleted, one waiting item per ticket, agents never routed. Variants (one JSON line each):

- ``routing.route_item``: ``route_item`` on a shuffled sample of the items, one process; also split
  into ``routing.route_item.assigned`` and ``routing.route_item.waiting`` (nobody free: the decision
  log lists every candidate's reasons). ``assignments_per_second`` is assignments over the wall time
  of the whole sample.
- ``routing.route_for_agent``: one ``route_for_agent`` per agent of a shuffled sample.
- ``routing.parallel_N``: the same sample split over N forked processes started together, each with
  its own connection; ``decisions_per_second_wall`` and ``assignments_per_second`` are combined rates
  over the wall time (``per_second`` is null), and after the run no agent may hold more than their
  capacity (``overloaded`` must be 0) and no ticket may have two assignments (``assigned_twice``).
- ``routing.agents_SMALL`` / ``routing.agents_LARGE``: two extra tenants for which 10 % of the agents,
  or all of them, are authorised: the same decisions there must cost the same number of queries
  (``queries_constant``). The ``agent_facts`` query of the large one is EXPLAINed (ANALYZE, BUFFERS)
  to stderr, and its server time is ``plan_ms``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.database import _connect_params
from bench.harness import Context, Result, benchmark, log, machine_load, percentile
from bench.routing_data import FULL, QUICK, SEED, UNSPOKEN, Built, Shape, build, clear, reset, scale_items
from care.accounts.models import TenantAuthorisation
from care.core.channels import Channel
from care.routing import services
from care.routing.eligibility import agent_facts
from care.routing.models import QueuedItem, RoutingDecision
from care.tickets.models import Ticket
from care.tickets.status import ACTIONABLE

PARALLEL_WORKERS = 2
TARGET_P99_MS = 5.0
_LOCK_CLASS = 0x726F7574  # "rout": the advisory-lock key of this benchmark


@dataclass
class Call:
    ns: int
    db_ns: int
    queries: int
    kind: str  # the decision's kind, or "none"


@dataclass
class Calls:
    calls: list[Call] = field(default_factory=list)
    wall_ns: int = 0

    def of(self, kind: str | None = None) -> list[Call]:
        return [c for c in self.calls if kind is None or c.kind == kind]

    def kinds(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in self.calls))


# --- the benchmark -----------------------------------------------------------------------------------


@benchmark("routing", description="Routing decisions: route_item, route_for_agent, 2 processes, scaling")
def routing(ctx: Context) -> Iterator[Result]:
    shape = QUICK if ctx.options.quick else FULL
    with exclusive_run(), own_task_queue() as queue:
        clear()
        try:
            built = build(shape)
            log(
                f"routing: {shape.agents} agents, {shape.tenants} tenants, {shape.items:,} queued items "
                f"built in {built.seconds:.1f} s; tasks go to {queue}"
            )
            yield from _route_item_variants(ctx, shape, built)
            yield from _route_for_agent_variant(ctx, shape, built)
            yield from _parallel_variant(ctx, shape, built)
            yield from _scaling_variants(ctx, shape, built)
        finally:
            clear()


def _common(ctx: Context, shape: Shape) -> dict[str, Any]:
    with connection.cursor() as cursor:
        # JIT compilation of the facts query dominates a decision when it is on (docs/performance.md).
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    return {
        "jit": jit,
        "agents": shape.agents,
        "tenants": shape.tenants,
        "queued": shape.items,
        "target_p99_ms": TARGET_P99_MS,
        "quick": ctx.options.quick,
        "load_1m": machine_load(),
    }


def _result(name: str, calls: Sequence[Call], extra: dict[str, Any], *, throughput: bool = True) -> Result:
    db_ms = [c.db_ns / 1_000_000 for c in calls]
    counts = [c.queries for c in calls]
    return Result(
        name=name,
        samples_ns=[c.ns for c in calls],
        queries=max(counts),
        rows=extra.get("queued"),
        has_throughput=throughput,
        extra={
            **({"queries_min": min(counts)} if min(counts) != max(counts) else {}),
            "queries_median": percentile([float(n) for n in counts], 50),
            "db_median_ms": round(percentile(db_ms, 50), 3),
            "db_p95_ms": round(percentile(db_ms, 95), 3),
            **extra,
        },
    )


def _route_item_variants(ctx: Context, shape: Shape, built: Built) -> Iterator[Result]:
    reset(built)
    items = _item_sample(built, shape.decisions)
    log(f"routing.route_item: {len(items)} decisions, one process")
    measured = timed(lambda item_id: services.route_item(item_id=item_id), items)
    assigned = measured.of(RoutingDecision.Kind.ASSIGNED)
    seconds = measured.wall_ns / 1e9
    common = _common(ctx, shape) | {"kinds": measured.kinds()}
    p99 = percentile([c.ns / 1e6 for c in measured.calls], 99)
    yield _result(
        "routing.route_item",
        measured.calls,
        common
        | {
            "assignments_per_second": round(len(assigned) / seconds, 1),
            "decisions_per_second_wall": round(len(measured.calls) / seconds, 1),
            "meets_target": p99 < TARGET_P99_MS,
        },
    )
    for kind in (RoutingDecision.Kind.ASSIGNED, RoutingDecision.Kind.WAITING):
        subset = measured.of(kind)
        if subset:
            yield _result(f"routing.route_item.{kind}", subset, _common(ctx, shape))


def _route_for_agent_variant(ctx: Context, shape: Shape, built: Built) -> Iterator[Result]:
    reset(built)
    agents = random.Random(SEED + 1).sample(built.agent_ids, min(shape.pulls, len(built.agent_ids)))
    log(f"routing.route_for_agent: {len(agents)} pulls, one process")
    measured = timed(lambda agent_id: services.route_for_agent(agent_id=agent_id), agents)
    yield _result(
        "routing.route_for_agent", measured.calls, _common(ctx, shape) | {"kinds": measured.kinds()}
    )


def _parallel_variant(ctx: Context, shape: Shape, built: Built) -> Iterator[Result]:
    reset(built)
    items = _item_sample(built, shape.decisions)
    log(f"routing.parallel_{PARALLEL_WORKERS}: {len(items)} decisions over {PARALLEL_WORKERS} processes")
    per_worker, wall_ns = run_parallel(items, PARALLEL_WORKERS)
    calls = [c for worker in per_worker for c in worker.calls]
    assigned = sum(1 for c in calls if c.kind == RoutingDecision.Kind.ASSIGNED)
    seconds = wall_ns / 1e9
    # per_second (1000 / mean latency) would describe one process; the combined rates are below.
    yield _result(
        f"routing.parallel_{PARALLEL_WORKERS}",
        calls,
        _common(ctx, shape)
        | {
            "kinds": dict(Counter(c.kind for c in calls)),
            "workers": PARALLEL_WORKERS,
            "decisions_per_second_wall": round(len(calls) / seconds, 1),
            "assignments_per_second": round(assigned / seconds, 1),
            "worker_decisions": [len(w.calls) for w in per_worker],
            "overloaded": overloaded(built),
            "assigned_twice": assigned_twice(built),
        },
        throughput=False,
    )


def _scaling_variants(ctx: Context, shape: Shape, built: Built) -> Iterator[Result]:
    reset(built)
    measured: dict[int, tuple[Calls, Calls, int]] = {}
    for tenant_id in built.scale_tenant_ids:
        authorised = TenantAuthorisation.objects.filter(tenant_id=tenant_id).count()
        spoken = scale_items(tenant_id, language="en", count=shape.scale_decisions)
        unspoken = scale_items(tenant_id, language=UNSPOKEN, count=shape.scale_decisions)
        log(f"routing.agents_{authorised}: {len(spoken)} assigned and {len(unspoken)} waiting decisions")
        assigned = timed(lambda item_id: services.route_item(item_id=item_id), spoken)
        waiting = timed(lambda item_id: services.route_item(item_id=item_id), unspoken)
        measured[tenant_id] = (assigned, waiting, authorised)
    # The facts query of the large tenant's waiting decisions: every agent, two languages.
    with CaptureQueriesContext(connection) as captured:
        agent_facts(
            tenant_id=built.scale_tenant_ids[-1],
            channel=Channel.EMAIL,
            languages={UNSPOKEN, "en"},
            skill_id=None,
            now=timezone.now(),
        )
    facts_sql = captured.captured_queries[-1]["sql"]
    small, large = (measured[t] for t in built.scale_tenant_ids)
    constant = {
        kind: max(c.queries for c in small[i].calls) == max(c.queries for c in large[i].calls)
        and min(c.queries for c in small[i].calls) == min(c.queries for c in large[i].calls)
        for i, kind in enumerate(("assigned", "waiting"))
    }
    plan_ms, planning_ms = explain_to_stderr(facts_sql, label=f"agent_facts with {large[2]} agents")
    for assigned, waiting, authorised in (small, large):
        kinds = Counter(c.kind for c in assigned.calls + waiting.calls)
        extra = _common(ctx, shape) | {
            "authorised_agents": authorised,
            "kinds": dict(kinds),
            "waiting_median_ms": round(percentile([c.ns / 1e6 for c in waiting.calls], 50), 3),
            "waiting_p99_ms": round(percentile([c.ns / 1e6 for c in waiting.calls], 99), 3),
            "waiting_queries": max(c.queries for c in waiting.calls),
            "queries_constant": constant,
        }
        if authorised == large[2]:
            extra |= {"plan_ms": plan_ms, "planning_ms": planning_ms}
        yield _result(f"routing.agents_{authorised}", assigned.calls, extra)


# --- timing ------------------------------------------------------------------------------------------


def timed(call: Callable[[int], RoutingDecision | None], ids: Sequence[int]) -> Calls:
    """Call ``call(id)`` for each id; per call its wall time, time in ``cursor.execute`` and queries."""
    in_db = [0]

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.perf_counter_ns() - started

    result = Calls()
    begun = time.perf_counter_ns()
    with connection.execute_wrapper(timed_execute):
        for id_ in ids:
            in_db[0] = 0
            connection.queries_log.clear()  # CaptureQueriesContext keeps at most 9,000
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter_ns()
                decision = call(id_)
                elapsed = time.perf_counter_ns() - start
            result.calls.append(Call(elapsed, in_db[0], len(captured), decision.kind if decision else "none"))
    result.wall_ns = time.perf_counter_ns() - begun
    return result


def _worker(ids: Sequence[int], barrier: Any, results: Any) -> None:
    """A forked worker: its own connection and broker pool; routes its share, sends back its Calls."""
    try:
        connections.close_all()  # inherited descriptors are the parent's; open our own
        _drop_celery_pools()
        connection.ensure_connection()
        barrier.wait(timeout=120)
        results.send(("ok", timed(lambda item_id: services.route_item(item_id=item_id), ids)))
    except BaseException:
        results.send(("error", traceback.format_exc()))
    finally:
        connections.close_all()
        results.close()


def run_parallel(ids: Sequence[int], workers: int) -> tuple[list[Calls], int]:
    """Route ``ids`` in ``workers`` forked processes released together; returns their calls and the
    wall time from the release to the last one's end."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    connections.close_all()  # never share a connection across fork
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    processes = [
        context.Process(target=_worker, args=(ids[n::workers], barrier, pipes[n][1]), name=f"bench-route-{n}")
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for _receive, send in pipes:
        send.close()
    try:
        barrier.wait(timeout=120)
        begun = time.perf_counter_ns()
        outcomes = [receive.recv() for receive, _send in pipes]
        wall_ns = time.perf_counter_ns() - begun
    finally:
        for process in processes:
            process.join(timeout=60)
    errors = [payload for status, payload in outcomes if status != "ok"]
    if errors:
        raise RuntimeError("A routing benchmark worker failed:\n" + "\n".join(errors))
    return [payload for _status, payload in outcomes], wall_ns


def explain_to_stderr(sql: str, *, label: str) -> tuple[float | None, float | None]:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql`` to stderr; returns (execution, planning) time in ms."""
    if not sql:
        return None, None
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        lines = [row[0] for row in cursor.fetchall()]
    log(f"{label}: EXPLAIN (ANALYZE, BUFFERS) of\n    {sql}\n" + "\n".join(f"    {line}" for line in lines))

    def ms(prefix: str) -> float | None:
        found = [line for line in lines if line.startswith(prefix)]
        return float(found[0].split(":")[1].strip().split()[0]) if found else None

    return ms("Execution Time"), ms("Planning Time")


# --- checks after the parallel run ---------------------------------------------------------------


def overloaded(built: Built) -> int:
    """(agent, channel) pairs holding more actionable tickets than the capacity."""
    loads = (
        Ticket.objects.filter(tenant_id__in=built.tenant_ids, status__in=ACTIONABLE, assignee__isnull=False)
        .values_list("assignee_id", "channel")
        .annotate(n=Count("pk"))
    )
    return sum(1 for agent_id, channel, n in loads if n > built.capacities.get((agent_id, channel), 0))


def assigned_twice(built: Built) -> int:
    return (
        RoutingDecision.objects.filter(tenant_id__in=built.tenant_ids, kind=RoutingDecision.Kind.ASSIGNED)
        .values("ticket_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )


# --- the sample ------------------------------------------------------------------------------------


def _item_sample(built: Built, count: int) -> list[int]:
    items = list(
        QueuedItem.objects.filter(tenant_id__in=built.tenant_ids).order_by("pk").values_list("pk", flat=True)
    )
    return random.Random(SEED).sample(items, min(count, len(items)))


# --- isolation ---------------------------------------------------------------------------------------


@contextmanager
def exclusive_run() -> Iterator[None]:
    """One ``routing`` run per database at a time (two would clear each other's data)."""
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(dbname=dbname, autocommit=True, **_connect_params()) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, 0)", [_LOCK_CLASS]).fetchone()
        if not (row and row[0]):
            log(f"another routing run is using {dbname}; waiting for it to finish")
            conn.execute("SELECT pg_advisory_lock(%s, 0)", [_LOCK_CLASS])
        yield


def _drop_celery_pools() -> None:
    from config.celery import app

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    import kombu.pools

    kombu.pools.reset()  # kombu's own registry would hand the closed pool out again


@contextmanager
def own_task_queue() -> Iterator[str]:
    """The tasks routing schedules after commit go to a queue of this run's own, deleted at the end."""
    from config.celery import app

    queue = f"care-bench-routing-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    saved = app.conf.task_default_queue
    _drop_celery_pools()
    app.conf.task_default_queue = queue
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    try:
        yield queue
    finally:
        _drop_celery_pools()
        app.conf.task_default_queue = saved
        leftovers = list(client.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()
