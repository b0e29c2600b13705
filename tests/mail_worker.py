"""A real SMTP server on loopback and a real Celery worker that sends through it.

``smtp_server`` is aiosmtpd in this process, keeping every accepted envelope (``SmtpCollector``);
``worker`` is the project's Celery worker as a subprocess on the test database and the run's own
broker queue (``tests/celery_e2e.py``), with Django's SMTP backend pointed at that server. Shared by
the email end-to-end test and the desk's browser tests.
"""

from __future__ import annotations

import socket
import sys
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.celery_e2e import WORKER_START_TIMEOUT, worker_env
from tests.processes import ManagedProcess, ProcessError, celery_worker_command, running

# --- a real SMTP server -------------------------------------------------------------------------


class SmtpCollector:
    """aiosmtpd handler that keeps every accepted envelope; the test thread waits for them."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self._arrived:
            self.envelopes.append(envelope)
            self._arrived.notify_all()
        return "250 2.0.0 Ok: queued"

    def message(self, index: int) -> EmailMessage:
        return message_from_bytes(self.envelopes[index].content, policy=policy.default)

    def wait_for(self, count: int, *, timeout: float, what: str, details=lambda: "") -> list[EmailMessage]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.envelopes) >= count, timeout):
                raise ProcessError(
                    f"{what}: the SMTP server received {len(self.envelopes)} message(s), expected "
                    f"{count}, within {timeout:.0f} s.\n{details()}"
                )
        return [self.message(i) for i in range(len(self.envelopes))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server():
    collector = SmtpCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield collector, controller.port
    finally:
        controller.stop()


# --- the worker -------------------------------------------------------------------


@pytest.fixture
def worker(transactional_db, broker, smtp_server, media_root, live_prefix, tmp_path):
    """A real Celery worker on the test database, the E2E broker queue and the loopback SMTP server.

    Depends on ``transactional_db``, so it is stopped before the database is flushed.
    """
    broker_url, queue = broker
    _collector, smtp_port = smtp_server
    hostname = f"{queue}@{socket.gethostname()}"
    args, _queue_env = celery_worker_command(queue=queue, hostname=hostname, python=sys.executable)
    env = worker_env(
        broker_url=broker_url,
        queue=queue,
        run_dir=tmp_path / "run",
        DJANGO_MEDIA_ROOT=str(media_root),
        # The test's channel-layer prefix: the worker's live events reach the test's pages and server.
        CHANNEL_LAYER_PREFIX=live_prefix,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        EMAIL_USE_TLS="0",
        EMAIL_USE_SSL="0",
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_TIMEOUT="5",
    )
    process = ManagedProcess("celery worker", args, env=env, log_path=tmp_path / "worker.log")
    with running(process):
        process.wait_for_log(r"\bready\.", timeout=WORKER_START_TIMEOUT)
        yield process
        # The test itself stops it and checks that nothing is left; this stop is the safety net.
