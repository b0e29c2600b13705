"""Routing on a real Celery worker: new work is routed after commit, and a step's timer fires on time.

Nothing is routed in the test process: ``ticket_create`` enqueues the item and, after the commit,
sends ``route_item`` to the broker; the worker (a subprocess, ``tests/celery_e2e.py``) finds nobody in
the first ring, schedules itself for the moment the second ring opens, and assigns then.
"""

from __future__ import annotations

import time

import pytest

from care.core.languages import Proficiency
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.tickets.models import Ticket
from tests.factories.tickets import make_ticket
from tests.processes import wait_until

pytestmark = pytest.mark.slow

SECOND_RING_AFTER = 3


@pytest.mark.django_db(transaction=True)
def test_a_worker_routes_new_work_and_widens_the_ring_when_the_step_timer_fires(
    tenant_b, online_agent, celery_worker
):
    queue = RoutingQueue.objects.create(tenant=tenant_b, name="Atención")
    RoutingStep.objects.create(queue=queue, position=0, min_proficiency=Proficiency.NATIVE)
    RoutingStep.objects.create(queue=queue, position=1, after_seconds=SECOND_RING_AFTER)
    fluent = online_agent(tenants=[tenant_b], languages=(("es", Proficiency.C1),))

    started = time.monotonic()
    ticket = make_ticket(tenant=tenant_b, language="es")  # commits: the worker gets route_item

    def assigned() -> bool:
        return Ticket.objects.filter(pk=ticket.pk, assignee=fluent).exists()

    wait_until(
        assigned,
        timeout=SECOND_RING_AFTER + 15,
        what="the ticket assigned by the worker",
        details=celery_worker.log_tail,
    )
    elapsed = time.monotonic() - started
    decisions = list(RoutingDecision.objects.filter(ticket=ticket).order_by("id"))
    assert [d.kind for d in decisions] == ["waiting", "assigned"]
    assert decisions[0].candidates[0]["rejected"] == ["speaks es at C1, needs Native"]
    assert decisions[1].step.startswith(f"after {SECOND_RING_AFTER} s")
    # Not before the ring opened, and not long after: the timer, not the periodic sweep, fired it.
    assert decisions[1].waited_seconds >= SECOND_RING_AFTER
    assert elapsed < SECOND_RING_AFTER + 5, elapsed
    assert not QueuedItem.objects.filter(ticket=ticket).exists()
