"""Routing from several OS processes at once, on the real test database: no work is given twice, no
agent is given more than their capacity, nothing is lost, and every free place is filled.

Six child processes (``python -c`` with the test database's URL, so each has its own PostgreSQL
connection) are started, wait until all of them are set up, then are released together. Each runs
rounds of item-driven routing (``route_item`` on every queued item, in its own shuffled order) and
agent-driven routing (``route_for_agent`` for every agent, in its own order, while it gives work);
half of them start with the items, half with the agents. A child stops once the agents' load in the
database equals their capacity (or after a deadline, which the test then reports as a failure).

Children publish the tasks the engine schedules after commit (``_after_commit``) to a queue of this
test's own on the local Redis, deleted afterwards: nothing reaches a worker of another database.

Two lock-order cases are then replayed deterministically with two threads (two connections) that
wait for each other on purpose: a supervisor assigning a ticket by hand while the agent's
``route_for_agent`` waits for that ticket (it was a deadlock: the router held the agent ``FOR
UPDATE`` and the supervisor's deferred foreign-key check needs ``KEY SHARE`` on it), and a worker
holding one item while another routes a second item of the same tenant (the item lock used to lock
the tenant row too, so ``SKIP LOCKED`` skipped every other item of the tenant and a ticket's change
never reached its queued item).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction

from care.accounts.models import Agent, AgentChannel, AgentLanguage, Presence, TenantAuthorisation
from care.accounts.services import agent_set_presence
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.routing import services
from care.routing.models import QueuedItem, RoutingDecision
from care.tickets.models import Priority, Ticket, TicketEvent
from care.tickets.services import ticket_assign, ticket_update
from care.tickets.status import ACTIONABLE
from tests.factories.accounts import make_agent
from tests.factories.contacts import CustomerFactory
from tests.factories.tickets import make_ticket
from tests.helpers import drop_celery_pools, run_in_threads
from tests.processes import ManagedProcess, ProcessError, wait_until

PROCESSES = 6
TICKETS_PER_TENANT = {Channel.EMAIL: 72, Channel.PHONE: 18}  # 180 tickets over two tenants
AGENTS = 20
# A child gives up after this long without filling every place (the test then fails, saying so).
DEADLINE_SECONDS = 60
START_TIMEOUT = 60
RESULT_PREFIX = "RESULT "

_CHILD = (
    "import sys, django; django.setup(); "
    "from tests.routing.test_concurrency import router_main; router_main(sys.argv[1], int(sys.argv[2]))"
)


# --- the child process ---------------------------------------------------------------------------


def router_main(directory: str, index: int) -> None:
    """One child: set up, say ``ready``, wait for ``go.json`` in ``directory`` (the items, agents and
    places), route until every place is taken, then print one ``RESULT {json}`` line."""
    rng = random.Random(1000 + index)
    kinds: Counter[str] = Counter()
    errors: list[str] = []
    connection.ensure_connection()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    go = Path(directory) / "go.json"
    while not go.exists():
        time.sleep(0.002)
    started = time.time()
    config = json.loads(go.read_text(encoding="utf-8"))
    deadline = time.monotonic() + config["deadline_seconds"]

    def attempt(call: Any, **kwargs: int) -> Any:
        try:
            return call(**kwargs)
        except Exception as exc:  # every failure is reported to the test, which fails on it
            errors.append(f"{call.__name__}({kwargs}): {type(exc).__name__}: {exc}"[:500])
            connection.close_if_unusable_or_obsolete()
            return None

    def item_pass() -> None:
        for item_id in rng.sample(config["item_ids"], len(config["item_ids"])):
            if time.monotonic() > deadline:
                return
            decision = attempt(services.route_item, item_id=item_id)
            kinds[f"route_item:{decision.kind if decision else 'none'}"] += 1

    def agent_pass() -> None:
        for agent_id in rng.sample(config["agent_ids"], len(config["agent_ids"])):
            while time.monotonic() <= deadline and (
                decision := attempt(services.route_for_agent, agent_id=agent_id)
            ):
                kinds[f"route_for_agent:{decision.kind}"] += 1
            kinds["route_for_agent:none"] += 1

    def filled() -> bool:
        taken = Ticket.objects.filter(assignee__isnull=False, status__in=ACTIONABLE).count()
        return taken >= config["places"]

    # Half the children start with the items, half with the agents.
    passes = (item_pass, agent_pass) if index % 2 == 0 else (agent_pass, item_pass)
    rounds = 0
    while not filled() and time.monotonic() <= deadline:
        rounds += 1
        for routing_pass in passes:
            routing_pass()
    result = {
        "started": started,
        "ended": time.time(),
        "rounds": rounds,
        "kinds": dict(kinds),
        "errors": errors,
        "filled": filled(),
    }
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


# --- the parent: data, processes, checks ----------------------------------------------------------


def _test_database_url() -> str:
    """The URL of the database this test runs in (pytest-django's test database)."""
    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    password = quote(params["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(params["HOST"] or "", safe="")
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(params['NAME'], safe='')}"


@pytest.fixture
def own_task_queue():
    """Tasks published by this test (the parent's and the children's) go to a queue of its own on
    the local Redis; its keys are deleted afterwards."""
    from config.celery import app

    queue = f"care-test-routing-{uuid.uuid4().hex[:12]}"
    saved = app.conf.task_default_queue
    drop_celery_pools(app)
    app.conf.task_default_queue = queue
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL, socket_timeout=5)
    try:
        yield queue
    finally:
        drop_celery_pools(app)
        app.conf.task_default_queue = saved
        leftovers = list(client.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()


def _make_agents(tenant_a, tenant_b) -> dict[int, dict[str, int]]:
    """Twenty online agents: ten for A (German), five for B (Spanish), five for both. Email capacity
    1, 2 or 3; every other agent also takes calls (capacity 1). Returns {agent id: {channel: cap}}."""
    places: dict[int, dict[str, int]] = {}
    for index in range(AGENTS):
        if index < 10:
            tenants, languages = [tenant_a], (("de", Proficiency.NATIVE),)
        elif index < 15:
            tenants, languages = [tenant_b], (("es", Proficiency.C1),)
        else:
            tenants, languages = [tenant_a, tenant_b], (("de", Proficiency.NATIVE), ("es", Proficiency.C2))
        agent = make_agent(
            tenants=tenants, languages=languages, channels=(), email=f"router{index:02d}@care.test"
        )
        capacities = {Channel.EMAIL: 1 + index % 3}
        if index % 2 == 0:
            capacities[Channel.PHONE] = 1
        AgentChannel.objects.bulk_create(
            AgentChannel(agent=agent, channel=channel, capacity=capacity)
            for channel, capacity in capacities.items()
        )
        agent_set_presence(agent=agent, presence=Presence.ONLINE)
        places[agent.pk] = {str(channel): capacity for channel, capacity in capacities.items()}
    return places


@transaction.atomic  # one commit instead of 180: the queued items appear together
def _make_tickets(tenant_a, tenant_b) -> list[Ticket]:
    """Through ``ticket_create``, as Care creates them: each is queued by routing's receiver."""
    tickets = []
    for tenant in (tenant_a, tenant_b):
        customers = [CustomerFactory(tenant=tenant) for _ in range(10)]
        for channel, count in TICKETS_PER_TENANT.items():
            tickets += [
                make_ticket(
                    tenant=tenant,
                    customer=customers[n % 10],
                    channel=channel,
                    language=tenant.default_language,
                    subject=f"Bill {n}",
                )
                for n in range(count)
            ]
    return tickets


def _start_children(directory: Path, *, queue: str) -> list[ManagedProcess]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or "test-not-secret",
        DJANGO_DEBUG="0",
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        CARE_RUN_DIR=str(directory / "run"),
        PYTHONUNBUFFERED="1",
    )
    return [
        ManagedProcess(
            f"router {index}",
            [sys.executable, "-c", _CHILD, str(directory), str(index)],
            env=env,
            log_path=directory / f"router{index}.log",
        ).start()
        for index in range(PROCESSES)
    ]


def _go(directory: Path, config: dict[str, Any]) -> None:
    """Release the children: ``go.json`` appears at once, complete (written aside, then renamed)."""
    draft = directory / "go.json.draft"
    draft.write_text(json.dumps(config), encoding="utf-8")
    draft.rename(directory / "go.json")


def _result(child: ManagedProcess) -> dict[str, Any]:
    lines = [line for line in child.log().splitlines() if line.startswith(RESULT_PREFIX)]
    if child.popen is None or child.popen.returncode != 0 or not lines:
        raise ProcessError(f"no result: {child.describe()}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_six_processes_routing_at_once_give_no_ticket_twice_and_fill_every_place_once(
    tenant_a, tenant_b, tmp_path, own_task_queue
):
    # The children import Django and connect while the data is made.
    children = _start_children(tmp_path, queue=own_task_queue)
    try:
        places = _make_agents(tenant_a, tenant_b)
        tickets = _make_tickets(tenant_a, tenant_b)
        # Two agents already hold an email ticket each, so their load starts at 1 (and the tickets
        # leave the queue): agent 2 one of A's, agent 17 one of B's.
        agent_ids = list(places)
        first_of_b = sum(TICKETS_PER_TENANT.values())
        held = {tickets[0].pk: agent_ids[2], tickets[first_of_b].pk: agent_ids[17]}
        assert {tickets[0].channel, tickets[first_of_b].channel} == {Channel.EMAIL}
        assert (tickets[0].tenant_id, tickets[first_of_b].tenant_id) == (tenant_a.pk, tenant_b.pk)
        for ticket_id, agent_id in held.items():
            ticket_assign(
                ticket=Ticket.objects.get(pk=ticket_id), agent=Agent.objects.get(pk=agent_id), actor=None
            )
        item_ids = list(QueuedItem.objects.order_by("pk").values_list("pk", flat=True))
        assert len(item_ids) == len(tickets) - len(held) == 178
        total_places = sum(sum(channels.values()) for channels in places.values())
        assert total_places == 49  # 39 email + 10 phone, far fewer than the tickets

        for child in children:
            child.wait_for_log(r"(?m)^ready$", timeout=START_TIMEOUT)
        _go(
            tmp_path,
            {
                "item_ids": item_ids,
                "agent_ids": agent_ids,
                "places": total_places,
                "deadline_seconds": DEADLINE_SECONDS,
            },
        )
        for child in children:
            assert child.popen is not None
            child.popen.wait(timeout=DEADLINE_SECONDS + 30)
        results = [_result(child) for child in children]
    finally:
        for child in children:
            child.stop()

    assert [error for result in results for error in result["errors"]] == []
    assert [result["filled"] for result in results] == [True] * PROCESSES, results
    # The children really ran at the same time: each started before any of them finished.
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)

    tickets_now = {t.pk: t for t in Ticket.objects.all()}
    assigned = {pk: t for pk, t in tickets_now.items() if t.assignee_id is not None}
    routed = set(assigned) - set(held)

    # No ticket was given twice: one assignment event each, one ASSIGNED decision per routed ticket,
    # naming the agent who has it.
    events = Counter(
        TicketEvent.objects.filter(kind=TicketEvent.Kind.ASSIGNED).values_list("ticket_id", flat=True)
    )
    assert set(events) == set(assigned)
    assert set(events.values()) == {1}
    decisions = list(
        RoutingDecision.objects.filter(kind=RoutingDecision.Kind.ASSIGNED).values_list(
            "ticket_id", "agent_id"
        )
    )
    assert len(decisions) == len({ticket_id for ticket_id, _agent in decisions}) == len(routed)
    assert dict(decisions) == {pk: assigned[pk].assignee_id for pk in routed}
    assert not RoutingDecision.objects.filter(kind=RoutingDecision.Kind.OFFERED).exists()
    reported = sum(
        n for result in results for kind, n in result["kinds"].items() if kind.endswith(":assigned")
    )
    assert reported == len(routed)

    # No agent holds more than their capacity of a channel, and every place is used.
    load = Counter((t.assignee_id, t.channel) for t in assigned.values() if t.status in ACTIONABLE)
    assert {key: n for key, n in load.items() if n > places[key[0]].get(key[1], 0)} == {}
    assert load == Counter({(a, c): cap for a, channels in places.items() for c, cap in channels.items()})
    assert len(assigned) == total_places

    # Nothing lost: every ticket is either assigned (and out of the queue) or still queued, waiting.
    queued = dict(QueuedItem.objects.values_list("ticket_id", "state"))
    assert set(queued).isdisjoint(assigned)
    assert set(queued) | set(assigned) == set(tickets_now)
    assert set(queued.values()) == {QueuedItem.State.WAITING}

    # And each went to someone allowed to take it: authorised for the tenant, speaking the language.
    authorised = set(TenantAuthorisation.objects.values_list("agent_id", "tenant_id"))
    speaks = set(AgentLanguage.objects.values_list("agent_id", "language"))
    for ticket in assigned.values():
        assert (ticket.assignee_id, ticket.tenant_id) in authorised
        assert (ticket.assignee_id, ticket.language) in speaks


