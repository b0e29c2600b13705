"""Real ASGI servers (daphne) on the test database, for end-to-end tests of HTTP and websockets.

A server is a ``ManagedProcess`` (``tests/processes.py``) running ``daphne config.asgi:application`` on
127.0.0.1, with the environment of a Celery worker of the same run (``tests/celery_e2e.worker_env``:
the test database, this run's broker queue, which the server's own enqueued tasks then go to) plus:

- ``DJANGO_DEBUG=0`` and ``DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost``: as in production; the
  websocket origin check accepts ``Origin: http://127.0.0.1:<port>``;
- ``DJANGO_SECURE_COOKIES=0``: the session and CSRF cookies are not ``Secure``, so a browser keeps
  sending them over plain http to 127.0.0.1;
- ``CHANNEL_LAYER_PREFIX``: the test's own prefix (the autouse ``live_prefix`` fixture), so its
  groups, live sequences and logs are this test's only. A worker that publishes needs it too.
- the test process's ``SECRET_KEY``: sessions made in the test (``Client().login``) are valid there.

Port 0 by default: daphne binds a free port and logs it; ``AsgiServer.port`` reads it from the log,
so nothing races for a port between choosing and binding it. Several servers (and workers) start in
parallel with ``running_together``: start-up is mostly importing Django, seconds each.

Pages rendered with ``{% static %}`` need the manifest that ``collectstatic`` writes when DEBUG is
off: pass ``static_root`` to ``asgi_server_env`` after ``collect_static(static_root)``.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings

from tests.celery_e2e import worker_env
from tests.processes import PROJECT_DIR, ManagedProcess, ProcessError

SERVER_START_TIMEOUT = 30.0
HOST = "127.0.0.1"
LISTENING = rf"Listening on TCP address {re.escape(HOST)}:(\d+)"


# ``daphne ARGS``, after asking Linux to SIGKILL the server when the test process dies (the
# ``ManagedProcess`` default, SIGTERM, once left a server of a killed run shutting down forever with
# its database connections open, and the next run could not drop the test database).
_DAPHNE_BOOTSTRAP = """\
import ctypes, ctypes.util, signal, sys
libc = ctypes.util.find_library("c")
if sys.platform.startswith("linux") and libc:
    ctypes.CDLL(libc).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
sys.argv[0] = "daphne"
from daphne.cli import CommandLineInterface
CommandLineInterface.entrypoint()
"""


def asgi_server_command(port: int = 0, *, python: str = sys.executable, access_log: bool = True) -> list[str]:
    """``daphne`` serving Care on 127.0.0.1:``port`` (0: any free port, logged on start)."""
    args = [python, "-c", _DAPHNE_BOOTSTRAP, "-b", HOST, "-p", str(port), "-v", "1"]
    if access_log:
        args += ["--access-log", "-"]
    return [*args, "config.asgi:application"]


def asgi_server_env(
    *,
    prefix: str,
    broker_url: str,
    queue: str,
    run_dir: Path,
    static_root: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a server on the test database; ``prefix`` is the test's ``live_prefix``.

    ``broker_url`` and ``queue`` come from the ``broker`` fixture: tasks the server enqueues go to
    this run's queue (the run's worker, if any, takes them; else they are deleted with the queue).
    ``extra`` overrides anything (``LIVE_LOG_LENGTH="5"``).
    """
    env = worker_env(broker_url=broker_url, queue=queue, run_dir=run_dir)
    env.update(
        DJANGO_SECRET_KEY=str(settings.SECRET_KEY),
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DJANGO_SECURE_COOKIES="0",
        CHANNEL_LAYER_PREFIX=prefix,
        CELERY_TASK_DEFAULT_QUEUE=queue,
    )
    if static_root is not None:
        env["DJANGO_STATIC_ROOT"] = str(static_root)
    env.update(extra)
    return env


def collect_static(static_root: Path, env: dict[str, str]) -> None:
    """``manage.py collectstatic`` into ``static_root`` (the manifest that DEBUG off needs)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env={**env, "DJANGO_STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )


class AsgiServer(ManagedProcess):
    """A daphne process; ``port``, ``http_url`` and ``ws_url`` once it has logged that it listens."""

    _port: int | None = None

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> AsgiServer:
        self._port = int(self.wait_for_log(LISTENING, timeout)[1])
        return self

    @property
    def port(self) -> int:
        if self._port is None:
            raise ProcessError(f"{self.name} is not ready (call wait_ready): {self.describe()}")
        return self._port

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def http_url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def ws_url(self, path: str = "/ws/live/") -> str:
        return f"ws://{HOST}:{self.port}{path}"


def asgi_server(name: str, *, env: dict[str, str], log_dir: Path, port: int = 0) -> AsgiServer:
    """A server, not started yet: start it with ``running_together`` (or ``tests.processes.running``
    and then ``wait_ready``)."""
    return AsgiServer(name, asgi_server_command(port), env=env, log_path=log_dir / f"{name}.log")


@contextlib.contextmanager
def running_together(
    processes: Sequence[ManagedProcess],
    *,
    ready: dict[str, str] | None = None,
    timeout: float = SERVER_START_TIMEOUT,
) -> Iterator[None]:
    """Start every process at once, wait until each is ready, stop them all on the way out.

    A server is ready when it listens; any other process when its log matches ``ready[name]``
    (a Celery worker: ``r"\\bready\\."``).
    """
    ready = ready or {}
    started: list[ManagedProcess] = []
    try:
        for process in processes:
            started.append(process.start())
        for process in processes:
            if isinstance(process, AsgiServer):
                process.wait_ready(timeout)
            elif process.name in ready:
                process.wait_for_log(ready[process.name], timeout)
        yield
    finally:
        stop_all(started)


def stop_all(processes: Sequence[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop the processes at the same time (each may take up to ``timeout`` to shut down cleanly)."""
    threads = [threading.Thread(target=process.stop, args=(timeout,)) for process in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
