"""Benchmark ``live_fanout``: one ASGI process delivering every event of a tenant to N websocket clients.

What runs: one ``daphne config.asgi:application`` process (the production command, DEBUG off) on the
bench database and this machine's Redis, with a channel-layer prefix of this run's own; N agents
(500; ``--quick`` 100) of one tenant, logged in (sessions written straight into the database);
N websocket clients over loopback, all in one ``asyncio`` event loop in a child process of their own
(so that their work does not share an interpreter lock with the publisher); each is subscribed to
``tenant:<id>``. This process publishes ``queue.stats`` events to that stream with
``care.realtime.publish.publish_now``, the call every service makes after its commit; each event's
data carries ``bench_sent``, the wall time just before the call.

Measured at every client, for every event: arrival time minus ``bench_sent`` (the commit-to-screen
latency, publishing included), whether it arrived at all and in sequence order. After a warm-up
(10 events, not reported), the phases are, one JSON line each:

- ``live_fanout.rate_<R>``: a ramp of rates (events/s), 3 s and at least 10 events each (quick:
  2 s), from 1/s up, stopping at the first rate that misses the target: p99 under ``TARGET_P99_MS``
  (100 ms), nothing lost, nothing late (``recovered``: lost by the channel layer, then sent from the
  log when the next event showed the gap), in order;
- ``live_fanout.steady``: 50 events/s for 10 s (quick: 20/s for 3 s), after the ramp so that its
  backlog, if any, cannot slow the ramp down;
- ``live_fanout.max_rate``: the figures of the best rate of the ramp again, with ``max_rate`` and
  why the next one failed (absent when none met the target).

Each line has the latency percentiles (``median_ms``, ``p95_ms``, ``p99_ms``, ``max_ms``), ``expected``
(events x clients), ``delivered``, ``recovered``, ``lost``, ``out_of_order``, ``reloads``,
``over_capacity`` (group sends that found the server's queue in Redis full: dropped there),
``deliveries_per_second`` (events x clients / s, first publish to last arrival: the ASGI process's
sustained fan-out), ``publish_median_ms`` (one ``publish_now``), and the CPU each process used
(``server_cpu``, ``clients_cpu``, ``publisher_cpu``, ``redis_cpu``: 1.0 is one core busy the whole
phase). A phase ends when every event has arrived, or when nothing arrived for 3 s.

A table of the phases goes to stderr with the progress. ``BENCH_LIVE_PROFILE=1`` runs the server
under cProfile and logs its 30 most expensive functions after the run (it slows the server down);
``BENCH_LIVE_PROFILE=/some/file.prof`` keeps the profile there too, for ``pstats``.
``BENCH_LIVE_APPLICATION=module:attribute`` serves another ASGI application (a variant to compare,
importable with the environment's ``PYTHONPATH``).

This module imports Django only inside functions: the client process is started with ``spawn`` and
imports this module without setting Django up.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bench.harness import Context, Result, benchmark, log, machine_load, percentile

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

TARGET_P99_MS = 100.0
TENANT_CODE = "LIVE"
EMAIL_DOMAIN = "live-fanout.bench.care.test"
CONNECT_CONCURRENCY = 20  # handshakes in flight at once (each costs the server two database calls)
# After the last publish the clients wait for every event until none has arrived for QUIET_SECONDS
# (what did not come by then is lost), at most DRAIN_LIMIT: a phase that overloads the server leaves
# no backlog to the next one, and its latencies say how far behind it fell.
QUIET_SECONDS = 3.0
DRAIN_LIMIT = 300.0
SERVER_START_TIMEOUT = 60.0
PROJECT_DIR = Path(__file__).resolve().parent.parent
MIN_EVENTS = 10  # per phase, whatever its rate and length: a p99 of fewer is one event's fan-out
WARMUP_RATE, WARMUP_EVENTS = 5, 10


@dataclass(frozen=True)
class Shape:
    clients: int
    steady_rate: int  # events per second
    steady_seconds: float
    ramp: tuple[int, ...]  # events per second, tried in order until one misses the target
    ramp_seconds: float


FULL = Shape(
    clients=500,
    steady_rate=50,
    steady_seconds=10,
    ramp=(1, 2, 5, 10, 15, 20, 30, 40, 60, 80, 120, 160, 240),
    ramp_seconds=3,
)
QUICK = Shape(clients=100, steady_rate=20, steady_seconds=3, ramp=(2, 5, 10, 20, 40, 80, 160), ramp_seconds=2)


# --- the benchmark -------------------------------------------------------------------------------


@benchmark(
    "live_fanout",
    description="Live events: one daphne process fanning a tenant's events out to 500 websockets",
)
def live_fanout(ctx: Context) -> Iterator[Result]:
    shape = QUICK if ctx.options.quick else FULL
    prefix = f"bench-live-{uuid.uuid4().hex[:12]}"
    profile_to = os.environ.get("BENCH_LIVE_PROFILE", "")
    profile = profile_to not in ("", "0")
    # The server runs with DEBUG off, which refuses the development key: sessions are signed with a
    # key of this run's own, given to the server.
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    with (
        channel_prefix(prefix),
        logged_in_agents(shape.clients, secret=secret) as (tenant_id, sessions),
        tempfile.TemporaryDirectory(prefix="bench-live-") as tmp,
    ):
        stream = f"tenant:{tenant_id}"
        with (
            asgi_server(prefix, Path(tmp), secret=secret, profile=profile) as server,
            client_process(server, sessions, stream) as clients,
        ):
            log(
                f"live_fanout: {shape.clients} clients connected and subscribed to {stream} in "
                f"{clients.ready['seconds']:.1f} s"
            )
            yield from _phases(ctx, shape, clients, server, stream, tenant_id)
        if profile:
            log_profile(server.profile_path, keep=Path(profile_to) if profile_to != "1" else None)


def _phases(
    ctx: Context, shape: Shape, clients: ClientProcess, server: Server, stream: str, tenant_id: int
) -> Iterator[Result]:
    """The ramp up to the first rate that misses the target, then the steady phase.

    The ramp goes first: an overloaded phase leaves the server busy with gap fills and the refreshed
    access of every connection for a while, which would be charged to the phase after it.
    """
    common = {
        "clients": shape.clients,
        "connect_seconds": clients.ready["seconds"],
        "quick": ctx.options.quick,
    }
    # Warm-up, not reported: the first event a connection forwards pays for lazy imports and caches.
    run_phase(clients, server, stream, tenant_id, "warmup", WARMUP_RATE, WARMUP_EVENTS / WARMUP_RATE)
    phases: list[Phase] = []
    best: Phase | None = None
    failed: Phase | None = None
    for rate in shape.ramp:
        phase = run_phase(clients, server, stream, tenant_id, f"rate_{rate}", rate, shape.ramp_seconds)
        phases.append(phase)
        yield phase.result(f"live_fanout.rate_{rate}", common)
        if not phase.meets_target:
            failed = phase
            break
        best = phase
    steady = run_phase(clients, server, stream, tenant_id, "steady", shape.steady_rate, shape.steady_seconds)
    phases.append(steady)
    yield steady.result("live_fanout.steady", common)
    log_table(phases)
    if best is None:
        log(f"live_fanout: no rate of the ramp met the target ({failed.verdict() if failed else '?'})")
        return
    yield best.result(
        "live_fanout.max_rate",
        common
        | {
            "max_rate": best.rate,
            "next_rate": failed.rate if failed else None,
            "next_rate_failed_because": failed.verdict() if failed else "not reached: the ramp ended",
        },
    )


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    rate: int
    seconds: float
    clients: int
    events: int
    latencies: list[float]  # seconds, one per delivered event per client
    delivered: int
    recovered: int  # lost on the way, delivered from the log when the next event revealed the gap
    out_of_order: int
    reloads: int
    clients_complete: int
    first_sent: float
    last_sent: float
    last_arrival: float
    publish_seconds: list[float]
    over_capacity: int  # group sends the channel layer refused for a full server queue (dropped)
    cpu: dict[str, float] = field(default_factory=dict)  # cores used over the phase, per process

    @property
    def expected(self) -> int:
        return self.events * self.clients

    @property
    def lost(self) -> int:
        return self.expected - self.delivered - self.recovered

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000 if self.latencies else float("inf")

    @property
    def achieved_rate(self) -> float:
        span = self.last_sent - self.first_sent
        return (self.events - 1) / span if span > 0 else float(self.events)

    @property
    def deliveries_per_second(self) -> float:
        span = self.last_arrival - self.first_sent
        return self.delivered / span if span > 0 else 0.0

    @property
    def meets_target(self) -> bool:
        return (
            self.lost == 0
            and self.recovered == 0
            and self.out_of_order == 0
            and self.reloads == 0
            and self.p99_ms < TARGET_P99_MS
        )

    def verdict(self) -> str:
        reasons = []
        if self.lost:
            reasons.append(f"{self.lost} deliveries lost")
        if self.recovered:
            reasons.append(f"{self.recovered} only after the next event (from the log)")
        if self.out_of_order or self.reloads:
            reasons.append(f"{self.out_of_order} out of order, {self.reloads} reloads")
        if self.p99_ms >= TARGET_P99_MS:
            reasons.append(f"p99 {self.p99_ms:.0f} ms")
        return "; ".join(reasons) or "met"

    def result(self, name: str, common: dict[str, Any]) -> Result:
        samples = [int(seconds * 1e9) for seconds in self.latencies] or [0]
        publish_ms = sorted(seconds * 1000 for seconds in self.publish_seconds)
        return Result(
            name=name,
            samples_ns=samples,
            queries=None,
            rows=None,
            has_throughput=False,
            extra=common
            | {
                "rate": self.rate,
                "achieved_rate": round(self.achieved_rate, 1),
                "seconds": self.seconds,
                "events": self.events,
                "expected": self.expected,
                "delivered": self.delivered,
                "recovered": self.recovered,
                "lost": self.lost,
                "out_of_order": self.out_of_order,
                "reloads": self.reloads,
                "clients_complete": self.clients_complete,
                "deliveries_per_second": round(self.deliveries_per_second),
                "over_capacity": self.over_capacity,
                "publish_median_ms": round(percentile(publish_ms, 50), 3),
                "publish_p99_ms": round(percentile(publish_ms, 99), 3),
                **{f"{process}_cpu": round(cores, 2) for process, cores in self.cpu.items()},
                "meets_target": self.meets_target,
                "target_p99_ms": TARGET_P99_MS,
                "load_1m": machine_load(),
            },
        )


def run_phase(
    clients: ClientProcess, server: Server, stream: str, tenant_id: int, name: str, rate: int, seconds: float
) -> Phase:
    """Publish ``rate`` events a second for ``seconds`` on a fixed schedule, then collect what arrived."""
    from care.realtime.publish import publish_now

    events = max(MIN_EVENTS, round(rate * seconds))
    log(f"live_fanout.{name}: {events} events at {rate}/s to {clients.count} clients")
    cpu_before = cpu_times(server.pid, clients.pid)
    publish_seconds: list[float] = []
    dropped = OverCapacity.start()
    start = time.time() + 0.2
    first_sent = last_sent = 0.0
    for index in range(events):
        pause = start + index / rate - time.time()
        if pause > 0:
            time.sleep(pause)
        sent = time.time()
        if index == 0:
            first_sent = sent
        last_sent = sent
        publish_now(
            event_type="queue.stats",
            tenant_id=tenant_id,
            # A real queue.stats shape, plus the bench's fields (data may grow within version 1).
            data={
                "waiting": index,
                "oldest_waiting_since": None,
                "queues": [],
                "bench_phase": name,
                "bench_sent": sent,
            },
            streams=[stream],
        )
        publish_seconds.append(time.time() - sent)
    stats = clients.collect(name, events)
    dropped.stop()
    cpu_after = cpu_times(server.pid, clients.pid)
    # One more event: a connection that lost events of this phase (the channel layer drops what
    # exceeds its capacity) notices the gap and fills it from the log now, not in the next phase.
    publish_now(
        event_type="queue.stats",
        tenant_id=tenant_id,
        data={
            "waiting": 0,
            "oldest_waiting_since": None,
            "queues": [],
            "bench_phase": f"{name}.settle",
            "bench_sent": time.time(),
        },
        streams=[stream],
    )
    settled = clients.collect(f"{name}.settle", 1, late_of=name)
    wall = max(stats["last_arrival"], last_sent) - first_sent
    cpu = {key: (cpu_after[key] - cpu_before[key]) / wall for key in cpu_before} if wall > 0 else {}
    return Phase(
        name=name,
        rate=rate,
        seconds=round(events / rate, 2),
        clients=clients.count,
        events=events,
        latencies=stats["latencies"],
        delivered=stats["delivered"],
        recovered=settled["late"],
        out_of_order=stats["out_of_order"] + settled["out_of_order"],
        reloads=stats["reloads"] + settled["reloads"],
        clients_complete=stats["clients_complete"],
        first_sent=first_sent,
        last_sent=last_sent,
        last_arrival=stats["last_arrival"],
        publish_seconds=publish_seconds,
        over_capacity=dropped.count,
        cpu=cpu,
    )


class OverCapacity(logging.Handler):
    """Counts channels_redis's "N of M channels over capacity" (its only sign of a dropped message)
    instead of letting them flood the log: a server whose queue in Redis holds ``capacity`` (100)
    messages loses what a group send adds beyond that."""

    logger = logging.getLogger("channels_redis.core")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self._propagate = self.logger.propagate

    @classmethod
    def start(cls) -> OverCapacity:
        handler = cls()
        cls.logger.addHandler(handler)
        cls.logger.propagate = False
        return handler

    def stop(self) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = self._propagate

    def emit(self, record: logging.LogRecord) -> None:
        if "over capacity" in record.getMessage():
            self.count += 1


def cpu_times(server_pid: int, clients_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the server, the clients, this process and Redis."""
    from care.realtime import log as live_log

    ticks = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    own = os.times()
    info = live_log.client().info("cpu")
    return {
        "server": of(server_pid),
        "clients": of(clients_pid),
        "publisher": own.user + own.system,
        "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
    }


