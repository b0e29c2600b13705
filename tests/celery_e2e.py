"""Shared pieces of the end-to-end tests that run a real Celery worker against the test database.

``broker`` points this process's Celery app at a queue of its own in a Redis logical database of
its own (deleted afterwards); ``worker_env`` is the environment a worker subprocess needs to use the
test database and that queue; ``celery_worker`` starts one (``tests/processes.py``).
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from tests.helpers import drop_celery_pools
from tests.processes import ManagedProcess, celery_worker_command, running

E2E_REDIS_DB = 9
WORKER_START_TIMEOUT = 30.0


def _redis_url(db: int) -> str:
    """This machine's Redis (the one the settings use), logical database ``db``."""
    parts = urlsplit(django_settings.CELERY_BROKER_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def _database_url() -> str:
    """A URL of the test database this test runs in (pytest-django created it; the name varies)."""
    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    password = quote(params["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(params["HOST"] or "", safe="")  # a socket directory is quoted as dj-database-url expects
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(params['NAME'], safe='')}"


@pytest.fixture
def broker(monkeypatch) -> Iterator[tuple[str, str]]:
    """This process publishes to the run's own queue in the E2E Redis database; restored afterwards.

    The Celery app read its configuration at import: its broker URL and default queue are changed
    on ``app.conf`` (``CELERY_BROKER_URL`` in the environment would win over it, so it is set too)
    and its cached connection and producer pools dropped, before and after.
    """
    from config.celery import app

    url = _redis_url(E2E_REDIS_DB)
    queue = f"care-e2e-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc}); the end-to-end test needs it.")

    keys = ("broker_url", "task_default_queue", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}

    def drop_pools() -> None:
        drop_celery_pools(app)

    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_READ_URL", raising=False)
    drop_pools()
    app.conf.update(broker_url=url, task_default_queue=queue, task_always_eager=False)
    with app.connection_for_write() as publishing:
        assert publishing.as_uri().endswith(f"/{E2E_REDIS_DB}"), publishing.as_uri()
    try:
        yield url, queue
    finally:
        drop_pools()
        app.conf.update(saved)
        # The queue, its exchange's bindings (kombu names them after the queue here): this run's keys.
        leftovers = list(client.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()


def worker_env(*, broker_url: str, queue: str, run_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker subprocess on the test database and ``queue``."""
    hostname_args, queue_env = celery_worker_command(queue=queue, hostname="unused")
    del hostname_args
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env.update(
        queue_env,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or "test-not-secret",
        DJANGO_DEBUG="0",
        DATABASE_URL=_database_url(),
        REDIS_URL=broker_url,
        CELERY_BROKER_URL=broker_url,
        CARE_RUN_DIR=str(run_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.fixture
def celery_worker(transactional_db, broker, tmp_path) -> Iterator[ManagedProcess]:
    """A real solo Celery worker on the test database and this run's queue (no SMTP: see the email
    end-to-end test for one that sends mail). Stopped before the database is flushed."""
    broker_url, queue = broker
    args, _env = celery_worker_command(
        queue=queue, hostname=f"{queue}@{socket.gethostname()}", python=sys.executable
    )
    env = worker_env(broker_url=broker_url, queue=queue, run_dir=tmp_path / "run")
    process = ManagedProcess("celery worker", args, env=env, log_path=tmp_path / "worker.log")
    with running(process):
        process.wait_for_log(r"\bready\.", timeout=WORKER_START_TIMEOUT)
        yield process
