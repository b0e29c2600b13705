"""Benchmark ``desk_pages``: server time of the desk's queue page and of a ticket page with 200
timeline entries, at the dataset's size (1,000,000 tickets; ``--quick`` 20,000). Target: p95 under
100 ms each, and query counts that do not grow with the data.

Each variant is one ``GET`` through Django's test ``Client`` (the whole stack: middleware, session,
view, queries, template), logged in with ``force_login`` as one of the desk users of
``bench/desk_data.py``: an agent of three tenants, a supervisor authorised for all 50, an
administrator who sees every tenant. The time is the ``client.get`` call; the query count is that of
one request. ``constant`` says whether a variant's count equals that of its pair (page 2 against page
1 of the same queue; the 20-entry ticket against the 200-entry one): what must hold at any size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.desk_data import (
    DESK_ADMIN_EMAIL,
    DESK_AGENT_EMAIL,
    DESK_SUPERVISOR_EMAIL,
    DeskData,
    ensure_desk_data,
)
from bench.harness import Context, Measurement, Result, benchmark, log, machine_load, page_settings
from bench.queue import explain
from care.accounts.models import User
from care.desk.timeline import TIMELINE_WINDOW
from care.tenants.models import Tenant
from care.tickets.models import Interaction

TARGET_P95_MS = 100.0


@dataclass(frozen=True)
class Variant:
    name: str
    email: str
    path: str
    params: dict[str, Any]
    pair: str = ""  # the variant whose query count this one must equal
    explain: bool = False  # EXPLAIN (ANALYZE) of the page's ticket query to stderr


def _window_start(reference: str) -> int:
    """The id of the oldest interaction the ticket page shows first: "Show earlier entries" asks with it."""
    code, number = reference.rsplit("-", 1)
    newest = Interaction.objects.filter(ticket__tenant__code=code, ticket__number=int(number)).order_by(
        "-occurred_at", "-id"
    )
    return int(list(newest.values_list("pk", flat=True)[:TIMELINE_WINDOW])[-1])


def variants(data: DeskData) -> list[Variant]:
    big, second = data.tenants[0], data.tenants[1]
    second_language = Tenant.objects.get(pk=second.id).default_language
    return [
        Variant("desk_pages.queue_agent", DESK_AGENT_EMAIL, "/desk/queue/", {}, explain=True),
        Variant(
            "desk_pages.queue_agent_page_2", DESK_AGENT_EMAIL, "/desk/queue/", {"page": 2}, "queue_agent"
        ),
        Variant(
            "desk_pages.queue_agent_tenant_language",
            DESK_AGENT_EMAIL,
            "/desk/queue/",
            {"tenant": second.id, "language": second_language},
            "queue_agent",
        ),
        Variant(
            "desk_pages.queue_agent_overdue",
            DESK_AGENT_EMAIL,
            "/desk/queue/",
            {"sla": "overdue"},
            "queue_agent",
        ),
        Variant(
            "desk_pages.queue_agent_unassigned",
            DESK_AGENT_EMAIL,
            "/desk/queue/",
            {"assignee": "unassigned", "tenant": big.id},
            "queue_agent",
        ),
        Variant("desk_pages.queue_supervisor", DESK_SUPERVISOR_EMAIL, "/desk/queue/", {}, explain=True),
        Variant("desk_pages.queue_admin", DESK_ADMIN_EMAIL, "/desk/queue/", {}, explain=True),
        Variant(
            "desk_pages.queue_admin_page_2", DESK_ADMIN_EMAIL, "/desk/queue/", {"page": 2}, "queue_admin"
        ),
        Variant(
            "desk_pages.queue_admin_french_overdue",
            DESK_ADMIN_EMAIL,
            "/desk/queue/",
            {"language": "fr", "sla": "overdue", "priority": 3},
            "queue_admin",
            explain=True,
        ),
        Variant(
            "desk_pages.queue_admin_pending",
            DESK_ADMIN_EMAIL,
            "/desk/queue/",
            {"status": "pending"},
            "queue_admin",
        ),
        Variant("desk_pages.ticket_200", DESK_AGENT_EMAIL, f"/desk/tickets/{data.long_ticket}/", {}),
        Variant(
            "desk_pages.ticket_20", DESK_AGENT_EMAIL, f"/desk/tickets/{data.short_ticket}/", {}, "ticket_200"
        ),
        # The page opens with the newest TIMELINE_WINDOW entries; this is the whole timeline at once
        # (the page without script after "Show earlier entries"), and the next 50 as the script loads them.
        Variant(
            "desk_pages.ticket_200_whole",
            DESK_AGENT_EMAIL,
            f"/desk/tickets/{data.long_ticket}/",
            {"timeline": "all"},
            "ticket_200",
        ),
        Variant(
            "desk_pages.ticket_200_earlier",
            DESK_AGENT_EMAIL,
            f"/desk/tickets/{data.long_ticket}/entries",
            {"before": str(_window_start(data.long_ticket))},
        ),
    ]


@benchmark("desk_pages", description="Desk pages: the queue page and a ticket with 200 timeline entries")
def desk_pages(ctx: Context) -> Iterator[Result]:
    data = ensure_desk_data(ctx.dataset)
    clients: dict[str, Client] = {}
    counts: dict[str, int] = {}
    with page_settings():
        for variant in variants(data):
            if variant.email not in clients:
                clients[variant.email] = Client()
                clients[variant.email].force_login(User.objects.get(email=variant.email))
            client = clients[variant.email]

            def call(client: Client = client, variant: Variant = variant) -> HttpResponse:
                # The stubs type the test client's response as its own class, not HttpResponse.
                response = cast(HttpResponse, client.get(variant.path, variant.params))
                if response.status_code != 200:
                    raise RuntimeError(f"{variant.name}: HTTP {response.status_code} for {variant.path}")
                return response

            log(f"{variant.name}: {ctx.options.warmup} warm-up + {ctx.options.iterations} timed iterations")
            measured = measure_requests(call, iterations=ctx.options.iterations, warmup=ctx.options.warmup)
            queries = measured.queries_per_iteration
            short = variant.name.removeprefix("desk_pages.")
            counts[short] = queries
            response = measured.last_value
            extra: dict[str, Any] = {
                **measured.query_fields(),
                "path": variant.path,
                "params": variant.params,
                "user": variant.email.split("@")[0],
                "bytes": len(response.content),
                "target_p95_ms": TARGET_P95_MS,
            }
            # What the page shows, counted in its HTML (the test client keeps no template context
            # outside a test run): queue rows, or timeline entries.
            html = response.content
            if b'class="queue-row"' in html:
                extra["returned"] = html.count(b'class="queue-row"')
            if b"data-interaction-id=" in html:
                extra["entries"] = html.count(b"data-interaction-id=")
            if variant.pair:
                extra["pair"] = variant.pair
                extra["constant"] = counts.get(variant.pair) == queries
            plan = _ticket_query_plan(measured.last_sql, to_stderr=variant.explain, label=variant.name)
            if plan is not None:
                extra["plan"] = plan.summary
                extra["plan_ms"] = plan.execution_ms
            yield Result(
                name=variant.name,
                samples_ns=measured.samples_ns,
                queries=queries,
                rows=data.tickets,
                extra={
                    **extra,
                    "tenants": len(data.tenants),
                    "interactions": data.interactions,
                    "desk_data_seconds": data.build_seconds,
                    "dataset_seconds": ctx.dataset.load_seconds,
                    "quick": ctx.options.quick,
                    "load_1m": machine_load(),
                },
            )


def measure_requests(
    func: Callable[[], HttpResponse], *, iterations: int, warmup: int
) -> Measurement[HttpResponse]:
    """``harness.measure`` for requests: the same fields, but the connection's query log is emptied
    before every call. A request resets it itself when it starts (``request_started``), under
    ``CaptureQueriesContext``'s feet: counted from an empty log, the count is right."""
    if iterations < 1 or warmup < 1:
        raise ValueError("measure_requests needs at least one warm-up and one timed iteration.")
    queries_first = 0
    for index in range(warmup):
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            func()
        if index == 0:
            queries_first = len(captured)
    samples: list[int] = []
    db_samples: list[int] = []
    counts: list[int] = []
    last_sql: list[str] = []
    in_db = [0]
    response: HttpResponse | None = None

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.perf_counter_ns() - started

    with connection.execute_wrapper(timed_execute):
        for _ in range(iterations):
            in_db[0] = 0
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter_ns()
                response = func()
                samples.append(time.perf_counter_ns() - start)
            db_samples.append(in_db[0])
            counts.append(len(captured))
            last_sql = [query["sql"] for query in captured.captured_queries]
    assert response is not None  # noqa: S101 - iterations >= 1
    return Measurement(samples, db_samples, counts, queries_first, last_sql, response)


def _ticket_query_plan(sqls: list[str], *, to_stderr: bool, label: str) -> Any:
    """The plan of the page's main ticket query: the queue's page of tickets (ORDER BY … LIMIT)."""
    for sql in sqls:
        if 'FROM "tickets_ticket"' in sql and "LIMIT" in sql and "ORDER BY" in sql:
            return explain(sql, to_stderr=to_stderr, label=label)
    return None