@pytest.mark.django_db(transaction=True)
def test_assigning_by_hand_while_the_agent_pulls_that_ticket_does_not_deadlock(
    tenant_a, supervisor, own_task_queue
):
    """The router holds the agent's row and waits for the ticket the supervisor holds; the supervisor's
    commit checks its foreign keys to the agent (deferred): that check must not wait for the router."""
    agent = make_agent(tenants=[tenant_a], channels=(Channel.EMAIL,))
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    ticket = make_ticket(tenant=tenant_a, language="de")
    assert QueuedItem.objects.filter(ticket=ticket, state=QueuedItem.State.WAITING).exists()
    router_backend: list[int] = []
    supervisor_holds_ticket = threading.Event()

    def route() -> RoutingDecision | None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            router_backend.append(cursor.fetchone()[0])
        assert supervisor_holds_ticket.wait(timeout=30)
        return services.route_for_agent(agent_id=agent.pk)

    def assign_by_hand() -> Ticket:
        with transaction.atomic():
            # routing_assign_by_hand's first lock, taken here so that the router reaches it in between.
            Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
            supervisor_holds_ticket.set()
            wait_until(
                lambda: _waits_for_a_lock(router_backend),
                timeout=30,
                what="the router did not wait for the ticket",
            )
            return services.routing_assign_by_hand(ticket=ticket, agent=agent, actor=supervisor.user)

    routed, assigned = run_in_threads(lambda index: (route, assign_by_hand)[index](), 2)

    assert routed is None  # the router saw the ticket taken and let go of it
    assert assigned.assignee_id == agent.pk
    ticket.refresh_from_db()
    assert ticket.assignee_id == agent.pk
    assert not QueuedItem.objects.filter(ticket=ticket).exists()
    assert list(RoutingDecision.objects.filter(ticket=ticket).values_list("kind", flat=True)) == [
        RoutingDecision.Kind.MANUAL
    ]
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.ASSIGNED).count() == 1