def log_table(phases: Sequence[Phase]) -> None:
    header = (
        f"{'phase':<11} {'rate/s':>6} {'sent/s':>6} {'clients':>7} {'delivered':>9} {'late':>6} {'lost':>5} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'deliv/s':>8} {'server':>6} "
        f"{'clients':>7} {'redis':>5}  verdict"
    )
    lines = [header, "-" * len(header)]
    for phase in phases:
        ms = [seconds * 1000 for seconds in phase.latencies] or [float("nan")]
        lines.append(
            f"{phase.name:<11} {phase.rate:>6} {phase.achieved_rate:>6.0f} {phase.clients:>7} "
            f"{phase.delivered:>9} {phase.recovered:>6} {phase.lost:>5} "
            f"{percentile(ms, 50):>7.1f} {percentile(ms, 95):>7.1f} {percentile(ms, 99):>7.1f} "
            f"{max(ms):>7.1f} "
            f"{phase.deliveries_per_second:>8.0f} {phase.cpu.get('server', 0):>6.2f} "
            f"{phase.cpu.get('clients', 0):>7.2f} {phase.cpu.get('redis', 0):>5.2f}  {phase.verdict()}"
        )
    log("live_fanout (CPU in cores busy over the phase):\n    " + "\n    ".join(lines))


