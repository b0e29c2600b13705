"""Benchmark ``sla_sweep``: the SLA engine's safety net over 1,000,000 running clocks, 1 % overdue.

Calls the engine as its Celery tasks do: ``care.sla.services.sla_sweep()`` (beat's ``sweep_sla``,
every ``SLA_SWEEP_SECONDS``) and ``sla_fire(clock_ids=[id])`` (a clock's own timer, ``fire_clock``).
A call is its transactions plus, after the commit, the ``apply_actions`` task it sends per new event;
those go to a Redis queue of this run's own, emptied after each round and deleted at the end: no
worker runs them.

The data (``bench/sla_data.py``): one running first-response clock per ticket of the shared dataset
(1,000,000; ``--quick`` 20,000), 1 % of them overdue and not breached (10,000; quick 200), one
earlier event per clock with its actions done. Deleted at the end.

Results (one JSON line each):

- ``sla_sweep.call``: one ``sla_sweep()`` call that had work: it records at most ``FIRE_BATCH``
  (5,000) breaches, so the 10,000 overdue clocks take two calls. ``db_ms`` (statements and COMMIT,
  where the deferred foreign keys are checked), ``dispatch_ms`` (sending the ``apply_actions``
  tasks after the commit) and ``python_ms`` (the rest) split its median.
- ``sla_sweep.all_overdue``: per round, the sum of those calls: every overdue clock breached, the
  figure the target (under 1 s) is about; ``meets_target``; ``round_*_ms`` split it (means).
- ``sla_sweep.all_overdue.one_call``: the same with a single ``sla_fire(batch=<all overdue>)``.
- ``sla_sweep.all_overdue.chunked_actions``: the same with the actions sent ``ACTIONS_CHUNK`` events
  to a task (Celery's ``apply_actions.chunks``) instead of one task per event: a proposal, measured
  by swapping ``services._dispatch_actions`` for the duration of the variant.
- ``sla_sweep.fire_clock``: one clock's timer (``sla_fire(clock_ids=[id])`` on an overdue clock):
  ``per_second`` is what one worker process can fire one by one.
- ``sla_sweep.idle``: a sweep when nothing is due, the usual case every ``SLA_SWEEP_SECONDS``.
- ``sla_sweep.lag``: clocks coming due at ``LAG_RATE`` per second (a thread inserts a batch of new
  next-response clocks every 100 ms, due 2 s later, warning 0.5 s before) while ``sla_sweep()`` runs
  every second, with no timers: the samples are the delays between a clock's due time and its breach
  event's creation (``warning_*`` the same for the warnings), ``sweep_*`` the sweeps' own times.

The log (stderr) shows each round's calls with their slowest statements. The statements that find
the due clocks (breaches: partial index ``sla_clock_due``; warnings: ``sla_clock_warn``) and the
sweep's query for events whose actions were lost are EXPLAINed (ANALYZE, BUFFERS) to stderr, with the
overdue clocks in place; ``due_plan``, ``warn_plan`` and ``lost_actions_plan`` summarise them. The
lost-actions query is also EXPLAINed with a partial index on ``sla_slaevent (id) WHERE
actions_done_at IS NULL`` created in a transaction that is rolled back
(``lost_actions_plan_with_index``): that index is not in the migrations.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.database import _connect_params
from bench.harness import Context, Result, benchmark, log, machine_load, measure, percentile
from bench.sla_data import Built, actions_done, build, clear, reset
from care.sla import services

TARGET_MS = 1000.0
LAG_RATE = 200  # clocks coming due per second
LAG_TICK = 0.1  # the writer inserts LAG_RATE * LAG_TICK clocks every LAG_TICK seconds
LAG_LEAD = dt.timedelta(seconds=2)  # a new clock is due this long after it is inserted
LAG_WARN_BEFORE = dt.timedelta(seconds=0.5)
SWEEP_INTERVAL = 1.0
ACTIONS_CHUNK = 100  # events per task in the chunked-dispatch variant
IDLE_ITERATIONS, IDLE_WARMUP = 100, 5  # full runs: an idle sweep reads every event (see the plans)
_LOCK_CLASS = 0x736C6177  # "slaw": the advisory-lock key of this benchmark


@dataclass(frozen=True)
class Shape:
    rounds: int  # times every overdue clock is breached (reset in between)
    fire_clock_samples: int
    lag_seconds: int


FULL = Shape(rounds=3, fire_clock_samples=300, lag_seconds=20)
QUICK = Shape(rounds=3, fire_clock_samples=30, lag_seconds=5)


@dataclass
class Call:
    ns: int
    db_ns: int
    dispatch_ns: int
    queries: int
    counts: dict[str, Any]
    sql: list[str] = field(default_factory=list)
    statements: list[tuple[int, str]] = field(default_factory=list)  # (ns, SQL), COMMIT included


# --- the benchmark -------------------------------------------------------------------------------


@benchmark("sla_sweep", description="SLA sweep over 1,000,000 running clocks, 1 % overdue; due-to-breach lag")
def sla_sweep(ctx: Context) -> Iterator[Result]:
    shape = QUICK if ctx.options.quick else FULL
    tenant_ids = [tenant.id for tenant in ctx.dataset.tenants]
    with exclusive_run(), own_task_queue() as queue:
        clear(tenant_ids)
        try:
            built = build(tenant_ids)
            log(
                f"sla_sweep: {built.clocks:,} clocks ({len(built.overdue_ids):,} overdue), "
                f"{built.history:,} earlier events, built in {built.seconds:.1f} s; tasks go to {queue.name}"
            )
            common = _common(ctx, built)
            plans = _explain(built)
            yield from _sweep_variants(shape, built, queue, common | plans)
            yield from _fire_clock_variant(ctx, shape, built, queue, common)
            yield from _idle_variant(ctx, built, queue, common | plans)
            yield from _lag_variant(shape, built, queue, common)
        finally:
            clear(tenant_ids)


def _common(ctx: Context, built: Built) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('sla_slaclock') + pg_total_relation_size('sla_slaevent'), "
            "current_setting('shared_buffers')"
        )
        size, shared_buffers = cursor.fetchone()
    return {
        "sla_tables_mb": round(size / 2**20),
        "shared_buffers": shared_buffers,
        "clocks": built.clocks,
        "overdue": len(built.overdue_ids),
        "earlier_events": built.history,
        "fire_batch": services.FIRE_BATCH,
        "quick": ctx.options.quick,
    }


def _result(name: str, samples_ns: Sequence[int], extra: dict[str, Any], **kwargs: Any) -> Result:
    return Result(
        name=name,
        samples_ns=list(samples_ns),
        queries=kwargs.pop("queries", None),
        rows=extra.get("clocks"),
        extra=extra | {"load_1m": machine_load()},
        **kwargs,
    )


def _ms(values_ns: Sequence[int], pct: float) -> float:
    return round(percentile([v / 1e6 for v in values_ns], pct), 3)


# --- one sweep over the overdue clocks -----------------------------------------------------------


def _sweep_variants(shape: Shape, built: Built, queue: TaskQueue, extra: dict[str, Any]) -> Iterator[Result]:
    overdue = len(built.overdue_ids)
    rounds = _rounds(shape, built, queue, services.sla_sweep, label="sla_sweep")
    calls = [call for calls in rounds for call in calls]
    yield _result(
        "sla_sweep.call",
        [c.ns for c in calls],
        extra | _split(calls) | {"breaches_per_call": [c.counts["breach"] for c in rounds[0]]},
        queries=max(c.queries for c in calls),
        has_throughput=False,
    )
    yield _all_overdue("sla_sweep.all_overdue", rounds, overdue, extra)
    # What one call costs when its batch holds every overdue clock.
    rounds = _rounds(
        shape, built, queue, functools.partial(services.sla_fire, batch=overdue), label="one call"
    )
    yield _all_overdue("sla_sweep.all_overdue.one_call", rounds, overdue, _plain(extra) | {"batch": overdue})
    # What the sweep costs when the actions go out ACTIONS_CHUNK events to a task (Celery's chunks of
    # apply_actions) instead of one task per event: measured by swapping services._dispatch_actions.
    engine_dispatch = services._dispatch_actions
    services._dispatch_actions = _chunked_dispatch
    try:
        rounds = _rounds(shape, built, queue, services.sla_sweep, label="chunked actions")
    finally:
        services._dispatch_actions = engine_dispatch
    yield _all_overdue(
        "sla_sweep.all_overdue.chunked_actions", rounds, overdue, _plain(extra) | {"chunk": ACTIONS_CHUNK}
    )


def _rounds(
    shape: Shape, built: Built, queue: TaskQueue, sweep: Callable[[], dict[str, Any]], *, label: str
) -> list[list[Call]]:
    """``shape.rounds`` times: reset, then call ``sweep`` until every overdue clock is breached."""
    rounds = []
    for number in range(shape.rounds):
        reset(built)
        queue.empty()
        calls: list[Call] = []
        while sum(c.counts["breach"] for c in calls) < len(built.overdue_ids):
            calls.append(timed(sweep))
            if not calls[-1].counts["breach"]:
                raise RuntimeError(f"{label}: {calls[-1].counts} before every overdue clock was breached")
        rounds.append(calls)
        if not queue.length():
            raise RuntimeError(f"{label}: no task reached the queue: the actions were not sent (see the log)")
        log(
            f"{label} round {number + 1}: {sum(c.counts['breach'] for c in calls):,} breaches in "
            f"{len(calls)} calls, {sum(c.ns for c in calls) / 1e6:.0f} ms "
            f"({', '.join(f'{c.ns / 1e6:.0f}' for c in calls)} ms; dispatch "
            f"{', '.join(f'{c.dispatch_ns / 1e6:.0f}' for c in calls)} ms); {queue.length():,} tasks "
            f"queued; slowest statements of the first call: {slowest(calls[0])}"
        )
    return rounds


def _all_overdue(name: str, rounds: list[list[Call]], overdue: int, extra: dict[str, Any]) -> Result:
    """Per round, the time to breach every overdue clock (the sum of its calls)."""
    totals = [sum(c.ns for c in calls) for calls in rounds]
    median_ms = percentile([ns / 1e6 for ns in totals], 50)
    return _result(
        name,
        totals,
        extra
        | _split([c for calls in rounds for c in calls], per=len(rounds))
        | {
            "calls_per_round": len(rounds[0]),
            "breaches_per_second": round(overdue / (median_ms / 1000), 1),
            "target_ms": TARGET_MS,
            "meets_target": median_ms < TARGET_MS,
        },
        queries=max(c.queries for calls in rounds for c in calls),
        has_throughput=False,
    )


def _split(calls: Sequence[Call], *, per: int | None = None) -> dict[str, float]:
    """Where the time went, median per call (or, with ``per`` rounds, mean per round): in the
    database (statements and COMMIT), sending the actions' tasks, and the rest (Python)."""

    def typical(values: list[int]) -> float:
        return round(sum(values) / per / 1e6, 3) if per else _ms(values, 50)

    prefix = "round_" if per else ""
    return {
        f"{prefix}db_ms": typical([c.db_ns for c in calls]),
        f"{prefix}dispatch_ms": typical([c.dispatch_ns for c in calls]),
        f"{prefix}python_ms": typical([c.ns - c.db_ns - c.dispatch_ns for c in calls]),
    }


