"""The supervisor's pages in a real browser, against a real ASGI server and the live layer: the team
view's presence cell follows ``agent.presence`` without a reload, reassignment works through the
page's script, and the wallboard takes its figures from ``wallboard.snapshot`` and ``queue.stats``.

Rows are made by fixtures before the browser starts, changes during a test with ``committed``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from care.accounts.models import Agent, Presence, Role
from care.accounts.services import agent_set_presence
from care.reporting.tasks import refresh_wallboard
from care.routing.models import RoutingQueue, RoutingStep
from care.tenants.models import Tenant
from care.tickets.models import Ticket
from care.tickets.services import ticket_assign
from tests.browser.conftest import LIVE_TIMEOUT_MS, Person, TicketInfo, committed, log_in
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def boss(tenant_a) -> Person:
    agent = make_agent(tenants=[tenant_a], email="sara@care.test", role=Role.SUPERVISOR)
    agent.user.full_name = "Sara Supervisor"
    agent.user.save(update_fields=["full_name"])
    return Person(agent_id=agent.pk, user_id=agent.user_id, email=agent.user.email, name="Sara Supervisor")


@pytest.fixture
def assigned(tenant_a, alice) -> TicketInfo:
    ticket = make_ticket(tenant=tenant_a, subject="Zählerstand falsch")
    ticket_assign(ticket=ticket, agent=Agent.objects.get(pk=alice.agent_id), actor=None)
    return TicketInfo(
        id=ticket.pk, tenant_id=tenant_a.pk, reference=ticket.reference, identity_id=0, first_response_clock=0
    )


def open_page(browser: Browser, base_url: str, person: Person, path: str, stream: str) -> Page:
    page = browser.new_context(locale="en-GB", timezone_id="Europe/Berlin").new_page()
    log_in(page, base_url, person.email, next_path=path)
    page.wait_for_function(
        "stream => window.careLive && window.careLive.isSubscribed(stream)",
        arg=stream,
        timeout=LIVE_TIMEOUT_MS,
    )
    page.evaluate("window.sameDocument = true")
    return page


def same_document(page: Page) -> bool:
    return page.evaluate("window.sameDocument === true") is True


def set_presence(agent_id: int, presence: str) -> None:
    committed(
        lambda: agent_set_presence(
            agent=Agent.objects.select_related("user").get(pk=agent_id), presence=presence
        )
    )


def test_presence_changes_show_on_the_team_view_without_reload(
    boss, alice, bob, assigned, tenant_a, asgi_server, browser
):
    page = open_page(browser, asgi_server, boss, "/desk/team/", f"tenant:{tenant_a.pk}")
    cell = page.locator(f'tr[data-agent-id="{alice.agent_id}"] .sv-presence')
    expect(cell).to_have_text("Offline")

    set_presence(alice.agent_id, Presence.ONLINE)
    expect(cell).to_have_text("Online", timeout=LIVE_TIMEOUT_MS)
    expect(cell).to_have_attribute("data-presence", "online")
    set_presence(alice.agent_id, Presence.ON_CALL)
    expect(cell).to_have_text("On a call", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#team-live")).to_have_text("Alice Agent is now On a call.")
    # Bob's row did not change.
    expect(page.locator(f'tr[data-agent-id="{bob.agent_id}"] .sv-presence')).to_have_text("Offline")
    assert same_document(page)


def test_reassignment_through_the_team_view(boss, alice, bob, assigned, tenant_a, asgi_server, browser):
    page = open_page(browser, asgi_server, boss, "/desk/team/", f"tenant:{tenant_a.pk}")
    page.locator(f'tr[data-agent-id="{alice.agent_id}"] .sv-agent-link').click()
    panel = page.locator("#reassign-panel")
    expect(panel.locator("#reassign-heading")).to_have_text(
        "Alice Agent: 1 open ticket", timeout=LIVE_TIMEOUT_MS
    )
    panel.locator(f'input[name=ticket][value="{assigned.id}"]').check()
    panel.locator("#reassign-to").select_option(str(bob.agent_id))
    panel.locator("#reassign-note").fill("Alice is at lunch")
    panel.locator("#reassign-submit").click()
    expect(panel.locator(".sv-message-success")).to_have_text(
        "1 ticket moved to Bob Builder.", timeout=LIVE_TIMEOUT_MS
    )
    expect(panel.locator("#reassign-empty")).to_be_visible()
    # The team table re-reads itself: Bob now has the ticket as his current item.
    expect(page.locator(f'tr[data-agent-id="{bob.agent_id}"] .sv-current a')).to_have_text(
        assigned.reference, timeout=LIVE_TIMEOUT_MS
    )
    assert same_document(page)
    assert committed(lambda: Ticket.objects.get(pk=assigned.id).assignee_id) == bob.agent_id


@pytest.fixture
def queue_a(tenant_a) -> int:
    queue = RoutingQueue.objects.create(tenant=tenant_a, name="ENN first line", languages=["de"])
    RoutingStep.objects.create(queue=queue, after_seconds=0)
    return queue.pk


def test_wallboard_follows_the_snapshots(boss, tenant_a, queue_a, asgi_server, browser):
    page = open_page(browser, asgi_server, boss, "/desk/wallboard/", f"wallboard:{tenant_a.pk}")
    waiting = page.locator('[data-figure="waiting"]')
    expect(waiting).to_have_text("0")
    expect(page.locator("#wb-live")).to_have_text("Live")

    def two_waiting() -> None:
        tenant = Tenant.objects.get(pk=tenant_a.pk)
        make_ticket(tenant=tenant, subject="one")
        make_ticket(tenant=tenant, subject="two")
        refresh_wallboard(tenant.pk)  # what the debounced task does

    committed(two_waiting)
    expect(waiting).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#wb-queue-rows tr").first.locator("td").first).to_have_text(
        "2", timeout=LIVE_TIMEOUT_MS
    )
    expect(page.locator('[data-figure="longest_wait"]')).not_to_have_text("–")
    assert same_document(page)