# --- the tenant, its agents and their sessions ---------------------------------------------------


@contextlib.contextmanager
def channel_prefix(prefix: str) -> Iterator[None]:
    """This process publishes under ``prefix`` (the server gets it too); its Redis keys go afterwards."""
    from channels.layers import channel_layers
    from django.conf import settings

    from care.realtime import log as live_log

    saved = settings.CHANNEL_LAYERS
    layers: dict[str, Any] = copy.deepcopy(saved)
    layers["default"].setdefault("CONFIG", {})["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    try:
        yield
    finally:
        settings.CHANNEL_LAYERS = saved
        channel_layers.backends.clear()
        client = live_log.client()
        leftovers = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if leftovers:
            client.delete(*leftovers)


@contextlib.contextmanager
def logged_in_agents(count: int, *, secret: str) -> Iterator[tuple[int, list[str]]]:
    """A tenant of its own with ``count`` agents, each with a fresh session; all deleted afterwards.

    Rows are bulk-inserted (500 users in well under a second); the sessions are what
    ``django.contrib.auth.login`` would store: the user's id, the backend and the auth hash, signed
    and hashed with ``secret`` (the server's ``SECRET_KEY``).
    """
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.models import Session
    from django.test import override_settings

    from care.accounts.models import Agent, Role, Team, TenantAuthorisation, User
    from care.tenants.models import Tenant

    started = time.monotonic()
    _delete_agents()
    tenant = Tenant(
        name="Live fan-out client",
        slug="live-fanout",
        code=TENANT_CODE,
        time_zone="Europe/Berlin",
        default_language="de",
        supported_languages=["de", "en"],
        holiday_country="DE",
    )
    tenant.full_clean()
    tenant.save()
    team = Team.objects.create(name="Live fan-out team", kind=Team.Kind.PROVIDER)
    password = make_password(None)  # unusable: the sessions are made directly
    users = User.objects.bulk_create(
        User(
            email=f"agent{i:04d}@{EMAIL_DOMAIN}",
            full_name=f"Live agent {i}",
            role=Role.AGENT,
            password=password,
        )
        for i in range(count)
    )
    agents = Agent.objects.bulk_create(Agent(user=user, team=team) for user in users)
    TenantAuthorisation.objects.bulk_create(
        TenantAuthorisation(agent=agent, tenant=tenant) for agent in agents
    )
    with override_settings(SECRET_KEY=secret):
        sessions = _sessions(users)
    Session.objects.bulk_create(sessions)
    took = time.monotonic() - started
    log(f"live_fanout: tenant {tenant.code}, {count} agents with sessions in {took:.1f} s")
    try:
        yield tenant.pk, [session.session_key for session in sessions]
    finally:
        Session.objects.filter(session_key__in=[session.session_key for session in sessions]).delete()
        _delete_agents()


def _sessions(users: Sequence[Any]) -> list[Any]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    store = SessionStore()
    expires = timezone.now() + dt.timedelta(days=1)
    backend = "django.contrib.auth.backends.ModelBackend"
    return [
        Session(
            session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
            session_data=store.encode(
                {
                    SESSION_KEY: str(user.pk),
                    BACKEND_SESSION_KEY: backend,
                    HASH_SESSION_KEY: user.get_session_auth_hash(),
                }
            ),
            expire_date=expires,
        )
        for user in users
    ]


def _delete_agents() -> None:
    """This benchmark's rows, from an earlier run too (one that was killed leaves them behind)."""
    from care.accounts.models import Agent, Team, TenantAuthorisation, User
    from care.tenants.models import Tenant

    TenantAuthorisation.objects.filter(tenant__code=TENANT_CODE).delete()
    Agent.objects.filter(user__email__endswith=f"@{EMAIL_DOMAIN}").delete()
    User.objects.filter(email__endswith=f"@{EMAIL_DOMAIN}").delete()
    Team.objects.filter(name="Live fan-out team").delete()
    Tenant.objects.filter(code=TENANT_CODE).delete()


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    profile_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _database_url() -> str:
    from django.conf import settings

    params = settings.DATABASES["default"]
    user = quote(params.get("USER") or "", safe="")
    password = quote(params.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(params.get("HOST") or "", safe="")
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(params['NAME'], safe='')}"


@contextlib.contextmanager
def asgi_server(prefix: str, tmp: Path, *, secret: str, profile: bool) -> Iterator[Server]:
    """``daphne`` on a free port of 127.0.0.1, as deployed (DEBUG off), on the bench database."""
    from django.conf import settings

    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secret,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=_database_url(),
        CHANNEL_LAYER_URL=settings.CHANNEL_LAYER_URL,
        CHANNEL_LAYER_PREFIX=prefix,
        CARE_RUN_DIR=str(tmp / "run"),
        PYTHONUNBUFFERED="1",
    )
    profile_path = tmp / "server.prof"
    runner = ["-c", _PROFILED_DAPHNE, str(profile_path)] if profile else ["-m", "daphne"]
    application = os.environ.get("BENCH_LIVE_APPLICATION", "config.asgi:application")
    args = [sys.executable, *runner, "-b", "127.0.0.1", "-p", "0", "-v", "1", application]
    log_path = tmp / "daphne.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            args,
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        port = _wait_listening(process, log_path)
        yield Server(process=process, port=port, log_path=log_path, profile_path=profile_path)
    finally:
        _stop(process, profiled=profile)
        errors = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if "Traceback" in line or "ERROR" in line
        ]
        if errors:
            log(f"live_fanout: the server logged {len(errors)} error line(s); the first: {errors[0]}")