def _plain(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` without the plans (they are on the first lines already)."""
    return {key: value for key, value in extra.items() if "_plan" not in key and key != "due_index"}


def _chunked_dispatch(event_ids: list[int]) -> None:
    from care.sla.tasks import apply_actions

    apply_actions.chunks([(event_id,) for event_id in event_ids], ACTIONS_CHUNK).apply_async()


def _fire_clock_variant(
    ctx: Context, shape: Shape, built: Built, queue: TaskQueue, extra: dict[str, Any]
) -> Iterator[Result]:
    reset(built)
    queue.empty()
    step = max(1, len(built.overdue_ids) // shape.fire_clock_samples)
    sample = built.overdue_ids[::step][: shape.fire_clock_samples]
    calls = [timed(functools.partial(services.sla_fire, clock_ids=[clock_id])) for clock_id in sample]
    if any(c.counts["breach"] != 1 for c in calls):
        raise RuntimeError("a timer did not record its clock's breach")
    yield _result(
        "sla_sweep.fire_clock",
        [c.ns for c in calls],
        extra
        | {
            "db_median_ms": _ms([c.db_ns for c in calls], 50),
            "dispatch_median_ms": _ms([c.dispatch_ns for c in calls], 50),
        },
        queries=max(c.queries for c in calls),
    )


def _idle_variant(ctx: Context, built: Built, queue: TaskQueue, extra: dict[str, Any]) -> Iterator[Result]:
    while services.sla_sweep()["breach"]:  # whatever the timers above left
        pass
    actions_done(built)
    queue.empty()
    measured = measure(
        services.sla_sweep,
        iterations=min(ctx.options.iterations, IDLE_ITERATIONS),
        warmup=min(ctx.options.warmup, IDLE_WARMUP),
    )
    counts = measured.last_value
    if counts["breach"] or counts["actions_retried"]:
        raise RuntimeError(f"the idle sweep found work: {counts}")
    yield _result(
        "sla_sweep.idle",
        measured.samples_ns,
        extra | measured.query_fields(),
        queries=measured.queries_per_iteration,
    )


# --- lag under a steady stream of clocks coming due ----------------------------------------------


_LAG_CLOCKS_SQL = """
INSERT INTO sla_slaclock (
    created_at, updated_at, tenant_id, ticket_id, policy_id, target, state, budget_seconds,
    business_hours, started_at, elapsed_seconds, resumed_at, due_at, warn_at, paused_at, met_at,
    stopped_at, warned_at, breached_at
)
SELECT %(now)s, %(now)s, t.tenant_id, t.id, p.id, 'next_response', 'running', 2, false, %(now)s, 0,
    %(now)s, %(due)s, %(warn)s, NULL, NULL, NULL, NULL, NULL
FROM tickets_ticket t JOIN sla_slapolicy p ON p.tenant_id = t.tenant_id AND p.id = ANY(%(policy_ids)s)
WHERE t.id = ANY(%(ticket_ids)s)
"""


def _lag_variant(shape: Shape, built: Built, queue: TaskQueue, extra: dict[str, Any]) -> Iterator[Result]:
    # From the idle state: every overdue clock breached, every action done, nothing due.
    while services.sla_sweep()["breach"]:
        pass
    actions_done(built)
    queue.empty()
    per_tick = round(LAG_RATE * LAG_TICK)
    ticks = round(shape.lag_seconds / LAG_TICK)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM tickets_ticket t JOIN sla_slapolicy p ON p.tenant_id = t.tenant_id "
            "WHERE p.id = ANY(%s) ORDER BY t.id LIMIT %s",
            [built.policy_ids, per_tick * ticks],
        )
        tickets = [row[0] for row in cursor.fetchall()]
    errors: list[BaseException] = []
    begun = time.monotonic() + 0.5

    def writer() -> None:
        try:
            for tick in range(ticks):
                _sleep_until(begun + tick * LAG_TICK)
                now = timezone.now()
                with connection.cursor() as cursor:
                    cursor.execute(
                        _LAG_CLOCKS_SQL,
                        {
                            "now": now,
                            "due": now + LAG_LEAD,
                            "warn": now + LAG_LEAD - LAG_WARN_BEFORE,
                            "policy_ids": built.policy_ids,
                            "ticket_ids": tickets[tick * per_tick : (tick + 1) * per_tick],
                        },
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer, name="bench-sla-writer")
    thread.start()
    sweeps: list[Call] = []
    until = begun + shape.lag_seconds + LAG_LEAD.total_seconds() + 2 * SWEEP_INTERVAL
    next_sweep = begun + SWEEP_INTERVAL
    # Until the last clock is due and swept; on a slow machine, on until every clock is breached.
    while time.monotonic() < until or (_lag_pending(built) and time.monotonic() < until + 60):
        _sleep_until(next_sweep)
        sweeps.append(timed(services.sla_sweep))
        next_sweep = max(next_sweep + SWEEP_INTERVAL, time.monotonic())
    thread.join(timeout=60)
    if errors:
        raise errors[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.kind, e.created_at - CASE WHEN e.kind = 'breach' THEN c.due_at ELSE c.warn_at END "
            "FROM sla_slaevent e JOIN sla_slaclock c ON c.id = e.clock_id "
            "WHERE c.policy_id = ANY(%s) AND c.target = 'next_response'",
            [built.policy_ids],
        )
        lags: dict[str, list[int]] = {"breach": [], "warning": []}
        for kind, delay in cursor.fetchall():
            lags[kind].append(int(delay.total_seconds() * 1e9))
        cursor.execute(
            "SELECT count(*) FROM sla_slaclock WHERE policy_id = ANY(%s) AND target = 'next_response'",
            [built.policy_ids],
        )
        (inserted,) = cursor.fetchone()
    if len(lags["breach"]) != inserted or len(lags["warning"]) != inserted:
        raise RuntimeError(
            f"lag: {inserted} clocks, {len(lags['breach'])} breaches, {len(lags['warning'])} warnings"
        )
    sweep_ns = [s.ns for s in sweeps]
    log(
        f"sla_sweep.lag: {inserted:,} clocks over {shape.lag_seconds} s, {len(sweeps)} sweeps "
        f"(median {_ms(sweep_ns, 50)} ms, max {max(sweep_ns) / 1e6:.0f} ms); breach lag p50 "
        f"{_ms(lags['breach'], 50)} ms, p99 {_ms(lags['breach'], 99)} ms"
    )
    reset(built)
    yield _result(
        "sla_sweep.lag",
        lags["breach"],
        extra
        | {
            "rate_per_second": LAG_RATE,
            "seconds": shape.lag_seconds,
            "lag_clocks": inserted,
            "sweep_interval_s": SWEEP_INTERVAL,
            "sweeps": len(sweeps),
            "sweep_median_ms": _ms(sweep_ns, 50),
            "sweep_max_ms": round(max(sweep_ns) / 1e6, 3),
            "sweep_dispatch_median_ms": _ms([s.dispatch_ns for s in sweeps], 50),
            "warning_median_ms": _ms(lags["warning"], 50),
            "warning_p99_ms": _ms(lags["warning"], 99),
        },
        has_throughput=False,
    )


def _lag_pending(built: Built) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM sla_slaclock WHERE policy_id = ANY(%s) "
            "AND target = 'next_response' AND (breached_at IS NULL OR warned_at IS NULL))",
            [built.policy_ids],
        )
        return bool(cursor.fetchone()[0])


def _sleep_until(instant: float) -> None:
    left = instant - time.monotonic()
    if left > 0:
        time.sleep(left)


# --- timing --------------------------------------------------------------------------------------


def timed(call: Callable[[], dict[str, Any]]) -> Call:
    """Run ``call`` once: its wall time, its time in ``cursor.execute`` and in ``COMMIT`` (where the
    deferred foreign keys are checked), in ``_dispatch_actions`` (the tasks sent after the commit),
    its queries and each statement's time."""
    in_db = [0]
    in_dispatch = [0]
    statements: list[tuple[int, str]] = []
    dispatch = services._dispatch_actions
    db: Any = connection  # ``_commit`` is private: not in the stubs
    commit = db._commit

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter_ns() - started
            in_db[0] += spent
            statements.append((spent, sql))

    def timed_commit() -> None:
        started = time.perf_counter_ns()
        try:
            commit()
        finally:
            spent = time.perf_counter_ns() - started
            in_db[0] += spent
            statements.append((spent, "COMMIT"))

    def timed_dispatch(event_ids: list[int]) -> None:
        started = time.perf_counter_ns()
        try:
            dispatch(event_ids)
        finally:
            in_dispatch[0] += time.perf_counter_ns() - started

    services._dispatch_actions = timed_dispatch
    db._commit = timed_commit
    try:
        connection.queries_log.clear()
        with connection.execute_wrapper(timed_execute), CaptureQueriesContext(connection) as captured:
            start = time.perf_counter_ns()
            counts = call()
            elapsed = time.perf_counter_ns() - start
    finally:
        services._dispatch_actions = dispatch
        del db._commit  # the class's method again
    return Call(
        ns=elapsed,
        db_ns=in_db[0],
        dispatch_ns=in_dispatch[0],
        queries=len(captured),
        counts=counts,
        sql=[query["sql"] for query in captured.captured_queries],
        statements=statements,
    )


def slowest(call: Call, count: int = 4) -> str:
    """The call's slowest statements, for the log: ``812 ms INSERT INTO "sla_slaevent" …``."""
    ranked = sorted(call.statements, key=lambda item: -item[0])[:count]
    return "; ".join(f"{ns / 1e6:.0f} ms {' '.join(sql.split())[:60]}…" for ns, sql in ranked)


# --- plans ---------------------------------------------------------------------------------------


def _explain(built: Built) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) the sweep's statements on the built data (overdue clocks in place)."""
    reset(built)
    # The SQL the sweep sends, captured from one call and rolled back (the data stays as built).
    with transaction.atomic():
        call = timed(lambda: services.sla_sweep())
        transaction.set_rollback(True)
    due_sql = _find(call.sql, "FOR UPDATE", '"due_at" <=')
    warn_sql = _find(call.sql, "FOR UPDATE", '"warn_at" <=')
    lost_sql = _find(call.sql, '"actions_done_at" IS NULL', "LIMIT")
    due = explain(due_sql, label="due clocks (breaches)")
    plans = {
        "due_plan": due.summary,
        "due_plan_ms": due.execution_ms,
        "due_index": due.indexes,
        "warn_plan": explain(warn_sql, label="due clocks (warnings)").summary,
        "lost_actions_plan": explain(lost_sql, label="events whose actions were lost").summary,
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX sla_event_actions_pending_bench ON sla_slaevent (id) "
                "WHERE actions_done_at IS NULL"
            )
            cursor.execute("ANALYZE sla_slaevent")
        plans["lost_actions_plan_with_index"] = explain(
            lost_sql, label="events whose actions were lost, with a partial index (rolled back)"
        ).summary
        transaction.set_rollback(True)
    if "sla_clock_due" not in due.indexes:
        log(f"WARNING: the due-clock query does not use sla_clock_due: {due.summary}")
    return plans


def _find(statements: Sequence[str], *parts: str) -> str:
    for sql in statements:
        if all(part in sql for part in parts):
            return sql
    raise RuntimeError(f"no statement with {parts} among {len(statements)}")


@dataclass(frozen=True)
class Plan:
    summary: str
    execution_ms: float
    indexes: list[str]


def explain(sql: str, *, label: str) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS) to stderr (in a transaction rolled back: the statement may lock rows)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        text = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
        transaction.set_rollback(True)
    log(f"{label}: EXPLAIN (ANALYZE, BUFFERS) of\n    {sql}\n" + "\n".join(f"    {line}" for line in text))
    document = (raw if isinstance(raw, list) else json.loads(raw))[0]
    nodes = list(_walk(document["Plan"]))
    access = [
        node["Node Type"]
        + (f" using {node['Index Name']}" if "Index Name" in node else "")
        + f" on {node['Relation Name']} (rows {node.get('Actual Rows', '?')})"
        for node in nodes
        if "Relation Name" in node
    ]
    top = document["Plan"]
    execution_ms = round(float(document.get("Execution Time", 0.0)), 3)
    summary = (
        f"{' > '.join(node['Node Type'] for node in nodes if 'Relation Name' not in node)}"
        f"{' > ' if len(nodes) > len(access) else ''}{'; '.join(access)}; "
        f"buffers hit={top.get('Shared Hit Blocks', 0)} read={top.get('Shared Read Blocks', 0)}; "
        f"{execution_ms:.3f} ms"
    )
    return Plan(
        summary=summary,
        execution_ms=execution_ms,
        indexes=[n["Index Name"] for n in nodes if "Index Name" in n],
    )


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


# --- isolation -----------------------------------------------------------------------------------


@contextmanager
def exclusive_run() -> Iterator[None]:
    """One ``sla_sweep`` run per database at a time (two would clear each other's data)."""
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(dbname=dbname, autocommit=True, **_connect_params()) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, 0)", [_LOCK_CLASS]).fetchone()
        if not (row and row[0]):
            log(f"another sla_sweep run is using {dbname}; waiting for it to finish")
            conn.execute("SELECT pg_advisory_lock(%s, 0)", [_LOCK_CLASS])
        yield


@dataclass
class TaskQueue:
    name: str
    client: redis.Redis

    def length(self) -> int:
        return int(self.client.llen(self.name))  # type: ignore[arg-type]  # a sync client

    def empty(self) -> None:
        self.client.delete(self.name)


def _drop_celery_pools() -> None:
    from config.celery import app as celery_app

    app: Any = celery_app  # the pools are private attributes, not in the stubs

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    # kombu's own registry of pools per broker URL would hand out a pool closed above (or by another
    # benchmark of the run) again: "Acquire on closed pool", and no task sent.
    import kombu.pools

    kombu.pools.reset()


@contextmanager
def own_task_queue() -> Iterator[TaskQueue]:
    """The tasks the engine sends after commit go to a queue of this run's own, deleted at the end."""
    from config.celery import app

    name = f"care-bench-sla-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    saved = app.conf.task_default_queue
    _drop_celery_pools()
    app.conf.task_default_queue = name
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=30)
    try:
        yield TaskQueue(name=name, client=client)
    finally:
        _drop_celery_pools()
        app.conf.task_default_queue = saved
        leftovers = list(client.scan_iter(match=f"*{name}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()
