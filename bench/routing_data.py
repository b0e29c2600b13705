"""The data of the ``routing`` benchmark: built at the start of the run, reset before each variant,
deleted at the end (so the shared dataset's ticket count, which ``ensure_dataset`` checks, is the same
after the run as before).

- ``tenants`` tenants (codes ``RT01``…), each serving its own language, English and a third one of
  the 12 languages, required level B2, with one queue: step 1 at once in the customer's language,
  step 2 after 120 s in English (so items that waited long have two steps to try);
- ``agents`` agents in 10 provider teams, all online, each authorised for 3 tenants (one "home"
  tenant whose language they speak natively), speaking English (B2 to native) and a third language
  (B1 to native: B1 is below the tenants' level, a rejection reason). Every agent takes email
  (capacity 2 to 4), half of them calls (1), 40 % social messages (2);
- ``items`` tickets, each with its ``QueuedItem``: 50 % email, 30 % phone, 20 % social; 70 % in
  the tenant's language, 20 % English, 10 % its third language; enqueued in the last 15 minutes;
- two scale tenants, ``RTSMALL`` (10 % of the agents authorised) and ``RTLARGE`` (all of them),
  whose items are made by ``scale_items`` when the scaling variants run.

Agents, tenants and tickets are ``bulk_create``d; the queued items are one ``INSERT … SELECT`` from
the tickets (``reset``), as ``routing_enqueue`` would have made them.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from care.accounts.models import (
    Agent,
    AgentChannel,
    AgentLanguage,
    Presence,
    Role,
    Team,
    TenantAuthorisation,
    User,
)
from care.contacts.models import Customer
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.routing.models import QueuedItem, RoutingQueue, RoutingStep
from care.tenants.models import Tenant
from care.tickets.models import Ticket, TicketCounter
from care.tickets.status import Status


@dataclass(frozen=True)
class Shape:
    agents: int
    tenants: int
    items: int
    decisions: int  # route_item calls timed (a sample of the items)
    pulls: int  # route_for_agent calls timed
    scale_decisions: int  # per kind and per scale tenant


FULL = Shape(agents=1_000, tenants=50, items=10_000, decisions=1_000, pulls=200, scale_decisions=30)
QUICK = Shape(agents=100, tenants=10, items=1_000, decisions=80, pulls=20, scale_decisions=8)
LANGUAGES = ("de", "en", "fr", "es", "it", "nl", "pl", "pt", "sv", "da", "cs", "tr")
UNSPOKEN = "ja"  # nobody speaks it: items in it always wait
TEAMS = 10
TENANTS_PER_AGENT = 3
SEED = 20261127
CODE_PREFIX, SCALE_CODES = "RT", ("RTSMALL", "RTLARGE")
EMAIL_DOMAIN = "routing.bench.care.test"


@dataclass(frozen=True)
class Built:
    tenant_ids: list[int]  # the main tenants
    scale_tenant_ids: list[int]  # small, large
    agent_ids: list[int]
    capacities: dict[tuple[int, str], int]  # (agent, channel) -> capacity
    ticket_ids: list[int]
    seconds: float


# --- building, resetting, clearing --------------------------------------------------------------


# --- the data --------------------------------------------------------------------------------------


def build(shape: Shape) -> Built:
    """Tenants with one queue each, agents, and tickets (the queued items come with ``reset``)."""
    started = time.monotonic()
    rng = random.Random(SEED)
    now = timezone.now()
    with transaction.atomic():
        tenants = Tenant.objects.bulk_create(_tenant(index) for index in range(1, shape.tenants + 1))
        scale = Tenant.objects.bulk_create(
            Tenant(
                name=f"Routing bench {code.lower()}",
                slug=f"routing-bench-{code.lower()}",
                code=code,
                default_language="en",
                supported_languages=["en", UNSPOKEN],
            )
            for code in SCALE_CODES
        )
        for tenant in [*tenants, scale[0], scale[1]]:
            queue = RoutingQueue.objects.create(tenant=tenant, name="First line")
            RoutingStep.objects.bulk_create(
                [
                    RoutingStep(queue=queue, position=0, after_seconds=0),
                    RoutingStep(queue=queue, position=1, after_seconds=120, language="en"),
                ]
            )
        agent_ids, capacities = _agents(shape, tenants, rng, now)
        authorise_for_scaling(scale, agent_ids)
        ticket_ids = _tickets(shape, tenants, rng, now)
    with connection.cursor() as cursor:
        for table in (
            "tickets_ticket",
            "accounts_agent",
            "accounts_tenantauthorisation",
            "routing_queueditem",
        ):
            cursor.execute(f"ANALYZE {table}")
    return Built(
        tenant_ids=[t.pk for t in tenants],
        scale_tenant_ids=[t.pk for t in scale],
        agent_ids=agent_ids,
        capacities=capacities,
        ticket_ids=ticket_ids,
        seconds=time.monotonic() - started,
    )


def _tenant(index: int) -> Tenant:
    home = LANGUAGES[index % len(LANGUAGES)]
    others = [code for code in LANGUAGES if code not in {home, "en"}]
    third = others[(index * 5) % len(others)]
    return Tenant(
        name=f"Routing bench {index:02d}",
        slug=f"routing-bench-{index:02d}",
        code=f"{CODE_PREFIX}{index:02d}",
        default_language=home,
        supported_languages=sorted({home, "en", third}),
        required_proficiency=Proficiency.B2,
    )


def _agents(
    shape: Shape, tenants: Sequence[Tenant], rng: random.Random, now: dt.datetime
) -> tuple[list[int], dict[tuple[int, str], int]]:
    teams = Team.objects.bulk_create(
        Team(name=f"Routing bench team {n}", kind=Team.Kind.PROVIDER) for n in range(1, TEAMS + 1)
    )
    password = make_password(None)
    users = User.objects.bulk_create(
        User(
            email=f"agent{n:04d}@{EMAIL_DOMAIN}",
            full_name=f"Bench agent {n}",
            role=Role.AGENT,
            password=password,
        )
        for n in range(shape.agents)
    )
    agents = Agent.objects.bulk_create(
        Agent(
            user=user,
            team=teams[n % TEAMS],
            presence=Presence.ONLINE,
            presence_changed_at=now - dt.timedelta(seconds=rng.uniform(0, 3600)),
        )
        for n, user in enumerate(users)
    )
    languages, channels, authorisations = [], [], []
    capacities: dict[tuple[int, str], int] = {}
    for n, agent in enumerate(agents):
        home = tenants[n % len(tenants)]
        others = rng.sample([t for t in tenants if t.pk != home.pk], TENANTS_PER_AGENT - 1)
        authorisations += [TenantAuthorisation(agent=agent, tenant=t) for t in (home, *others)]
        spoken = {home.default_language: Proficiency.NATIVE}
        spoken.setdefault("en", rng.randint(Proficiency.B2, Proficiency.NATIVE))
        third = rng.choice([code for code in LANGUAGES if code not in spoken])
        spoken[third] = rng.randint(Proficiency.B1, Proficiency.NATIVE)
        languages += [AgentLanguage(agent=agent, language=code, proficiency=p) for code, p in spoken.items()]
        works = {Channel.EMAIL: rng.randint(2, 4)}
        if n % 2 == 0:
            works[Channel.PHONE] = 1
        if rng.random() < 0.4:
            works[Channel.SOCIAL] = 2
        channels += [AgentChannel(agent=agent, channel=c, capacity=cap) for c, cap in works.items()]
        capacities.update({(agent.pk, str(c)): cap for c, cap in works.items()})
    TenantAuthorisation.objects.bulk_create(authorisations)
    AgentLanguage.objects.bulk_create(languages)
    AgentChannel.objects.bulk_create(channels)
    return [a.pk for a in agents], capacities


def authorise_for_scaling(scale: Sequence[Tenant], agent_ids: Sequence[int]) -> None:
    """The small scale tenant gets 10 % of the agents, the large one all of them."""
    small, large = scale
    TenantAuthorisation.objects.bulk_create(
        [TenantAuthorisation(agent_id=a, tenant=small) for a in agent_ids[: max(1, len(agent_ids) // 10)]]
        + [TenantAuthorisation(agent_id=a, tenant=large) for a in agent_ids]
    )


def _tickets(shape: Shape, tenants: Sequence[Tenant], rng: random.Random, now: dt.datetime) -> list[int]:
    customers = Customer.objects.bulk_create(
        Customer(tenant=t, display_name=f"{t.code} customer {n}") for t in tenants for n in range(5)
    )
    by_tenant: dict[int, list[Customer]] = {}
    for customer in customers:
        by_tenant.setdefault(customer.tenant_id, []).append(customer)
    tickets, numbers = [], Counter[int]()
    for n in range(shape.items):
        tenant = tenants[n % len(tenants)]
        numbers[tenant.pk] += 1
        draw = rng.random()
        language = (
            tenant.default_language
            if draw < 0.7
            else "en"
            if draw < 0.9
            else next(c for c in tenant.supported_languages if c not in {tenant.default_language, "en"})
        )
        channel = rng.choices((Channel.EMAIL, Channel.PHONE, Channel.SOCIAL), (5, 3, 2))[0]
        created = now - dt.timedelta(seconds=rng.uniform(0, 900))
        tickets.append(
            Ticket(
                tenant=tenant,
                number=numbers[tenant.pk],
                customer=rng.choice(by_tenant[tenant.pk]),
                channel=channel,
                subject=f"Routing bench {n}",
                language=language,
                priority=rng.choices((1, 2, 3, 4), (20, 60, 15, 5))[0],
                sla_due_at=created + dt.timedelta(hours=rng.uniform(0.5, 48))
                if rng.random() < 0.85
                else None,
                status=Status.NEW,
                status_changed_at=created,
                created_at=created,
                updated_at=created,
            )
        )
    created_tickets = Ticket.objects.bulk_create(tickets, batch_size=2000)
    with connection.cursor() as cursor:  # created_at is auto_now_add: bulk_create wrote "now"
        cursor.execute(
            "UPDATE tickets_ticket SET created_at = status_changed_at, updated_at = status_changed_at "
            "WHERE tenant_id = ANY(%s)",
            [[t.pk for t in tenants]],
        )
    TicketCounter.objects.bulk_create(TicketCounter(tenant_id=t, last_number=n) for t, n in numbers.items())
    return [t.pk for t in created_tickets]


_QUEUE_SQL = """
INSERT INTO routing_queueditem (
    created_at, updated_at, tenant_id, ticket_id, queue_id, state, channel, language, priority,
    sla_due_at, enqueued_at, queue_entered_at, offered_to_id, offer_expires_at, declined_by,
    explained_steps, next_attempt_at, attempts, last_routed_at
)
SELECT t.created_at, t.created_at, t.tenant_id, t.id, q.id, 'waiting', t.channel, t.language, t.priority,
    t.sla_due_at, t.created_at, t.created_at, NULL, NULL, '{}', '', t.created_at, 0, NULL
