"""Real subprocesses for end-to-end tests: start, wait for a log line, stop, and leave nothing behind.

A ``ManagedProcess`` writes its output to a log file (never a pipe, which fills up and blocks the
child), runs in its own session (its own process group, so that it and any children are stopped
together) and, on Linux, gets SIGTERM when the test process dies without tearing down (killed by a
timeout or by hand), so that no worker outlives the test run holding connections to the test
database. ``running(...)`` is the context manager that always stops it.

``celery_worker_command`` is the command line of a Celery worker of this project (``celery -A
config worker``) whose default queue is ``queue``: the worker's own tasks then land in that queue
too (an inbound message's processing enqueues the acknowledgement's sending), and a test that uses
a queue of its own shares nothing with other workers on the same broker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOG_TAIL_CHARS = 8000

_PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that asks Linux to SIGTERM the child when its parent dies, else None."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl  # bound here, not in the forked child

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


class ProcessError(AssertionError):  # an AssertionError: pytest reports it as a failed check
    """A managed process did not start, died, or did not log what was awaited (with its log)."""


class ManagedProcess:
    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = PROJECT_DIR,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(  # noqa: S603 - our own command line
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),  # prctl only: nothing in the child takes a lock
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a Celery worker's warm shutdown), wait; SIGKILL the group when it does not end.

        Returns the exit code (None when never started). Afterwards no process of its group is left
        (the group is the one this process leads: ``start_new_session``).
        """
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout)
        # Children that outlived the leader (none for a solo worker) go too.
        if self.group_alive():
            self._signal_group(signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.popen.returncode

    def group_alive(self) -> bool:
        """Whether any process of this process's group still exists (zombies of others included)."""
        if self.popen is None:
            return False
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - a process we may not signal: it exists
            return True
        return True

    def _signal_group(self, signum: int) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    # --- output -----------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log()
        return text if len(text) <= chars else "…" + text[-chars:]

    def describe(self) -> str:
        state = "running" if self.is_running() else f"exited with {self.popen and self.popen.returncode}"
        return (
            f"{self.name} (pid {self.popen and self.popen.pid}, {state}); its log {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the log matches ``pattern`` (a regular expression); fail clearly if it dies."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log())
            if found:
                return found
            if not self.is_running():
                raise ProcessError(f"{self.name} ended before logging /{pattern}/: {self.describe()}")
            if time.monotonic() >= deadline:
                raise ProcessError(
                    f"{self.name} did not log /{pattern}/ within {timeout:.0f} s: {self.describe()}"
                )
            time.sleep(0.1)


@contextlib.contextmanager
def running(process: ManagedProcess, *, stop_timeout: float = 10.0) -> Iterator[ManagedProcess]:
    """Start ``process`` and always stop it (and whatever it started) on the way out."""
    process.start()
    try:
        yield process
    finally:
        process.stop(stop_timeout)


def wait_until(
    condition: Callable[[], object], *, timeout: float, what: str, details: Callable[[], str] = lambda: ""
):
    """Poll ``condition`` until it returns something truthy, which is returned; else fail saying ``what``
    did not happen within ``timeout`` seconds, followed by ``details()`` (a worker's log, a row)."""
    deadline = time.monotonic() + timeout
    interval = 0.05
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise ProcessError(f"{what}: not within {timeout:.0f} s.\n{details()}")
        time.sleep(interval)
        interval = min(interval * 2, 0.25)


# --- Celery -------------------------------------------------------------------------------------

# ``celery -A config worker ARGS``, after making CARE_TEST_CELERY_QUEUE the app's default queue (the
# settings have no variable for it; configuration set before the app is configured takes precedence)
# and turning remote control off (no pidbox queues left on a shared broker).
_CELERY_BOOTSTRAP = """\
import os, sys
from config.celery import app
app.conf.task_default_queue = os.environ["CARE_TEST_CELERY_QUEUE"]
app.conf.worker_enable_remote_control = False
from celery.bin.celery import main
sys.argv[0] = "celery"
sys.exit(main())
"""


def celery_worker_command(
    *, queue: str, hostname: str, python: str = sys.executable
) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment of a solo worker consuming ``queue`` only."""
    args = [
        python,
        "-c",
        _CELERY_BOOTSTRAP,
        "-A",
        "config",
        "worker",
        "-P",
        "solo",
        "-c",
        "1",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        queue,
        "-n",
        hostname,
        "-l",
        "info",
    ]
    return args, {"CARE_TEST_CELERY_QUEUE": queue}