def _wait_listening(process: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    pattern = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
    while time.monotonic() < deadline:
        found = pattern.search(log_path.read_text(errors="replace"))
        if found:
            return int(found[1])
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"daphne did not start: {log_path.read_text(errors='replace')[-4000:]}")


# daphne under cProfile; SIGUSR1 writes the profile (to argv[1]) and ends the process (Twisted's
# SIGTERM handling does not return to a profiler's ``-m cProfile`` wrapper in time).
_PROFILED_DAPHNE = """\
import cProfile, os, signal, sys
path = sys.argv.pop(1)
profiler = cProfile.Profile()
def dump(*_):
    profiler.disable()
    profiler.dump_stats(path)
    os._exit(0)
signal.signal(signal.SIGUSR1, dump)
sys.argv[0] = "daphne"
from daphne.cli import CommandLineInterface
profiler.enable()
CommandLineInterface.entrypoint()
"""


def _stop(process: subprocess.Popen[bytes], *, profiled: bool = False) -> None:
    if profiled and process.poll() is None:
        process.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def log_profile(path: Path, *, keep: Path | None) -> None:
    import io
    import pstats

    if not path.exists():
        log("live_fanout: no server profile was written")
        return
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(30)
    log(f"live_fanout: the server's 30 most expensive functions (own time):\n{out.getvalue()}")
    if keep is not None:
        shutil.copyfile(path, keep)
        log(f"live_fanout: the server's profile is in {keep}")


