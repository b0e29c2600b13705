"""Benchmark ``queue``: the first page of an agent's work queue, most urgent first.

Calls ``care.tickets.selectors.ticket_queue`` exactly as the desk does. The user instance is loaded
once per variant and reused across iterations, as one request loads its user once: its visible
tenant ids are cached on it after the first call, which ``queries_first`` shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from bench.datagen import MULTI_AGENT_EMAIL, QUEUE_AGENT_EMAIL
from bench.harness import Context, Result, benchmark, log, machine_load, measure
from care.accounts.models import User
from care.tickets.models import Ticket
from care.tickets.selectors import ticket_queue
from care.tickets.status import ACTIONABLE, Status


@dataclass(frozen=True)
class Variant:
    name: str
    email: str
    statuses: tuple[str, ...]
    limit: int
    # True: narrow to the big tenant with tenant_ids; False: everything the agent may see.
    one_tenant: bool = True
    explain_to_stderr: bool = False


_ACTIONABLE = tuple(str(status) for status in ACTIONABLE)
VARIANTS = (
    Variant("queue.actionable", QUEUE_AGENT_EMAIL, _ACTIONABLE, 50, explain_to_stderr=True),
    Variant("queue.pending", QUEUE_AGENT_EMAIL, (str(Status.PENDING),), 50),
    Variant("queue.page_25", QUEUE_AGENT_EMAIL, _ACTIONABLE, 25),
    Variant("queue.page_50", QUEUE_AGENT_EMAIL, _ACTIONABLE, 50),
    Variant("queue.page_100", QUEUE_AGENT_EMAIL, _ACTIONABLE, 100),
    Variant(
        "queue.three_tenants", MULTI_AGENT_EMAIL, _ACTIONABLE, 50, one_tenant=False, explain_to_stderr=True
    ),
)


@benchmark("queue", description="Agent queue: first page of the big tenant's tickets, most urgent first")
def queue(ctx: Context) -> Iterator[Result]:
    big = ctx.dataset.big_tenant
    for variant in VARIANTS:
        user = User.objects.get(email=variant.email)
        tenant_ids = [big.id] if variant.one_tenant else None

        def call(user: User = user, variant: Variant = variant, tenant_ids: Any = tenant_ids) -> list[Ticket]:
            return ticket_queue(
                user=user, tenant_ids=tenant_ids, statuses=variant.statuses, limit=variant.limit
            )

        log(f"{variant.name}: {ctx.options.warmup} warm-up + {ctx.options.iterations} timed iterations")
        measured = measure(call, iterations=ctx.options.iterations, warmup=ctx.options.warmup)
        visible = sorted(user.visible_tenant_ids())
        plan = explain(measured.last_sql[-1], to_stderr=variant.explain_to_stderr, label=variant.name)
        yield Result(
            name=variant.name,
            samples_ns=measured.samples_ns,
            queries=measured.queries_per_iteration,
            rows=ctx.dataset.tickets,
            extra={
                **measured.query_fields(),
                "statuses": list(variant.statuses),
                "limit": variant.limit,
                "returned": len(measured.last_value),
                "tenants": len(visible),
                "tenant_rows": sum(t.tickets for t in ctx.dataset.tenants if t.id in visible),
                "matching": _matching(visible, variant.statuses),
                "plan": plan.summary,
                "plan_ms": plan.execution_ms,
                "quick": ctx.options.quick,
                "load_1m": machine_load(),
            },
        )


def _matching(tenant_ids: Sequence[int], statuses: Sequence[str]) -> int:
    """How many tickets the queue filters down from: the size the page is the top of."""
    return int(Ticket.objects.filter(tenant_id__in=tenant_ids, status__in=statuses).count())


@dataclass(frozen=True)
class Plan:
    summary: str
    execution_ms: float


def explain(sql: str, *, to_stderr: bool, label: str) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL the selector sent, summarised in one line.

    ``sql`` is the statement as Django's query log recorded it, parameters already inlined (Care uses
    client-side binding), so this explains exactly what ran.
    """
    with connection.cursor() as cursor:
        if to_stderr:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            text = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
            log(f"{label}: EXPLAIN (ANALYZE, BUFFERS) of\n    {sql}\n{text}")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    document = raw if isinstance(raw, list) else json.loads(raw)
    return summarise_plan(document[0])


def summarise_plan(document: dict[str, Any]) -> Plan:
    """``Limit > Nested Loop Left Join …; tickets_ticket: Index Scan using X; sort: none; …``."""
    top = document["Plan"]
    nodes = list(_walk(top))
    ticket_nodes = [node for node in nodes if node.get("Relation Name") == "tickets_ticket"]
    tickets = "; ".join(
        node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
        for node in ticket_nodes
    )
    sorts = [
        f"{node.get('Sort Method', 'sort')} ({node.get('Sort Space Used', '?')} kB "
        f"{node.get('Sort Space Type', '').lower()})".replace(" )", ")")
        for node in nodes
        if node["Node Type"] in {"Sort", "Incremental Sort"}
    ]
    path = " > ".join(_spine(top))
    execution_ms = float(document.get("Execution Time", 0.0))
    summary = (
        f"{path}; tickets_ticket: {tickets or 'not scanned'}; sort: {', '.join(sorts) or 'none'}; "
        f"buffers hit={top.get('Shared Hit Blocks', 0)} read={top.get('Shared Read Blocks', 0)}; "
        f"{execution_ms:.3f} ms"
    )
    return Plan(summary=summary, execution_ms=round(execution_ms, 3))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def _spine(node: dict[str, Any], depth: int = 3) -> Iterator[str]:
    """The top ``depth`` nodes, following the outer (first) child: where the rows come from."""
    for _ in range(depth):
        name, join = node["Node Type"], node.get("Join Type", "Inner")
        if (
            join != "Inner"
        ):  # spelled as EXPLAIN's text format does: "Hash Left Join", "Nested Loop Left Join"
            name = f"{name.removesuffix(' Join')} {join} Join"
        yield name
        children = node.get("Plans")
        if not children:
            return
        node = children[0]