FROM tickets_ticket t JOIN routing_routingqueue q ON q.tenant_id = t.tenant_id
WHERE t.tenant_id = ANY(%s)
"""


def reset(built: Built) -> None:
    """Routing as before any decision: tickets new and unassigned, each with one waiting item, no
    decisions or events, agents never routed; the scale tenants' tickets are deleted."""
    everything = [*built.tenant_ids, *built.scale_tenant_ids]
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "sla_slaevent",
            "sla_slaclock",
            "routing_routingdecision",
            "routing_queueditem",
            "tickets_ticketevent",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [everything])
        cursor.execute("DELETE FROM tickets_ticket WHERE tenant_id = ANY(%s)", [built.scale_tenant_ids])
        cursor.execute(
            "UPDATE tickets_ticket SET assignee_id = NULL, status = 'new', status_changed_at = created_at, "
            "updated_at = created_at "
            "WHERE tenant_id = ANY(%s) AND (assignee_id IS NOT NULL OR status <> 'new')",
            [built.tenant_ids],
        )
        cursor.execute(_QUEUE_SQL, [built.tenant_ids])
        cursor.execute(
            "UPDATE accounts_agent SET last_routed_at = NULL, last_released_at = NULL WHERE id = ANY(%s)",
            [built.agent_ids],
        )
    with connection.cursor() as cursor:
        for table in ("routing_queueditem", "tickets_ticket", "routing_routingdecision"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def scale_items(tenant_id: int, *, language: str, count: int) -> list[int]:
    """``count`` new tickets of a scale tenant, queued; returns the items' ids."""
    tenant = Tenant.objects.get(pk=tenant_id)
    customer, _created = Customer.objects.get_or_create(tenant=tenant, display_name="Scale customer")
    first = Ticket.objects.filter(tenant=tenant).count() + 1
    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            tenant=tenant,
            number=first + n,
            customer=customer,
            channel=Channel.EMAIL,
            subject=f"Scale {n}",
            language=language,
            status=Status.NEW,
        )
        for n in range(count)
    )
    queue = RoutingQueue.objects.get(tenant=tenant)
    items = QueuedItem.objects.bulk_create(
        QueuedItem(
            tenant=tenant,
            ticket=ticket,
            queue=queue,
            channel=ticket.channel,
            language=language,
            priority=ticket.priority,
            enqueued_at=now,
            queue_entered_at=now,
            next_attempt_at=now,
        )
        for ticket in tickets
    )
    return [item.pk for item in items]


