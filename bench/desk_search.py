"""Benchmark ``desk_search``: server time of the desk's search page (``/desk/search/``) at the dataset's
size (1,000,000 tickets and about 2,000,000 timeline entries; ``--quick`` 20,000 tickets).

Data: the shared dataset (``bench/datagen.py``) plus the desk data (``bench/desk_data.py``: 30 more
tenants, 50 in all, and ``1 + id % 3`` timeline entries per ticket whose ``search_vector`` is filled in
the same statement). Tickets are in their tenant's language (de, en, es, fr, nl), so the vectors are
built with four stemmers plus ``simple``.

Each variant is one ``GET`` through Django's test ``Client`` (middleware, session, view, queries,
template), as an agent of the three largest tenants (``DESK_AGENT_EMAIL``) and as an administrator
who sees all 50 (``DESK_ADMIN_EMAIL``):

- ``rare``: a ticket number as a word (in the subject and first entry of one ticket per tenant);
- ``none``: a word no document has;
- ``common``: "question" (every ticket's first entry), ``invoice`` (one ticket in eight), and
  ``common_open`` (with the status filter "open");
- ``phrase``: ``"kind regards"``;
- ``page_2``: the second page of ``common`` (keyset ``before=``);
- ``reference``: a ticket reference (answers with a redirect to the ticket);
- ``email``: an email address of a customer (the identity lookup).

Reported per variant: p50/p95 of the request, the database's share, the query count (``constant``:
equal to that of ``common`` — a search is a fixed number of queries whatever it finds), the results
shown, and the plan of the id query (EXPLAIN ANALYZE) with its execution time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from django.http import HttpResponse
from django.test import Client

from bench.desk_data import DESK_ADMIN_EMAIL, DESK_AGENT_EMAIL, DeskData, ensure_desk_data
from bench.desk_pages import measure_requests
from bench.harness import Context, Result, benchmark, log, machine_load, page_settings
from bench.queue import explain
from care.accounts.models import User
from care.contacts.models import Identity
from care.tickets.models import Ticket
from care.tickets.search import ticket_search

TARGET_P95_MS = 100.0
PATH = "/desk/search/"


@dataclass(frozen=True)
class Variant:
    name: str
    email: str
    params: dict[str, Any]
    status: int = 200
    explain: bool = False


def _variants(data: DeskData) -> list[Variant]:
    # A number that is the subject of one ticket in each of the three largest tenants (at least).
    number = str(max(1, min(99_999, data.tenants[2].tickets // 2)))
    second = data.tenants[1]
    identity = _customer_email(data.tenants[0].id)
    found: list[Variant] = []
    for who, email in (("agent3", DESK_AGENT_EMAIL), ("admin", DESK_ADMIN_EMAIL)):
        user = User.objects.get(email=email)
        page_1 = ticket_search(user=user, query="question")
        found += [
            Variant(f"desk_search.{who}.rare", email, {"q": number}, explain=True),
            Variant(f"desk_search.{who}.none", email, {"q": "zebra"}, explain=True),
            Variant(f"desk_search.{who}.common", email, {"q": "question"}, explain=True),
            Variant(f"desk_search.{who}.invoice", email, {"q": "invoice"}, explain=True),
            Variant(
                f"desk_search.{who}.common_open", email, {"q": "question", "status": "open"}, explain=True
            ),
            Variant(f"desk_search.{who}.phrase", email, {"q": '"kind regards"'}),
            Variant(
                f"desk_search.{who}.page_2",
                email,
                {"q": "question", "before": page_1.next_before or ""},
            ),
            Variant(f"desk_search.{who}.reference", email, {"q": f"{second.code}-{number}"}, status=302),
        ]
        found.append(Variant(f"desk_search.{who}.email", email, {"q": identity.value}))
    return found


def _customer_email(tenant_id: int) -> Identity:
    """An email identity of a customer of the big tenant (with tickets): the datasets have none there."""
    customer_id = (
        Ticket.objects.filter(tenant_id=tenant_id).order_by("pk").values_list("customer_id", flat=True)[0]
    )
    identity, _ = Identity.objects.get_or_create(
        tenant_id=tenant_id,
        kind="email",
        platform="",
        value="customer@search-bench.test",
        defaults={"customer_id": customer_id},
    )
    return identity


@benchmark(
    "desk_search", description="Desk search page: full text, reference and email at the dataset's size"
)
def desk_search(ctx: Context) -> Iterator[Result]:
    data = ensure_desk_data(ctx.dataset)
    clients: dict[str, Client] = {}
    common_queries: dict[str, int] = {}
    with page_settings():
        for variant in _variants(data):
            if variant.email not in clients:
                clients[variant.email] = Client()
                clients[variant.email].force_login(User.objects.get(email=variant.email))
            client = clients[variant.email]

            def call(client: Client = client, variant: Variant = variant) -> HttpResponse:
                # The stubs type the test client's response as its own class, not HttpResponse.
                response = cast(HttpResponse, client.get(PATH, variant.params))
                if response.status_code != variant.status:
                    raise RuntimeError(f"{variant.name}: HTTP {response.status_code} for {variant.params}")
                return response

            log(f"{variant.name}: {ctx.options.warmup} warm-up + {ctx.options.iterations} timed iterations")
            measured = measure_requests(call, iterations=ctx.options.iterations, warmup=ctx.options.warmup)
            queries = measured.queries_per_iteration
            who = variant.name.split(".")[1]
            if variant.name.endswith(".common"):
                common_queries[who] = queries
            html = measured.last_value.content
            extra: dict[str, Any] = {
                **measured.query_fields(),
                "params": variant.params,
                "user": who,
                "returned": html.count(b'class="search-hit"'),
                "more": b'id="search-more"' in html,
                "target_p95_ms": TARGET_P95_MS,
            }
            # Full-text searches that find something: the same count as ``common`` (reference and
            # email take other paths; a search that finds nothing stops after the id query).
            if who in common_queries and extra["returned"] and not variant.name.endswith(".email"):
                extra["constant"] = common_queries[who] == queries
            ids_sql = next((sql for sql in measured.last_sql if sql.startswith("SELECT m.ticket_id")), None)
            if ids_sql is not None:
                plan = explain(
                    ids_sql, to_stderr=variant.explain and not ctx.options.quick, label=variant.name
                )
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
                    "quick": ctx.options.quick,
                    "load_1m": machine_load(),
                },
            )
