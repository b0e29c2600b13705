"""The issue's "done when": two agents on the same ticket in two browsers, and an SLA breach fired by
a real Celery worker (its ETA timer, then its actions task) appears on both screens without a reload.

The worker, the ASGI server and this test share the test database, the run's Celery queue and the
test's channel-layer prefix; nothing is mocked.
"""

from __future__ import annotations

import re
import socket
import sys

import pytest
from playwright.sync_api import expect

from care.sla.models import SlaClock
from tests.browser.conftest import committed
from tests.browser.test_live_ticket import (
    TicketInfo,
    open_ticket,
    still_the_same_document,
)
from tests.celery_e2e import worker_env
from tests.processes import ManagedProcess, celery_worker_command, running
from tests.sla.test_sla_worker import shorten

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BREACH_TIMEOUT_MS = 15_000  # due in 3 s, plus the worker's pick-up on a loaded machine


@pytest.fixture
def worker(broker, live_prefix, tmp_path):
    broker_url, queue = broker
    args, _ = celery_worker_command(
        queue=queue, hostname=f"{queue}@{socket.gethostname()}", python=sys.executable
    )
    env = worker_env(
        broker_url=broker_url, queue=queue, run_dir=tmp_path / "run", CHANNEL_LAYER_PREFIX=live_prefix
    )
    process = ManagedProcess("celery worker", args, env=env, log_path=tmp_path / "worker.log")
    with running(process):
        process.wait_for_log(r"\bready\.", timeout=30)
        yield process


def test_a_breach_fired_by_the_worker_appears_on_both_screens(
    alice, bob, ticket: TicketInfo, worker, asgi_server, browser
):
    page_a = open_ticket(browser, asgi_server, alice, ticket)
    page_b = open_ticket(browser, asgi_server, bob, ticket)
    expect(page_a.locator("#viewers .viewer")).to_have_text([bob.name])
    expect(page_b.locator("#viewers .viewer")).to_have_text([alice.name])

    # The first-response clock now ends in 3 s; its timers go to the worker when this commits.
    committed(lambda: shorten(SlaClock.objects.get(pk=ticket.first_response_clock), due_in=3))

    for page in (page_a, page_b):
        banner = page.locator("#sla-banner .sla-alert")
        expect(banner).to_have_class(re.compile(r"\bsla-breach\b"), timeout=BREACH_TIMEOUT_MS)
        expect(banner).to_contain_text("SLA breached: First response was due")
        assert still_the_same_document(page)
    assert "fire_clock" in worker.log()