def clear() -> None:
    """Delete every row of this benchmark (its tenants, their rows, its agents, users and teams)."""
    tenant_ids = list(Tenant.objects.filter(code__startswith=CODE_PREFIX).values_list("pk", flat=True))
    agent_ids = list(
        Agent.objects.filter(user__email__endswith=f"@{EMAIL_DOMAIN}").values_list("pk", flat=True)
    )
    if not tenant_ids and not agent_ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "sla_slaevent",
            "sla_slaclock",
            "routing_routingdecision",
            "routing_queueditem",
            "tickets_ticketevent",
            "tickets_ticket",
            "tickets_ticketcounter",
            "contacts_customer",
            "accounts_tenantauthorisation",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])
        cursor.execute(
            "DELETE FROM routing_routingstep WHERE queue_id IN "
            "(SELECT id FROM routing_routingqueue WHERE tenant_id = ANY(%s))",
            [tenant_ids],
        )
        cursor.execute("DELETE FROM routing_routingqueue WHERE tenant_id = ANY(%s)", [tenant_ids])
        for table in ("accounts_agentlanguage", "accounts_agentchannel", "accounts_tenantauthorisation"):
            cursor.execute(f"DELETE FROM {table} WHERE agent_id = ANY(%s)", [agent_ids])
        cursor.execute("DELETE FROM accounts_agent WHERE id = ANY(%s)", [agent_ids])
        cursor.execute("DELETE FROM accounts_user WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"])
        cursor.execute("DELETE FROM accounts_team WHERE name LIKE 'Routing bench team %%'")
        cursor.execute("DELETE FROM tenants_tenant WHERE id = ANY(%s)", [tenant_ids])