# --- the clients (a child process; no Django here) -----------------------------------------------


@dataclass
class ClientProcess:
    process: multiprocessing.process.BaseProcess
    pipe: Connection
    count: int
    ready: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def collect(self, phase: str, events: int, *, late_of: str = "") -> dict[str, Any]:
        """What arrived of ``phase`` (and, with ``late_of``, how much of that phase came since)."""
        self.pipe.send(("collect", phase, events, late_of))
        if not self.pipe.poll(DRAIN_LIMIT + 30):
            raise SystemExit("live_fanout: the client process does not answer")
        answer: dict[str, Any] = self.pipe.recv()
        return answer


@contextlib.contextmanager
def client_process(server: Server, sessions: list[str], stream: str) -> Iterator[ClientProcess]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=clients_main,
        args=(theirs, f"ws://127.0.0.1:{server.port}/ws/live/", server.origin, sessions, stream),
        name="live-fanout-clients",
        daemon=True,
    )
    process.start()
    try:
        if not ours.poll(SERVER_START_TIMEOUT + len(sessions) * 0.5):
            raise SystemExit("live_fanout: the clients did not connect in time")
        ready = ours.recv()
        if ready.get("error"):
            raise SystemExit(f"live_fanout: the clients failed: {ready['error']}")
        yield ClientProcess(process=process, pipe=ours, count=len(sessions), ready=ready)
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            ours.send(("stop",))
        process.join(20)
        if process.is_alive():
            process.kill()


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0
    last_arrival: float = 0.0
    per_client: dict[int, int] = field(default_factory=dict)


