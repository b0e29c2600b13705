"""The SLA engine on real Celery workers and Redis: a breach is recorded once, on time, whatever happens.

The issue's acceptance test: a ticket whose first-response target passes produces exactly one breach
event within a few seconds of the due time, also when the worker is killed and restarted around the
due time. Workers are subprocesses on the test database and a Redis queue of this run's own
(``tests/celery_e2e.py``).

A policy's targets are whole minutes, so each test shortens the new ticket's first-response clock
to a few seconds with ``shorten``: a test-only helper that sets the clock's budget and lets the engine
plan (``_plan``) and arm (``_arm``) it as it does for any running clock. The timers the ticket's
creation armed (first response at 30 and 60 minutes, resolution at 2 and 4 hours) stay in the worker
and never come due during a test.

- On time, however often delivered: the engine's timers (ETA tasks) fire the warning and the breach
  at their instants, while two workers (the second on a queue of its own) hold further copies of the
  due instant's task and fire them at the same moment; then two threads run ``fire_clock`` at once
  on another due clock. One warning and one breach each.
- Killed: ``kill -9`` of the worker while it holds the due instant's ETA task (unacknowledged, in its
  memory: with Redis such a message only comes back after the visibility timeout, an hour), then a
  new worker with embedded beat, ``SLA_SWEEP_SECONDS=1``: the sweep records the breach, once, and
  neither another sweep nor the lost timer's late delivery records it again.

The measured lags are logged (``pytest -o log_cli=true --log-cli-level=INFO`` shows them) and
recorded as properties of the test (``--junitxml``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from care.sla.models import SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import _arm, _Calendars, _plan, _sync_ticket, sla_sweep
from care.sla.tasks import fire_clock
from care.tickets.models import Ticket
from tests.celery_e2e import WORKER_START_TIMEOUT, worker_env
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads
from tests.processes import ManagedProcess, celery_worker_command, running, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
log = logging.getLogger(__name__)

# How late the ETA timer may record the breach (it is milliseconds on a quiet machine); the recovery
# after a crash includes a worker's start-up and may take longer on a loaded machine.
TIMER_LAG_LIMIT = 3.0
RECOVERY_LAG_LIMIT = 30.0
EVENT_TIMEOUT = 30.0

RECEIVED = r"Task care\.sla\.tasks\.fire_clock\[[0-9a-f-]+\] received"
FIRED = r"Task care\.sla\.tasks\.fire_clock\[[0-9a-f-]+\] succeeded"
SWEEP = r"Task care\.sla\.tasks\.sweep_sla\[[0-9a-f-]+\] succeeded"
SWEEP_BREACH = r"Task care\.sla\.tasks\.sweep_sla\[[0-9a-f-]+\] succeeded in [\d.e-]+s: \{[^}]*'breach': 1\b"


@pytest.fixture
def policy(tenant_a) -> SlaPolicy:
    """Round the clock: due and warning instants are plain arithmetic, any hour of any day."""
    return SlaPolicy.objects.create(
        tenant=tenant_a,
        name="Round the clock",
        first_response_minutes=60,
        resolution_minutes=240,
        business_hours=False,
        warning_percent=50,
    )


def shorten(clock: SlaClock, *, due_in: int) -> SlaClock:
    """Test-only: give a running clock a budget that ends ``due_in`` seconds from now (whole seconds
    since its start), plan its warning and due instants and arm its timers, as the engine does."""
    with transaction.atomic():
        clock = (
            SlaClock.objects.select_for_update().select_related("policy", "ticket__tenant").get(pk=clock.pk)
        )
        assert clock.resumed_at is not None
        clock.budget_seconds = int((timezone.now() - clock.resumed_at).total_seconds()) + due_in
        _plan(clock, _Calendars(clock.ticket.tenant).for_clock(clock))
        clock.save(update_fields=["budget_seconds", "due_at", "warn_at", "updated_at"])
        _sync_ticket(clock.ticket)
        _arm(clock)  # sent to the broker when this block commits
    return clock


def first_response_clock(ticket: Ticket) -> SlaClock:
    return SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)


def events(clock: SlaClock, kind: str) -> list[SlaEvent]:
    return list(SlaEvent.objects.filter(ticket_id=clock.ticket_id, target=clock.target, kind=kind))


def breach_done(clock: SlaClock) -> bool:
    """The breach is recorded and its actions (the worker's ``apply_actions`` task) are done."""
    return SlaEvent.objects.filter(
        clock=clock, kind=SlaEvent.Kind.BREACH, actions_done_at__isnull=False
    ).exists()


def lag(event: SlaEvent, clock: SlaClock) -> float:
    assert clock.due_at is not None
    return (event.created_at - clock.due_at).total_seconds()


def count(pattern: str, *workers: ManagedProcess) -> int:
    return sum(len(re.findall(pattern, worker.log())) for worker in workers)


def logs(*workers: ManagedProcess) -> str:
    return "\n\n".join(worker.describe() for worker in workers)


def sleep_until(instant: dt.datetime) -> None:
    left = (instant - timezone.now()).total_seconds()
    if left > 0:
        time.sleep(left)


# --- On time, once, however often the timer is delivered -----------------------------------------


@pytest.fixture
def two_workers(transactional_db, broker, tmp_path) -> Iterator[tuple[ManagedProcess, ManagedProcess]]:
    """Two solo workers started together: the first on the run's queue (the engine's timers and
    actions), the second on a queue of its own (``-dup``), so that each surely holds copies of a task."""
    broker_url, queue = broker
    env = worker_env(broker_url=broker_url, queue=queue, run_dir=tmp_path / "run")
    processes = []
    for name, consumes in (("worker", queue), ("worker-dup", f"{queue}-dup")):
        args, _env = celery_worker_command(
            queue=consumes, hostname=f"{consumes}@{socket.gethostname()}", python=sys.executable
        )
        processes.append(ManagedProcess(name, args, env=env, log_path=tmp_path / f"{name}.log"))
    with running(processes[0]) as first, running(processes[1]) as second:
        for process in (first, second):
            process.wait_for_log(r"\bready\.", timeout=WORKER_START_TIMEOUT)
        yield first, second
        for process in (first, second):  # both begin their warm shutdown now, not one after the other
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


COPIES = 3  # of the due instant's timer, per worker


def test_workers_record_the_warning_and_the_breach_on_time_once_however_often_they_fire(
    policy, tenant_a, broker, two_workers, record_property
):
    _url, queue = broker
    ticket = make_ticket(tenant=tenant_a)
    clock = shorten(first_response_clock(ticket), due_in=3)
    assert clock.warn_at is not None
    assert clock.due_at is not None
    # As if the due instant's timer had been delivered again and again, to both workers: at the due
    # time, both fire it at once (each in its own process and database session).
    for target_queue in (queue, f"{queue}-dup"):
        for _ in range(COPIES - (target_queue == queue)):  # the engine armed one already
            fire_clock.apply_async(args=(clock.pk,), eta=clock.due_at, queue=target_queue)

    wait_until(
        lambda: breach_done(clock) and count(FIRED, *two_workers) >= 2 * COPIES + 1,
        timeout=4 + EVENT_TIMEOUT,
        what=f"the breach, its actions, and {2 * COPIES + 1} fire_clock runs",
        details=lambda: logs(*two_workers),
    )
    warnings, breaches = events(clock, SlaEvent.Kind.WARNING), events(clock, SlaEvent.Kind.BREACH)
    assert len(breaches) == 1
    assert len(warnings) == 1
    breach, warning = breaches[0], warnings[0]
    log.info(
        "on time: warning %.3f s after warn_at, breach %.3f s after due_at; fire_clock runs per worker %s",
        (warning.created_at - clock.warn_at).total_seconds(),
        lag(breach, clock),
        [count(FIRED, worker) for worker in two_workers],
    )
    record_property("breach_lag_seconds", round(lag(breach, clock), 3))
    assert [count(FIRED, worker) for worker in two_workers] == [COPIES + 1, COPIES]  # warning + due
    # Never early, and by a timer (neither worker runs beat): within moments of the instant.
    assert warning.created_at >= clock.warn_at
    assert 0 <= lag(breach, clock) < TIMER_LAG_LIMIT, lag(breach, clock)
    assert breach.due_at == warning.due_at == clock.due_at
    assert breach.actions == ["notified the assignee and the supervisors"]
    clock.refresh_from_db()
    assert clock.breached_at is not None
    assert clock.warned_at is not None
    # The resolution clock (4 h) has nothing to say yet.
    assert not SlaEvent.objects.filter(ticket=ticket, target=Target.RESOLUTION).exists()

    # Two threads (two connections) run fire_clock at the same moment on another clock, due now
    # (moved without arming: no worker holds a timer for it).
    resolution = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
    past = timezone.now() - dt.timedelta(seconds=1)
    SlaClock.objects.filter(pk=resolution.pk).update(warn_at=past, due_at=past)
    results = run_in_threads(lambda _index: fire_clock.apply(args=(resolution.pk,)).get(), 2)
    assert sorted(r["breach"] for r in results) == [0, 1], results
    assert sorted(r["warning"] for r in results) == [0, 1], results
    assert SlaEvent.objects.filter(clock=resolution, kind=SlaEvent.Kind.BREACH).count() == 1
    assert SlaEvent.objects.filter(clock=resolution, kind=SlaEvent.Kind.WARNING).count() == 1


# --- Killed around the due time ------------------------------------------------------------------


@pytest.fixture
def forget_unacked(broker) -> Iterator[None]:
    """After a ``kill -9``, the worker's unacknowledged messages stay in Redis's ``unacked`` hash (kombu),
    outside the queue's keys that ``broker`` deletes: a worker would restore them an hour later into a
    queue nobody reads. Drop this run's (kombu stores each as [message, exchange, routing key])."""
    url, queue = broker
    yield
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for tag, payload in client.hgetall("unacked").items():
            try:
                _message, exchange, routing_key = json.loads(payload)
            except (ValueError, TypeError):
                continue
            if queue in (exchange, routing_key):
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


def _beat_worker(broker: tuple[str, str], directory: Path) -> ManagedProcess:
    """A worker on the same queue with embedded beat: the SLA sweep every second."""
    broker_url, queue = broker
    args, _env = celery_worker_command(
        queue=queue, hostname=f"{queue}-beat@{socket.gethostname()}", python=sys.executable
    )
    args += ["-B", "-s", str(directory / "celerybeat-schedule")]
    env = worker_env(
        broker_url=broker_url,
        queue=queue,
        run_dir=directory / "run",
        SLA_SWEEP_SECONDS="1",
        ROUTING_SWEEP_SECONDS="3600",  # keep the log to the SLA engine
    )
    return ManagedProcess("celery worker -B", args, env=env, log_path=directory / "beat-worker.log")


def test_a_worker_killed_before_the_due_time_loses_no_breach_and_records_none_twice(
    policy, tenant_a, celery_worker, broker, forget_unacked, tmp_path, record_property
):
    ticket = make_ticket(tenant=tenant_a)
    clock = shorten(first_response_clock(ticket), due_in=4)
    assert clock.warn_at is not None
    assert clock.due_at is not None
    # The worker holds both timers of the shortened clock, unacknowledged;
    # it fires the warning (at half the budget) and is killed a second before the due time.
    wait_until(
        # Our clock's warning and due timers (the creation's timers are beyond the arming window).
        lambda: count(RECEIVED, celery_worker) >= 2,
        timeout=EVENT_TIMEOUT,
        what="the worker holding the clock's timers",
        details=celery_worker.log_tail,
    )
    sleep_until(clock.due_at - dt.timedelta(seconds=1))
    assert not events(clock, SlaEvent.Kind.BREACH), "the worker was to be killed before the due time"
    os.killpg(celery_worker.pid, signal.SIGKILL)
    celery_worker.popen.wait(10)  # type: ignore[union-attr]
    killed_at = timezone.now()
    assert killed_at < clock.due_at

    with running(_beat_worker(broker, tmp_path)) as recovery:
        recovery.wait_for_log(r"\bready\.", timeout=WORKER_START_TIMEOUT)
        ready_at = timezone.now()
        wait_until(
            lambda: breach_done(clock),
            timeout=RECOVERY_LAG_LIMIT + EVENT_TIMEOUT,
            what="the breach recovered by the sweep",
            details=lambda: logs(recovery, celery_worker),
        )
        breach = events(clock, SlaEvent.Kind.BREACH)[0]
        # One more sweep runs while we look again: still one.
        sweeps = len(re.findall(SWEEP, recovery.log()))
        wait_until(
            lambda: len(re.findall(SWEEP, recovery.log())) > sweeps,
            timeout=EVENT_TIMEOUT,
            what="another sweep",
            details=recovery.log_tail,
        )
        # The sweep, not a timer, recorded the breach, and only one sweep did.
        assert len(re.findall(SWEEP_BREACH, recovery.log())) == 1, recovery.log_tail()
        assert count(FIRED, recovery) == 0
    log.info(
        "killed %.2f s before due; new worker ready %.2f s after due; breach %.3f s after due "
        "(%.3f s after the worker was ready)",
        (clock.due_at - killed_at).total_seconds(),
        (ready_at - clock.due_at).total_seconds(),
        lag(breach, clock),
        (breach.created_at - ready_at).total_seconds(),
    )
    record_property("breach_lag_seconds", round(lag(breach, clock), 3))
    record_property("after_ready_seconds", round((breach.created_at - ready_at).total_seconds(), 3))
    assert len(events(clock, SlaEvent.Kind.BREACH)) == 1
    assert len(events(clock, SlaEvent.Kind.WARNING)) == 1
    assert 0 <= lag(breach, clock) < RECOVERY_LAG_LIMIT, lag(breach, clock)
    # The lost timer's late redelivery, or any later sweep, finds nothing left to record.
    assert fire_clock.apply(args=(clock.pk,)).get() == {"warning": 0, "breach": 0}
    swept = sla_sweep()
    assert (swept["warning"], swept["breach"]) == (0, 0)
    assert SlaEvent.objects.filter(ticket=ticket).count() == 2
