"""Browser tests: a real ASGI server (daphne) on the test database, driven by Debian's Chromium
through Playwright.

- ``asgi_server`` starts ``daphne config.asgi:application`` (``tests/asgi_servers.py``) on a free
  port, with the test database, this test's channel-layer prefix (the server's live events and the
  test's share one Redis namespace), this test's Celery queue and the static files collected once
  per run; it yields the base URL. Its settings module (``server_settings.py``) only adds the
  tests' password hasher.
- ``browser`` launches ``/usr/bin/chromium`` (``make browser`` installs it; Playwright's own browser
  download is never used) and ``log_in`` logs a page in through the login form.
- ``committed(fn)`` runs database work of the test itself, committed, in a thread of its own.

Why a thread: Playwright's synchronous API runs an asyncio loop in this thread (parked in a greenlet
while the test runs). Django then refuses ORM calls here (SynchronousOnlyOperation) and asgiref's
``async_to_sync``, which publishing live events uses, refuses to run at all. A fresh thread has no
loop, so a change made there is committed and published exactly as a web request would do it. The
fixtures that create the test's rows run before the browser starts (``browser`` is requested last).

Tests here are transactional (``django_db(transaction=True)``): the server is another process and
sees only committed rows.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.request import urlopen

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

from care.accounts.models import Agent, User
from care.core.channels import Channel
from care.sla.models import SlaClock, SlaPolicy, Target
from care.tickets.models import Direction
from care.tickets.services import interaction_add
from tests.asgi_servers import asgi_server as asgi_server_process
from tests.asgi_servers import asgi_server_env, collect_static
from tests.factories.accounts import PASSWORD, make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket
from tests.processes import running

T = TypeVar("T")

CHROMIUM = os.environ.get("CARE_CHROMIUM", "/usr/bin/chromium")
# What this Chromium needs to run headless in a container without a desktop session, and to stay
# off the network (no component updates, no sync, no QUIC probing).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long a page may take to show what the server pushed (it is usually well under a second).
LIVE_TIMEOUT_MS = 5000


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    """``collectstatic`` once per run: with DEBUG off the server serves the manifest's hashed files,
    as in production."""
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DJANGO_SECRET_KEY": "test-not-secret", "DJANGO_DEBUG": "0"}
    collect_static(root, env)
    return root


@pytest.fixture
def asgi_server(transactional_db, live_prefix, broker, static_root, tmp_path) -> Iterator[str]:
    """Daphne serving Care on the test database (``tests/asgi_servers.py``); yields its base URL.

    Stopped before the database is flushed (it depends on ``transactional_db``).
    """
    broker_url, queue = broker
    env = asgi_server_env(
        prefix=live_prefix,
        broker_url=broker_url,
        queue=queue,
        run_dir=tmp_path / "run",
        static_root=static_root,
        DJANGO_SETTINGS_MODULE="tests.browser.server_settings",
    )
    server = asgi_server_process("daphne", env=env, log_dir=tmp_path)
    with running(server):
        server.wait_ready()
        with urlopen(server.http_url("/healthz"), timeout=10) as answer:  # noqa: S310 - our own server
            assert answer.status == 200, server.describe()
        yield server.origin


@pytest.fixture
def browser(asgi_server) -> Iterator[Browser]:
    """Chromium, launched for this test after its rows exist (see the module docstring)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM}: run `make browser` (as root it installs "
            "Debian's chromium package with apt-get), or set CARE_CHROMIUM to another Chromium."
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def log_in(page: Page, base_url: str, email: str, *, next_path: str = "/me/") -> None:
    """Log ``page`` in through the login form (the tests' users share factories' PASSWORD)."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(base_url + next_path) + r"$"))


def committed(work: Callable[[], T]) -> T:
    """Run ``work`` (database writes, publishing) in a thread of its own and return its result.

    Each statement commits as in a request (autocommit), ``on_commit`` callbacks run and live events
    are published; the thread's connection is closed afterwards.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="committed")
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():
        raise AssertionError("Database work of the test did not finish within 60 s.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]


# --- People and a ticket shared by the live-page tests ---------------------------------------


@dataclass(frozen=True)
class Person:
    agent_id: int
    user_id: int
    email: str
    name: str


@dataclass(frozen=True)
class TicketInfo:
    id: int
    tenant_id: int
    reference: str
    identity_id: int
    first_response_clock: int

    @property
    def path(self) -> str:
        return f"/desk/tickets/{self.reference}/"

    @property
    def stream(self) -> str:
        return f"ticket:{self.id}"


def _person(agent: Agent, name: str) -> Person:
    User.objects.filter(pk=agent.user_id).update(full_name=name)
    return Person(agent_id=agent.pk, user_id=agent.user_id, email=agent.user.email, name=name)


@pytest.fixture
def alice(agent) -> Person:
    return _person(agent, "Alice Agent")


@pytest.fixture
def bob(tenant_a) -> Person:
    return _person(make_agent(tenants=[tenant_a], email="bob@care.test"), "Bob Builder")


@pytest.fixture
def ticket(tenant_a) -> TicketInfo:
    """A phone ticket of A with the customer's first message; its SLA clocks run (no business hours)."""
    SlaPolicy.objects.create(
        tenant=tenant_a,
        name="standard",
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=480,
        business_hours=False,
    )
    customer = CustomerFactory(tenant=tenant_a, display_name="Greta Kunde")
    identity = IdentityFactory(customer=customer, value="greta@example.com")
    created = make_ticket(
        tenant=tenant_a, customer=customer, subject="Zählerstand falsch", channel=Channel.PHONE
    )
    interaction_add(
        ticket=created,
        channel=Channel.PHONE,
        direction=Direction.INBOUND,
        body_text="Mein Zählerstand ist falsch.",
        author_identity=identity,
    )
    clock = SlaClock.objects.get(ticket=created, target=Target.FIRST_RESPONSE)
    return TicketInfo(
        id=created.pk,
        tenant_id=tenant_a.pk,
        reference=created.reference,
        identity_id=identity.pk,
        first_response_clock=clock.pk,
    )


def open_ticket(browser: Browser, base_url: str, person: Person, ticket: TicketInfo) -> Page:
    """A new browser context (its own cookies: another person) logged in on the ticket's page, once
    the page is subscribed to the ticket's stream; marks the document to detect navigations."""
    page = browser.new_context(locale="en-GB", timezone_id="Europe/Berlin").new_page()
    log_in(page, base_url, person.email, next_path=ticket.path)
    page.wait_for_function(
        "stream => window.careLive && window.careLive.isSubscribed(stream)",
        arg=ticket.stream,
        timeout=LIVE_TIMEOUT_MS,
    )
    page.evaluate("window.sameDocument = true")
    return page


def still_the_same_document(page: Page) -> bool:
    return page.evaluate("window.sameDocument === true") is True