class _Client:
    def __init__(self, index: int, tallies: dict[str, _Tally], activity: list[float]) -> None:
        self.index = index
        self.tallies = tallies
        self.activity = activity  # [monotonic time of the newest message on any connection]
        self.last_seq: int | None = None
        self.out_of_order = 0
        self.reloads = 0
        self.connection: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self, url: str, origin: str, session: str, stream: str, limit: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        async with limit:
            self.connection = await connect(
                url,
                origin=origin,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={session}"},
                compression=None,
                proxy=None,
                open_timeout=60,
                max_queue=None,  # never stop reading: backpressure would hide latency in TCP buffers
            )
            welcome = json.loads(await self.connection.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"client {self.index}: expected welcome, got {welcome}")
            await self.connection.send(json.dumps({"type": "subscribe", "stream": stream}))
            while True:
                answer = json.loads(await self.connection.recv())
                if answer.get("type") == "subscribed":
                    self.last_seq = answer["seq"]
                    break
                if answer.get("type") in {"refused", "error"}:
                    raise RuntimeError(f"client {self.index}: {answer}")
        self.reader = asyncio.get_running_loop().create_task(self.read())

    async def read(self) -> None:
        if self.connection is None:
            return
        async for raw in self.connection:
            arrived = time.time()
            self.activity[0] = time.monotonic()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "reload":
                self.reloads += 1
                continue
            if kind != "queue.stats":
                continue
            seq = message["seq"]
            if self.last_seq is not None and seq != self.last_seq + 1:
                self.out_of_order += 1
            self.last_seq = seq
            data = message["data"]
            tally = self.tallies.setdefault(data["bench_phase"], _Tally())
            tally.latencies.append(arrived - data["bench_sent"])
            tally.delivered += 1
            tally.last_arrival = arrived
            tally.per_client[self.index] = tally.per_client.get(self.index, 0) + 1