def _waits_for_a_lock(backend: list[int]) -> bool:
    if not backend:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [backend[0]])
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_an_item_being_routed_does_not_hide_the_other_items_of_its_tenant(tenant_a, own_task_queue):
    """A worker holding one item must not lock the tenant with it: another worker routes another
    item of that tenant meanwhile, and a ticket's change still reaches its queued item."""
    agent = make_agent(tenants=[tenant_a], channels=(Channel.EMAIL,))
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    unspoken = make_ticket(tenant=tenant_a, language="en")  # nobody speaks English: it will wait
    german = make_ticket(tenant=tenant_a, language="de")
    later = make_ticket(tenant=tenant_a, language="de", priority=Priority.LOW)
    items = dict(QueuedItem.objects.values_list("ticket_id", "pk"))
    first_holds_its_item = threading.Event()
    second_done = threading.Event()

    def hold_one_item() -> RoutingDecision | None:
        with transaction.atomic():  # the item stays locked until this commits
            decision = services.route_item(item_id=items[unspoken.pk])
            first_holds_its_item.set()
            assert second_done.wait(timeout=30)
        return decision

    def route_another() -> tuple[RoutingDecision | None, Ticket]:
        assert first_holds_its_item.wait(timeout=30)
        with connection.cursor() as cursor:  # fail fast (not after 30 s) if the tenant row is held
            cursor.execute("SET lock_timeout = '5s'")
        try:
            decision = services.route_item(item_id=items[german.pk])
            changed = ticket_update(ticket=later, actor=None, priority=Priority.URGENT)
        finally:
            second_done.set()
        return decision, changed

    waiting, (assigned, changed) = run_in_threads(lambda index: (hold_one_item, route_another)[index](), 2)

    assert waiting is not None
    assert waiting.kind == RoutingDecision.Kind.WAITING
    assert assigned is not None
    assert (assigned.kind, assigned.agent_id) == (RoutingDecision.Kind.ASSIGNED, agent.pk)
    assert Ticket.objects.get(pk=german.pk).assignee_id == agent.pk
    assert changed.priority == Priority.URGENT
    assert QueuedItem.objects.get(ticket=later).priority == Priority.URGENT
