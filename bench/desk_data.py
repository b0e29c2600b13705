"""The desk's data on top of the shared dataset (``bench/datagen.py``): what the agents' pages read
besides the tickets themselves. Built once and reused, like the dataset it extends.

- 30 more tenants (``TD21`` … ``TD50``), so that an administrator's queue spans 50 clients as a
  provider's would: a long tail of small clients, 2 % of the dataset's size in all (20,000 tickets at
  1,000,000), their tickets in mixed languages (``de``, ``en``, ``fr``, ``es``, ``nl``). Their codes do
  not start with ``TN``: ``ensure_dataset`` counts only its own tenants' tickets.
- Timeline entries for every ticket: ``1 + id % 3`` interactions each (two on average, so about
  2,000,000 at full size): the first in the ticket's channel from the customer, then alternately an
  answer and an internal note. This is what the ticket page's timeline index has to find one
  ticket's entries among, and what search helpers index.
- Users: ``DESK_AGENT_EMAIL`` (an agent of three tenants: the two largest, 430,000 tickets at full
  size, and ``TD21``), ``DESK_SUPERVISOR_EMAIL`` (a supervisor authorised for all 50) and
  ``DESK_ADMIN_EMAIL`` (an administrator: sees every tenant without authorisations).
- Two show-case tickets in ``TD21`` (not in a ``TN`` tenant: ``ensure_dataset`` would see one
  ticket too many and rebuild), open and assigned to the desk agent: ``long`` with 200
  timeline entries (emails in and out, 40 % of them with one or two attachments, calls with their
  ``Call`` row: times and a recording link, social messages, internal notes) and 30 audit events
  (status, assignment, field changes); ``short`` the same mix with 20 entries and 3 events. The query
  count of the page must be the same for both.

Everything bulk is ``INSERT … SELECT`` (the interactions with the table's secondary indexes and
foreign keys dropped and rebuilt around the load, as ``datagen`` does for tickets); the show-case
tickets go through the ORM's ``bulk_create``. A marker row (``bench_desk_dataset``) ties what was
built to the base dataset's build time: a rebuilt base dataset (which truncates every table through
the tenants) means the desk data is built again; otherwise it is reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from bench.datagen import Dataset, TenantRows, _insert_customers, _insert_tickets, _without_secondary_indexes
from bench.harness import log
from care.accounts.models import Agent, Role, Team, TenantAuthorisation, User
from care.calls.models import Call, CallOutcome, CallStatus, Provider
from care.contacts.models import Identity
from care.tenants.models import Tenant
from care.tickets.models import Attachment, Direction, Interaction, Ticket, TicketCounter, TicketEvent

# Bump when the shape changes: the desk data is then built again (the base dataset is kept).
DESK_VERSION = 1
SEED = 0.1717
EXTRA_TENANTS = 30  # 20 in the base dataset + 30 = 50 tenants
EXTRA_SHARE = 0.02
EXTRA_LANGUAGES = ("de", "en", "fr", "es", "nl")
DESK_AGENT_EMAIL = "desk-agent@bench.care.test"
DESK_SUPERVISOR_EMAIL = "desk-supervisor@bench.care.test"
DESK_ADMIN_EMAIL = "desk-admin@bench.care.test"
DESK_AGENT_TENANTS = 3
LONG_ENTRIES = 200
SHORT_ENTRIES = 20

_MARKER_DDL = """
CREATE TABLE IF NOT EXISTS bench_desk_dataset (
    id smallint PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL,
    base_built_at timestamptz NOT NULL,
    info jsonb NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class DeskData:
    """What the desk benchmarks use; ``tenants`` are all 50, the base dataset's first."""

    tenants: tuple[TenantRows, ...]
    interactions: int
    long_ticket: str  # reference, e.g. TD21-668
    short_ticket: str
    long_entries: int
    short_entries: int
    build_seconds: float
    reused: bool = False

    @property
    def tickets(self) -> int:
        return sum(tenant.tickets for tenant in self.tenants)


def ensure_desk_data(dataset: Dataset) -> DeskData:
    """Reuse the desk data built for this base dataset and version; else (re)build it."""
    with connection.cursor() as cursor:
        cursor.execute(_MARKER_DDL)
        cursor.execute("SELECT built_at FROM bench_dataset WHERE id = 1")
        row = cursor.fetchone()
        if row is None:
            raise RuntimeError("The base dataset is not loaded: call bench.datagen.ensure_dataset first.")
        base_built_at = row[0]
        cursor.execute("SELECT version, base_built_at, info FROM bench_desk_dataset WHERE id = 1")
        marker = cursor.fetchone()
    if marker is not None and marker[0] == DESK_VERSION and marker[1] == base_built_at:
        info = marker[2] if isinstance(marker[2], dict) else json.loads(marker[2])
        data = _from_info(info, reused=True)
        code, number = data.long_ticket.rsplit("-", 1)
        if Ticket.objects.filter(tenant__code=code, number=int(number)).exists():
            log(f"reusing desk data ({len(data.tenants)} tenants, {data.interactions:,} interactions)")
            return data
    if marker is not None:
        log("desk data does not match the dataset: clearing it")
        clear()
    return _build(dataset, base_built_at)


def _from_info(info: dict[str, Any], *, reused: bool) -> DeskData:
    return DeskData(
        **{**info, "tenants": tuple(TenantRows(**tenant) for tenant in info["tenants"]), "reused": reused}
    )


def clear() -> None:
    """Delete what ``ensure_desk_data`` added; the base dataset's tickets stay as they were."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM bench_desk_dataset")
        extra = list(Tenant.objects.filter(code__startswith="TD").values_list("pk", flat=True))
        emails = [DESK_AGENT_EMAIL, DESK_SUPERVISOR_EMAIL, DESK_ADMIN_EMAIL]
        # TRUNCATE would be quicker but takes the base dataset's rows of these tables too.
        cursor.execute("DELETE FROM calls_call WHERE external_id LIKE 'bench-desk-%%'")
        # The base dataset's tickets have no interactions of their own: every one of the dataset's
        # tenants (TN…, TD…) is from here.
        cursor.execute(
            "DELETE FROM tickets_interaction i USING tenants_tenant n "
            "WHERE n.id = i.tenant_id AND (n.code LIKE 'TN%%' OR n.code LIKE 'TD%%')"
        )
        Ticket.objects.filter(tenant_id__in=extra).delete()
        TicketCounter.objects.filter(tenant_id__in=extra).delete()
        Identity.objects.filter(value__endswith="@desk-bench.test").delete()
        TenantAuthorisation.objects.filter(tenant_id__in=extra).delete()
        TenantAuthorisation.objects.filter(agent__user__email__in=emails).delete()
        Agent.objects.filter(user__email__in=emails).delete()
        User.objects.filter(email__in=emails).delete()
        cursor.execute("DELETE FROM contacts_customer WHERE tenant_id = ANY(%s)", [extra])
        Tenant.objects.filter(pk__in=extra).delete()


def _build(dataset: Dataset, base_built_at: dt.datetime) -> DeskData:
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT setseed(%s)", [SEED])
        team = Team.objects.get(name="Bench provider team")
        pool = list(
            Agent.objects.filter(team=team, user__email__startswith="agent")
            .order_by("pk")
            .values_list("pk", "user_id")
        )
        extra = _extra_tenants(cursor, dataset, team_id=team.pk, agent_ids=[pk for pk, _ in pool])
        tenants = (*dataset.tenants, *extra)
        users = _desk_users(tenants, showcase=extra[0])
        with _without_secondary_indexes(cursor, "tickets_interaction"):
            interactions = _interactions(cursor, [user_id for _, user_id in pool], [t.id for t in tenants])
        log(f"interactions: {interactions:,} rows after {time.monotonic() - started:.1f} s")
        agent = users[DESK_AGENT_EMAIL]
        long_ref = _showcase(extra[0], agent, entries=LONG_ENTRIES, events=30, seq=1)
        short_ref = _showcase(extra[0], agent, entries=SHORT_ENTRIES, events=3, seq=2)
        info: dict[str, Any] = {
            "tenants": [asdict(tenant) for tenant in tenants],
            "interactions": interactions + LONG_ENTRIES + SHORT_ENTRIES,
            "long_ticket": long_ref,
            "short_ticket": short_ref,
            "long_entries": LONG_ENTRIES,
            "short_entries": SHORT_ENTRIES,
            "build_seconds": 0.0,
        }
        cursor.execute(
            "INSERT INTO bench_desk_dataset (id, version, base_built_at, info) VALUES (1, %s, %s, %s)",
            [DESK_VERSION, base_built_at, json.dumps(info)],
        )
    with connection.cursor() as cursor:
        for table in ("tenants_tenant", "tickets_ticket", "tickets_interaction", "tickets_attachment"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    info["build_seconds"] = round(time.monotonic() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_desk_dataset SET info = %s WHERE id = 1", [json.dumps(info)])
    log(f"desk data ready after {info['build_seconds']} s")
    return _from_info(info, reused=False)


def _extra_tenants(cursor: Any, dataset: Dataset, *, team_id: int, agent_ids: list[int]) -> list[TenantRows]:
    each = max(1, round(dataset.tickets * EXTRA_SHARE / EXTRA_TENANTS))
    created = []
    for index in range(len(dataset.tenants) + 1, len(dataset.tenants) + EXTRA_TENANTS + 1):
        language = EXTRA_LANGUAGES[index % len(EXTRA_LANGUAGES)]
        tenant = Tenant(
            name=f"Desk client {index:02d}",
            slug=f"desk-client-{index:02d}",
            code=f"TD{index:02d}",
            time_zone="Europe/Berlin",
            default_language=language,
            supported_languages=sorted({language, "en", "de"}),
            holiday_country="DE",
        )
        tenant.full_clean()
        created.append(tenant)
    Tenant.objects.bulk_create(created)
    rows = [TenantRows(id=tenant.pk, code=tenant.code, tickets=each) for tenant in created]
    customers = _insert_customers(cursor, rows)
    _insert_tickets(cursor, rows, customers, agent_ids=agent_ids, team_id=team_id)
    # A long tail of small clients serves customers in several languages.
    cursor.execute(
        "UPDATE tickets_ticket SET language = (%s::text[])[1 + floor(random() * %s)::int] "
        "WHERE tenant_id = ANY(%s)",
        [list(EXTRA_LANGUAGES), len(EXTRA_LANGUAGES), [row.id for row in rows]],
    )
    TicketCounter.objects.bulk_create(
        TicketCounter(tenant_id=row.id, last_number=row.tickets) for row in rows
    )
    return rows


def _desk_users(tenants: tuple[TenantRows, ...], *, showcase: TenantRows) -> dict[str, Agent]:
    password = make_password(None)  # the benchmark logs in with force_login
    team = Team.objects.get(name="Bench provider team")
    roles = {
        DESK_AGENT_EMAIL: Role.AGENT,
        DESK_SUPERVISOR_EMAIL: Role.SUPERVISOR,
        DESK_ADMIN_EMAIL: Role.ADMIN,
    }
    agents = {}
    for email, role in roles.items():
        user = User.objects.create(email=email, full_name=email.split("@")[0], role=role, password=password)
        agents[email] = Agent.objects.create(user=user, team=team)
    TenantAuthorisation.objects.bulk_create(
        [
            *(
                TenantAuthorisation(agent=agents[DESK_AGENT_EMAIL], tenant_id=tenant.id)
                for tenant in (*tenants[: DESK_AGENT_TENANTS - 1], showcase)
            ),
            *(
                TenantAuthorisation(agent=agents[DESK_SUPERVISOR_EMAIL], tenant_id=tenant.id)
                for tenant in tenants
            ),
        ]
    )
    return agents


# Entry k (1-based) of a ticket with 1 + id % 3 entries: 1 the customer's message in the ticket's
# channel, 2 the agent's answer, 3 an internal note. Spread over the ticket's life, in order.
_INTERACTIONS_SQL = """
INSERT INTO tickets_interaction (
    created_at, updated_at, tenant_id, ticket_id, channel, direction, author_identity_id,
    author_user_id, body_text, body_html, full_text, external_id, occurred_at{vector_column}
)
SELECT at, at, tenant_id, ticket_id, channel, direction, NULL, author_user_id, body, '', '', '',
    at{vector_value}
FROM (
    SELECT t.tenant_id, t.id AS ticket_id, t.channel, t.language,
        CASE k WHEN 1 THEN 'inbound' WHEN 2 THEN 'outbound' ELSE 'note' END AS direction,
        CASE WHEN k > 1 THEN (%(user_ids)s::bigint[])[1 + (t.id * 7 + k) %% %(user_count)s] END
            AS author_user_id,
        CASE k WHEN 1 THEN 'Hello, about ' || t.subject || ': I have a question about my account '
                           || 'and would like to know what happens next. Kind regards'
               WHEN 2 THEN 'Thank you for your message. We have looked into it and will get back '
                           || 'to you shortly.'
               ELSE 'Checked the customer''s contract; waiting for billing to confirm.' END AS body,
        t.created_at + (k - 1) * (t.status_changed_at - t.created_at) / 3 AS at
    FROM tickets_ticket t
    CROSS JOIN LATERAL generate_series(1, 1 + (t.id %% 3)::int) AS k
    WHERE t.tenant_id = ANY(%(tenant_ids)s::bigint[])
) AS rows
"""


def _interactions(cursor: Any, user_ids: list[int], tenant_ids: list[int]) -> int:
    """Insert every ticket's entries. Where the search's ``search_vector`` column exists (filled per row
    by a trigger that looks the ticket's language up), the vector is computed in the same statement
    from the joined ticket and the table's user triggers are off meanwhile: eight times faster, same
    values."""
    started = time.monotonic()
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'tickets_interaction' "
        "AND column_name = 'search_vector') AND to_regproc('care_search_config') IS NOT NULL"
    )
    (vectors,) = cursor.fetchone()
    sql = _INTERACTIONS_SQL.format(
        vector_column=", search_vector" if vectors else "",
        vector_value=", to_tsvector(care_search_config(language), body)" if vectors else "",
    )
    if vectors:
        cursor.execute("ALTER TABLE tickets_interaction DISABLE TRIGGER USER")
    cursor.execute(sql, {"user_ids": user_ids, "user_count": len(user_ids), "tenant_ids": tenant_ids})
    count = cursor.rowcount
    if vectors:
        cursor.execute("ALTER TABLE tickets_interaction ENABLE TRIGGER USER")
    log(f"interactions: {count:,} rows inserted in {time.monotonic() - started:.1f} s")
    return int(count)


def _showcase(tenant: TenantRows, agent: Agent, *, entries: int, events: int, seq: int) -> str:
    """An open ticket with ``entries`` timeline entries of every kind; returns its reference."""
    counter = TicketCounter.objects.select_for_update().get(tenant_id=tenant.id)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    now = timezone.now()
    start = now - dt.timedelta(days=20)
    customer_id = (
        Ticket.objects.filter(tenant_id=tenant.id).order_by("pk").values_list("customer_id", flat=True)[0]
    )
    identity = Identity.objects.create(
        tenant_id=tenant.id,
        customer_id=customer_id,
        kind="email",
        value=f"showcase{seq}@desk-bench.test",
        display_name="Show Case",
    )
    ticket = Ticket.objects.create(
        tenant_id=tenant.id,
        number=counter.last_number,
        customer_id=customer_id,
        channel="email",
        subject=f"Desk bench: a long conversation ({entries} entries)",
        language="de",
        status="open",
        priority=3,
        assignee=agent,
        team_id=agent.team_id,
        sla_due_at=now + dt.timedelta(hours=2),
        created_at=start,
        status_changed_at=start,
        first_response_at=start + dt.timedelta(minutes=30),
    )
    step = (now - start) / (entries + 1)
    interactions = []
    for index in range(entries):
        kind = (
            "email_in",
            "email_out",
            "note",
            "call",
            "email_in",
            "social",
            "email_out",
            "call",
            "note",
            "email_in",
        )[index % 10]
        channel = {"call": "phone", "social": "social", "note": "email"}.get(kind, "email")
        direction = (
            Direction.INBOUND
            if kind in ("email_in", "call", "social")
            else Direction.NOTE
            if kind == "note"
            else Direction.OUTBOUND
        )
        interactions.append(
            Interaction(
                tenant_id=tenant.id,
                ticket=ticket,
                channel=channel,
                direction=direction,
                author_identity=identity if direction == Direction.INBOUND else None,
                author_user=agent.user if direction != Direction.INBOUND else None,
                body_text=f"Entry {index + 1}: "
                + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4,
                body_html="" if kind != "email_in" else f"<p>Entry {index + 1}</p>",
                full_text="",
                external_id=f"bench-desk-{seq}-{index}",
                occurred_at=start + step * (index + 1),
            )
        )
    Interaction.objects.bulk_create(interactions)
    attachments, calls = [], []
    for index, interaction in enumerate(interactions):
        if interaction.channel == "email" and interaction.direction != Direction.NOTE and index % 5 < 2:
            for part in range(1 + index % 2):
                digest = hashlib.sha256(f"{seq}-{index}-{part}".encode()).hexdigest()
                attachments.append(
                    Attachment(
                        tenant_id=tenant.id,
                        interaction=interaction,
                        file=f"attachments/{tenant.id}/{digest[:2]}/{digest}",
                        filename=f"document-{index}-{part}.pdf",
                        content_type="application/pdf",
                        size=20_000 + index * 1000,
                        sha256=digest,
                    )
                )
        if interaction.channel == "phone":
            offered = interaction.occurred_at
            calls.append(
                Call(
                    tenant_id=tenant.id,
                    direction="inbound",
                    provider=Provider.GENERIC,
                    external_id=f"bench-desk-{seq}-{index}",
                    caller="+4930123456",
                    dialled="+4930999000",
                    customer_id=customer_id,
                    status=CallStatus.ENDED,
                    outcome=CallOutcome.ANSWERED,
                    offered_at=offered,
                    queued_at=offered,
                    answered_at=offered + dt.timedelta(seconds=40),
                    ended_at=offered + dt.timedelta(seconds=400),
                    queue_wait_seconds=40,
                    talk_seconds=360,
                    agent=agent,
                    recording_url=f"https://recordings.example.test/{seq}/{index}.mp3",
                    ticket=ticket,
                    interaction=interaction,
                )
            )
    Attachment.objects.bulk_create(attachments)
    Call.objects.bulk_create(calls)
    kinds = (TicketEvent.Kind.STATUS, TicketEvent.Kind.ASSIGNED, TicketEvent.Kind.UPDATED)
    TicketEvent.objects.bulk_create(
        TicketEvent(
            tenant_id=tenant.id,
            ticket=ticket,
            actor=agent.user,
            kind=kinds[index % 3],
            changes={"status": ["pending", "open"]}
            if index % 3 == 0
            else {"assignee": [None, agent.pk]}
            if index % 3 == 1
            else {"priority": [2, 3]},
        )
        for index in range(events)
    )
    return ticket.reference