def clients_main(pipe: Connection, url: str, origin: str, sessions: list[str], stream: str) -> None:
    """The child process: connect every client, then answer the parent's ``collect`` requests."""
    try:
        asyncio.run(_clients(pipe, url, origin, sessions, stream))
    except Exception as exc:  # reported to the parent, which stops the run
        with contextlib.suppress(BrokenPipeError, OSError):
            pipe.send({"error": repr(exc)})


async def _clients(pipe: Connection, url: str, origin: str, sessions: list[str], stream: str) -> None:
    tallies: dict[str, _Tally] = {}
    activity = [time.monotonic()]
    clients = [_Client(index, tallies, activity) for index in range(len(sessions))]
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.monotonic()
    await asyncio.gather(
        *(
            client.start(url, origin, session, stream, limit)
            for client, session in zip(clients, sessions, strict=True)
        )
    )
    pipe.send({"seconds": round(time.monotonic() - started, 2)})
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def listen() -> None:  # the pipe blocks: read it in a thread, hand commands to the loop
        while True:
            try:
                command = pipe.recv()
            except EOFError:
                command = ("stop",)
            loop.call_soon_threadsafe(commands.put_nowait, command)
            if command[0] == "stop":
                return

    threading.Thread(target=listen, daemon=True).start()
    while True:
        command = await commands.get()
        if command[0] == "stop":
            break
        _, phase, events, late_of = command
        expected = events * len(clients)
        started = time.monotonic()
        while tallies.get(phase, _Tally()).delivered < expected:
            now = time.monotonic()
            if now - max(activity[0], started) > QUIET_SECONDS or now - started > DRAIN_LIMIT:
                break
            await asyncio.sleep(0.05)
        tally = tallies.pop(phase, _Tally())
        pipe.send(
            {
                "late": tallies.pop(late_of, _Tally()).delivered if late_of else 0,
                "latencies": tally.latencies,
                "delivered": tally.delivered,
                "last_arrival": tally.last_arrival,
                "clients_complete": sum(1 for count in tally.per_client.values() if count == events),
                "out_of_order": sum(client.out_of_order for client in clients),
                "reloads": sum(client.reloads for client in clients),
            }
        )
        for client in clients:  # counted per phase
            client.out_of_order = client.reloads = 0
    await asyncio.gather(*(client.connection.close() for client in clients if client.connection is not None))
