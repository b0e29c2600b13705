"""Building the demo world through the services; see the package docstring."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from care.accounts.models import Agent, Role, Skill, Team, User
from care.accounts.services import (
    agent_authorise,
    agent_set_channel,
    agent_set_language,
    agent_set_presence,
)
from care.calls.models import Call, PhoneLine
from care.connectors.models import Mailbox, SocialAccount
from care.contacts.identities import IdentityKind, SocialPlatform, normalise_phone
from care.contacts.models import Customer, Identity
from care.contacts.services import customer_get_or_create_by_identity, identity_add
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.demo.data import (
    AGENTS,
    DEFAULT_TEAM,
    DEMO_AGENT_PASSWORD,
    DEMO_PASSWORDS,
    FIRST_NAMES,
    GROUP,
    ISSUES,
    LAST_NAMES,
    MAIL_DOMAINS,
    NOTES,
    PHONE_EXTENSIONS,
    ROUTING,
    SEED,
    SUPERVISORS_GROUP,
    TEAMS,
    TENANTS,
    TEXTS,
    URGENT_TAGS,
    AgentSpec,
    QueueSpec,
    TenantSpec,
)
from care.demo.desk import ensure_macros
from care.demo.phone import ensure_phone, replay_call_day
from care.demo.service_levels import ensure_service_levels, replay_service_levels
from care.demo.social import ensure_social
from care.macros.models import Macro
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.sla.models import SlaClock, SlaEvent, SlaPolicy
from care.tenants.models import Guideline, ServiceHours, Tenant, TenantGroup
from care.tickets.models import Direction, Interaction, Priority, Ticket, TicketEvent
from care.tickets.services import interaction_add, ticket_assign, ticket_change_status, ticket_create
from care.tickets.status import ACTIONABLE, Status

# How tickets that ended in each status got there, step by step. "in"/"out"/"note" add an
# interaction (the part after the colon names its text), "assign" assigns, "status" changes status.
_SOLVED = (
    ("in:issue", "assign", "out:solve", "status:solved"),
    ("in:issue", "assign", "note", "out:solve", "status:solved"),
    (
        "in:issue",
        "assign",
        "out:ask",
        "status:pending",
        "in:answer",
        "status:open",
        "out:solve",
        "status:solved",
    ),
)
_PLOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    Status.NEW: (("in:issue",), ("in:issue",), ("in:issue", "in:nudge")),
    Status.OPEN: (
        ("in:issue", "assign"),
        ("in:issue", "assign", "note"),
        ("in:issue", "assign", "out:ack"),
        ("in:issue", "in:nudge", "assign", "out:ack"),
    ),
    Status.PENDING: (
        ("in:issue", "assign", "out:ask", "status:pending"),
        ("in:issue", "assign", "note", "out:ask", "status:pending"),
    ),
    Status.ON_HOLD: (("in:issue", "assign", "note", "out:hold", "status:on_hold"),),
    Status.SOLVED: _SOLVED,
    Status.CLOSED: tuple((*plot, "status:closed") for plot in _SOLVED),
}
# Minutes after the previous step, drawn uniformly (and always cut short to stay before now).
_GAPS = {"in": (60, 1440), "assign": (2, 90), "note": (5, 60), "out": (10, 240), "status": (1, 5)}
_CLOSING_GAP = (2 * 1440, 5 * 1440)
_DIRECTIONS = {"in": Direction.INBOUND, "out": Direction.OUTBOUND, "note": Direction.NOTE}
_IDENTITY_KIND = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.PHONE: IdentityKind.PHONE,
    Channel.SOCIAL: IdentityKind.SOCIAL,
}


@dataclasses.dataclass(frozen=True)
class Persona:
    """A customer of one tenant, with the addresses they reach it by."""

    name: str
    language: str
    email: str
    phone: str  # E.164, or "" when we have no number
    social: tuple[str, str] | None  # platform, handle


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str  # "in", "out", "note", "assign" or "status"
    at: dt.datetime
    text: str = ""  # the interaction's body, or the new status


@dataclasses.dataclass(frozen=True)
class TicketPlan:
    index: int  # 1-based position among the tenant's demo tickets; names its interactions' external ids
    persona: int
    channel: str
    language: str
    subject: str
    tags: tuple[str, ...]
    priority: int
    assignee: str  # the agent's email, "" when unassigned
    created_at: dt.datetime
    actions: tuple[Action, ...]


@dataclasses.dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    tickets_created: int
    tickets_found: int


@dataclasses.dataclass(frozen=True)
class _TenantWork:
    code: str
    tenant: Tenant
    agents: dict[str, Agent]
    default_team: Team
    customers: list[tuple[Customer, dict[str, Identity]]]  # per persona: customer, identity per channel


def external_id(code: str, index: int, position: int) -> str:
    """The external id of a demo interaction: what makes a second run find instead of create."""
    return f"demo-{code}-{index}-{position}"


@transaction.atomic
def seed_demo(*, now: dt.datetime | None = None, calls: bool = False, social: bool = False) -> Summary:
    """Build the demo world, or complete it; rows that exist are found by natural key and kept.

    The fixed logins get their published passwords back on every run. With ``calls``, yesterday's
    phone calls (``care.demo.calls``) are replayed too: they add tickets of their own; with ``social``,
    this morning's WhatsApp and Messenger conversations (``care.demo.social``).
    """
    now = now or timezone.now()
    tenants = _ensure_tenants()
    agents, teams = _ensure_people(tenants)
    ensure_macros(tenants)
    lines = ensure_phone(tenants)
    _ensure_supervisors_group([agents["supervisor@care.example"].user])
    _ensure_routing(tenants, teams)  # before the tickets: creating one queues it in its matching queue
    created: list[Ticket] = []
    found = 0
    for spec in TENANTS:
        made, existing = _ensure_tickets(spec, tenant=tenants[spec.code], agents=agents, teams=teams, now=now)
        created += made
        found += existing
    # After the tickets: their clocks are built from their back-dated history by the replay, so on a
    # first run the services need not build clocks at creation that would be thrown away.
    ensure_service_levels(tenants, now)
    replay_service_levels(created, now)
    if calls:
        replay_call_day(lines, now)
    if social:
        ensure_social(tenants, now)
    return Summary(counts=demo_counts(), tickets_created=len(created), tickets_found=found)


@transaction.atomic
def seed_demo_calls(*, now: dt.datetime | None = None) -> int:
    """Only the phone part: the demo tenants and people (found or made), their lines, codes and
    targets, and yesterday's calls replayed. Returns how many events were new. Idempotent."""
    now = now or timezone.now()
    tenants = _ensure_tenants()
    _ensure_people(tenants)
    return replay_call_day(ensure_phone(tenants), now)


@transaction.atomic
def seed_demo_social(*, now: dt.datetime | None = None) -> dict[str, SocialAccount]:
    """Only the social part: the demo tenants and people (found or made), the social accounts and
    this morning's messages. Idempotent."""
    now = now or timezone.now()
    tenants = _ensure_tenants()
    _ensure_people(tenants)
    return ensure_social(tenants, now)


def demo_counts() -> dict[str, int]:
    """Rows per model, for the command's summary (and the tests of idempotency)."""
    models: dict[str, Any] = {
        "tenants": Tenant,
        "tenant groups": TenantGroup,
        "teams": Team,
        "users": User,
        "agents": Agent,
        "customers": Customer,
        "identities": Identity,
        "tickets": Ticket,
        "interactions": Interaction,
        "ticket events": TicketEvent,
        "mailboxes": Mailbox,
        "routing queues": RoutingQueue,
        "routing steps": RoutingStep,
        "SLA policies": SlaPolicy,
        "SLA clocks": SlaClock,
        "SLA events": SlaEvent,
        "phone lines": PhoneLine,
        "calls": Call,
        "social accounts": SocialAccount,
        "macros": Macro,
    }
    return {label: int(model.objects.count()) for label, model in models.items()}


# --- Tenants, people, permissions ----------------------------------------------------------------


def _ensure_tenants() -> dict[str, Tenant]:
    slug, name, description = GROUP
    group, _created = TenantGroup.objects.update_or_create(
        slug=slug, defaults={"name": name, "description": description}
    )
    return {spec.code: _ensure_tenant(spec, group if spec.in_group else None) for spec in TENANTS}


def _ensure_tenant(spec: TenantSpec, group: TenantGroup | None) -> Tenant:
    country, subdivision = spec.holidays
    tenant: Tenant
    tenant, _created = Tenant.objects.update_or_create(
        code=spec.code,
        defaults={
            "name": spec.name,
            "slug": spec.slug,
            "group": group,
            "time_zone": spec.time_zone,
            "default_language": spec.languages[0],
            "supported_languages": list(spec.languages),
            "holiday_country": country,
            "holiday_subdivision": subdivision,
            "colour": spec.colour,
            "is_active": True,
        },
    )
    tenant.full_clean()  # time zone, languages and holiday region are checked here, not by the database
    for weekday, opens, closes in spec.hours:
        ServiceHours.objects.update_or_create(
            tenant=tenant,
            weekday=weekday,
            opens_at=dt.time.fromisoformat(opens),
            defaults={"closes_at": dt.time.fromisoformat(closes)},
        )
    for position, (kind, title, body) in enumerate(spec.guidelines):
        Guideline.objects.update_or_create(
            tenant=tenant,
            title=title,
            defaults={"kind": kind, "body": body, "language": spec.languages[0], "position": position},
        )
    for code, name in spec.skills:
        Skill.objects.update_or_create(tenant=tenant, code=code, defaults={"name": name})
    _ensure_mailbox(spec, tenant)
    return tenant


def _ensure_mailbox(spec: TenantSpec, tenant: Tenant) -> Mailbox:
    """The tenant's support address, reachable by HTTP with a fixed token listed in the README."""
    mailbox, _created = Mailbox.objects.update_or_create(
        address=demo_mailbox_address(spec),
        defaults={
            "tenant": tenant,
            "name": f"{spec.name} support",
            "delivery": Mailbox.Delivery.PUSH,
            "inbound_token": demo_mailbox_token(spec),
            "default_language": spec.languages[0],
            "sender_name": spec.name,
            "signature": f"{spec.name}\nsupport@{spec.slug}.example",
            "auto_acknowledge": True,
            "is_active": True,
        },
    )
    return mailbox


def demo_mailbox_address(spec: TenantSpec) -> str:
    return f"support@{spec.slug}.example"


def demo_mailbox_token(spec: TenantSpec) -> str:
    # Published in the README so that anyone can try the channel with curl; refused outside DEBUG.
    return f"demo-{spec.code.lower()}-mail"


def _ensure_user(
    *,
    email: str,
    full_name: str,
    role: str,
    password_hash: str,
    language: str = "en",
    is_staff: bool = False,
    is_superuser: bool = False,
    portal_tenant: Tenant | None = None,
) -> User:
    user, _created = User.objects.update_or_create(
        email=email,
        defaults={
            "full_name": full_name,
            "role": role,
            "language": language,
            "is_staff": is_staff,
            "is_superuser": is_superuser,
            "is_active": True,
            "portal_tenant": portal_tenant,
            "password": password_hash,
        },
    )
    return user


def _ensure_people(tenants: dict[str, Tenant]) -> tuple[dict[str, Agent], dict[str, Team]]:
    """Users, teams and agent profiles. Every run sets the published passwords again."""
    # Hashing is slow on purpose (about 0.3 s each): once per distinct password, not per user.
    hashes = {
        password: make_password(password) for password in {*DEMO_PASSWORDS.values(), DEMO_AGENT_PASSWORD}
    }

    def password_hash(email: str) -> str:
        return hashes[DEMO_PASSWORDS.get(email, DEMO_AGENT_PASSWORD)]

    admin, portal = "admin@care.example", "portal@energie.example"
    _ensure_user(
        email=admin,
        full_name="Ada Admin",
        role=Role.ADMIN,
        password_hash=password_hash(admin),
        is_staff=True,
        is_superuser=True,
    )
    _ensure_user(
        email=portal,
        full_name="Petra Lange (Stadtwerke Nordlicht)",
        role=Role.PORTAL,
        password_hash=password_hash(portal),
        language="de",
        portal_tenant=tenants["SWN"],
    )
    users = {
        spec.email: _ensure_user(
            email=spec.email,
            full_name=spec.full_name,
            role=spec.role,
            password_hash=password_hash(spec.email),
            language=spec.ui_language,
            is_staff=spec.is_staff,
        )
        for spec in AGENTS
    }
    teams: dict[str, Team] = {}
    for name, kind, code, lead in TEAMS:
        teams[name], _created = Team.objects.update_or_create(
            name=name, defaults={"kind": kind, "tenant": tenants[code] if code else None, "lead": users[lead]}
        )
    by_key = {
        (skill.tenant_id, skill.code): skill for skill in Skill.objects.filter(tenant__in=tenants.values())
    }
    skills = {
        spec.code: [by_key[tenants[spec.code].pk, code] for code, _name in spec.skills] for spec in TENANTS
    }
    agents = {
        spec.email: _ensure_agent(
            spec, user=users[spec.email], team=teams[spec.team], tenants=tenants, skills=skills
        )
        for spec in AGENTS
    }
    return agents, teams


def _ensure_agent(
    spec: AgentSpec, *, user: User, team: Team, tenants: dict[str, Tenant], skills: dict[str, list[Skill]]
) -> Agent:
    agent, _created = Agent.objects.update_or_create(
        user=user,
        defaults={
            "team": team,
            "accepts_offers": spec.accepts_offers,
            "phone_extension": PHONE_EXTENSIONS.get(spec.email, ""),
        },
    )
    for language, level in spec.languages:
        agent_set_language(agent=agent, language=language, proficiency=level)
    for channel, capacity in spec.channels:
        agent_set_channel(agent=agent, channel=channel, capacity=capacity)
    for position, code in enumerate(spec.tenants):
        # Trained on every product of the home client, on the main one of the others.
        agent_authorise(
            agent=agent, tenant=tenants[code], skills=skills[code] if position == 0 else skills[code][:1]
        )
    return agent_set_presence(agent=agent, presence=spec.presence)


# Models supervisors may change in the admin; every other model of Care's apps they may only view.
SUPERVISOR_CHANGES = (
    "tickets.ticket",
    "tickets.interaction",
    "contacts.customer",
    "contacts.identity",
    "tenants.guideline",
    "macros.macro",
    "tenants.servicehours",
    "connectors.mailbox",
    "routing.routingqueue",
    "routing.routingstep",
    "routing.queueditem",
    "sla.slapolicy",
)


def _ensure_supervisors_group(members: list[User]) -> Group:
    care_apps = [config.label for config in apps.get_app_configs() if config.name.startswith("care.")]
    wanted = Q(content_type__app_label__in=care_apps, codename__startswith="view_")
    for label in SUPERVISOR_CHANGES:
        app_label, model = label.split(".")
        wanted |= Q(content_type__app_label=app_label, content_type__model=model, codename=f"change_{model}")
    group, _created = Group.objects.get_or_create(name=SUPERVISORS_GROUP)
    group.permissions.set(Permission.objects.filter(wanted))
    for user in members:
        user.groups.add(group)
    return group


# --- Routing -------------------------------------------------------------------------------------


def _ensure_routing(tenants: dict[str, Tenant], teams: dict[str, Team]) -> list[RoutingQueue]:
    """The queues and steps of ``ROUTING``, checked by the rules the admin applies (``full_clean``).

    Found by tenant and name (queues) and by position (steps); every run sets them as the table says.
    Overflow targets are linked in a second pass, once every queue exists.
    """
    skills = {
        (skill.tenant_id, skill.code): skill for skill in Skill.objects.filter(tenant__in=tenants.values())
    }
    positions: dict[str, int] = {}
    queues: dict[tuple[str, str], RoutingQueue] = {}
    for spec in ROUTING:
        tenant = tenants[spec.tenant]
        queue = RoutingQueue.objects.filter(tenant=tenant, name=spec.name).first() or RoutingQueue(
            tenant=tenant, name=spec.name
        )
        queue.position = positions[spec.tenant] = positions.get(spec.tenant, -1) + 1
        queue.tags = list(spec.tags)
        queue.required_skill = skills[tenant.pk, spec.skill] if spec.skill else None
        queue.is_active = True
        if queue.pk is None:
            queue.overflow_queue, queue.overflow_after_seconds = None, None
        queue.full_clean()
        queue.save()
        queues[spec.tenant, spec.name] = queue
    for spec in ROUTING:
        queue = queues[spec.tenant, spec.name]
        queue.overflow_queue = queues[spec.tenant, spec.overflow_to] if spec.overflow_to else None
        queue.overflow_after_seconds = spec.overflow_after_seconds
        queue.full_clean()
        queue.save(update_fields=["overflow_queue", "overflow_after_seconds", "updated_at"])
        _ensure_steps(queue, spec, teams)
    return list(queues.values())


def _ensure_steps(queue: RoutingQueue, spec: QueueSpec, teams: dict[str, Team]) -> None:
    existing = {step.position: step for step in RoutingStep.objects.filter(queue=queue).order_by("-pk")}
    for position, step_spec in enumerate(spec.steps):
        step = existing.get(position) or RoutingStep(queue=queue, position=position)
        step.after_seconds = step_spec.after_seconds
        step.hours = step_spec.hours
        step.team_kind = step_spec.team_kind
        step.team = teams[step_spec.team] if step_spec.team else None
        step.language = step_spec.language
        step.min_proficiency = step_spec.level
        step.full_clean()
        step.save()


# --- Customers and tickets -----------------------------------------------------------------------


def _ensure_tickets(
    spec: TenantSpec, *, tenant: Tenant, agents: dict[str, Agent], teams: dict[str, Team], now: dt.datetime
) -> tuple[list[Ticket], int]:
    """Create the tenant's demo tickets that do not exist yet; returns them and how many were found.

    The plans are drawn in full on every run, before the database is asked anything, so that the
    random sequence, and with it every ticket, is the same whichever tickets already exist.
    """
    personas, plans = plan_tenant(spec, now)
    existing = set(
        Interaction.objects.filter(tenant=tenant, external_id__startswith=f"demo-{spec.code}-").values_list(
            "external_id", flat=True
        )
    )
    todo = [plan for plan in plans if external_id(spec.code, plan.index, 1) not in existing]
    if not todo:
        return [], len(plans)
    customers, new_customer_ids = _ensure_customers(tenant, personas)
    work = _TenantWork(spec.code, tenant, agents, teams[DEFAULT_TEAM[spec.code]], customers)
    done = [(_create_ticket(plan, work), plan) for plan in todo]
    _backdate(done, new_customer_ids)
    return [ticket for ticket, _plan in done], len(plans) - len(todo)


def plan_tenant(spec: TenantSpec, now: dt.datetime) -> tuple[list[Persona], list[TicketPlan]]:
    """The tenant's customers and tickets, drawn from the tenant's own fixed seed.

    Pure: the same ``spec`` and ``now`` give the same plans on every machine and every run.
    """
    rng = random.Random(f"{SEED}-{spec.code}")  # noqa: S311 - demo data, not secrets
    personas = _personas(rng, spec, count=spec.tickets * 3 // 4)
    return personas, [_plan_ticket(rng, spec, index, personas, now) for index in range(1, spec.tickets + 1)]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ı", "i")).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char.isalnum())


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if char == "#" else char for char in pattern)


def _phone(rng: random.Random, patterns: Sequence[str], used: set[str]) -> str:
    for _attempt in range(50):
        try:
            number = normalise_phone(_digits(rng, rng.choice(patterns)))
        except ValidationError:
            continue  # e.g. a US exchange starting with 0 or 1: draw again
        if number not in used:
            used.add(number)
            return number
    return ""


def _email(rng: random.Random, first: str, last: str, used: set[str]) -> str:
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{first}.{last}{rng.randint(1, 99)}")
    )
    domain = rng.choice(MAIL_DOMAINS)
    email = f"{local}@{domain}"
    while email in used:
        email = f"{local}{rng.randint(2, 999)}@{domain}"
    used.add(email)
    return email


def _social(rng: random.Random, spec: TenantSpec, name: str, phone: str, used: set[str]) -> tuple[str, str]:
    platform = rng.choice(spec.platforms)
    if platform == SocialPlatform.WHATSAPP:
        if phone:
            return platform, phone  # WhatsApp knows people by their phone number
        platform = SocialPlatform.INSTAGRAM
    limit = 15 if platform == SocialPlatform.X else 30  # the platforms' longest handles
    handle = name[:limit]
    while handle in used:
        suffix = str(rng.randint(2, 99))
        handle = name[: limit - len(suffix)] + suffix
    used.add(handle)
    return platform, handle


def _personas(rng: random.Random, spec: TenantSpec, count: int) -> list[Persona]:
    used: set[str] = set()  # addresses handed out so far: identities are unique per tenant
    people = []
    for _position in range(count):
        language = rng.choices(spec.languages, weights=spec.language_weights)[0]
        first, last = rng.choice(FIRST_NAMES[language]), rng.choice(LAST_NAMES[language])
        email = _email(rng, _ascii(first), _ascii(last), used)
        phone = _phone(rng, spec.phones, used) if rng.random() < 0.65 else ""
        handle = f"{_ascii(first)}_{_ascii(last)}"
        social = _social(rng, spec, handle, phone, used) if rng.random() < 0.4 else None
        people.append(Persona(f"{first} {last}", language, email, phone, social))
    return people


def _status_for_age(rng: random.Random, age: dt.timedelta) -> str:
    """Recent tickets are mostly still open, old ones mostly solved or closed."""
    if age < dt.timedelta(days=1):
        weights = (40, 35, 10, 5, 10, 0)
    elif age < dt.timedelta(days=7):
        weights = (8, 25, 20, 12, 30, 5)
    else:
        weights = (2, 8, 8, 7, 30, 45)
    statuses = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED)
    return rng.choices(statuses, weights=weights)[0]


def _pick_agent(rng: random.Random, code: str, language: str) -> AgentSpec:
    """An agent authorised for the tenant who speaks the ticket's language well (B2 or better)."""
    authorised = [spec for spec in AGENTS if code in spec.tenants and spec.in_history]
    fluent = [spec for spec in authorised if dict(spec.languages).get(language, 0) >= Proficiency.B2]
    return rng.choice(fluent or authorised)


def _skip_former_sla_draws(rng: random.Random, status: str) -> None:
    """The demo drew a made-up SLA due time for waiting tickets (two draws) before the SLA engine
    computed it; drawing the same amount keeps every later draw, and so every demo ticket, as it was."""
    if status in ACTIONABLE:
        rng.random()
        rng.random()


def _pick_channel(rng: random.Random, persona: Persona) -> str:
    """How the customer got in touch this time: any channel we have an address of theirs for."""
    weights = {
        Channel.EMAIL: 5,
        Channel.PHONE: 4 if persona.phone else 0,
        Channel.SOCIAL: 3 if persona.social else 0,
    }
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _plan_ticket(
    rng: random.Random, spec: TenantSpec, index: int, personas: list[Persona], now: dt.datetime
) -> TicketPlan:
    persona_index = rng.randrange(len(personas))
    persona = personas[persona_index]
    channel = _pick_channel(rng, persona)
    values = {
        "num": _digits(rng, spec.number),
        "order": _digits(rng, spec.order),
        "amount": str(rng.randint(29, 189)),
        "reading": str(rng.randint(10000, 99999)),
    }
    tags, texts = rng.choice(ISSUES[spec.issues])
    subject, body = (text.format(**values) for text in texts[persona.language])
    age = dt.timedelta(days=30 * rng.random() ** 2, minutes=20)
    status = _status_for_age(rng, age)
    agent = _pick_agent(rng, spec.code, persona.language)
    urgent = bool(URGENT_TAGS.intersection(tags))
    priority = rng.choices(Priority.values, weights=(0, 20, 50, 30) if urgent else (15, 55, 22, 8))[0]
    created_at = now - age
    words = _words(persona, agent, spec, values, issue=body, note=rng.choice(NOTES[spec.languages[0]]))
    actions = _timeline(rng, rng.choice(_PLOTS[status]), words, start=created_at, now=now)
    _skip_former_sla_draws(rng, status)
    return TicketPlan(
        index=index,
        persona=persona_index,
        channel=channel,
        language=persona.language,
        subject=subject,
        tags=tags,
        priority=priority,
        assignee=agent.email if any(action.kind == "assign" for action in actions) else "",
        created_at=created_at,
        actions=actions,
    )


def _words(
    persona: Persona, agent: AgentSpec, spec: TenantSpec, values: dict[str, str], *, issue: str, note: str
) -> dict[str, str]:
    """Every text a ticket's timeline may need, by the key its plot uses."""
    texts = TEXTS[persona.language]
    names = {"first": persona.name.split(" ")[0], "agent": agent.full_name.split(" ")[0], "tenant": spec.name}
    words = {
        key: f"{texts['greet']}\n\n{texts[key]}\n\n{texts['sign']}".format(**names)
        for key in ("ack", "ask", "hold", "solve")
    }
    words.update(issue=issue, note=note, nudge=texts["nudge"], answer=texts["answer"].format(**values))
    return words


def _timeline(
    rng: random.Random, plot: Sequence[str], words: dict[str, str], *, start: dt.datetime, now: dt.datetime
) -> tuple[Action, ...]:
    """Give each step of ``plot`` a moment after the one before, never reaching ``now``."""
    actions: list[Action] = []
    moment = start
    for step in plot:
        kind, _colon, key = step.partition(":")
        if actions:  # the first step is the contact that opened the ticket, at its creation
            low, high = _CLOSING_GAP if step == "status:closed" else _GAPS[kind]
            moment += min(dt.timedelta(minutes=rng.uniform(low, high)), (now - moment) * 0.6)
        text = key if kind == "status" else words.get(key or kind, "")
        actions.append(Action(kind, moment, text))
    return tuple(actions)


def _ensure_customers(
    tenant: Tenant, personas: list[Persona]
) -> tuple[list[tuple[Customer, dict[str, Identity]]], list[int]]:
    """Find or create each persona's customer and identities; returns them and the new customers' ids."""
    known = {(row.kind, row.platform, row.value): row for row in Identity.objects.filter(tenant=tenant)}
    customers: list[tuple[Customer, dict[str, Identity]]] = []
    created_ids = []
    for persona in personas:
        customer, email, created = customer_get_or_create_by_identity(
            tenant=tenant,
            kind=IdentityKind.EMAIL,
            value=persona.email,
            display_name=persona.name,
            preferred_language=persona.language,
        )
        if created:
            created_ids.append(customer.pk)
        identities = {Channel.EMAIL.value: email}
        addresses = [(Channel.PHONE, "", persona.phone)] if persona.phone else []
        if persona.social:
            addresses.append((Channel.SOCIAL, *persona.social))
        for channel, platform, value in addresses:
            kind = _IDENTITY_KIND[channel]
            identities[channel] = known.get((kind, platform, value)) or identity_add(
                customer=customer, kind=kind, value=value, platform=platform, display_name=persona.name
            )
        customers.append((customer, identities))
    return customers, created_ids


def _create_ticket(plan: TicketPlan, work: _TenantWork) -> Ticket:
    """One demo ticket, through the services: created, assigned, talked about, moved along."""
    customer, identities = work.customers[plan.persona]
    agent = work.agents.get(plan.assignee)
    actor = agent.user if agent else None
    ticket = ticket_create(
        tenant=work.tenant,
        customer=customer,
        channel=plan.channel,
        subject=plan.subject,
        language=plan.language,
        priority=plan.priority,
        team=agent.team if agent else work.default_team,
        tags=plan.tags,
    )
    position = 0
    for action in plan.actions:
        if action.kind == "assign":
            ticket = ticket_assign(ticket=ticket, agent=agent, actor=actor)
        elif action.kind == "status":
            ticket = ticket_change_status(ticket=ticket, status=action.text, actor=actor)
        else:
            position += 1
            inbound = action.kind == "in"
            interaction_add(
                ticket=ticket,
                channel=plan.channel,
                direction=_DIRECTIONS[action.kind],
                body_text=action.text,
                author_identity=identities[plan.channel] if inbound else None,
                author_user=None if inbound else actor,
                external_id=external_id(work.code, plan.index, position),
                occurred_at=action.at,
            )
    return ticket


def _backdate(done: list[tuple[Ticket, TicketPlan]], new_customer_ids: list[int]) -> None:
    """Demo back-dating: the services stamp everything with the present; move it to the plan's past.

    Only demo data does this. The queryset updates bypass the services on purpose, the append-only
    audit trail included, so that a fresh demo shows a month of history rather than one minute.
    """
    plans = {ticket.pk: plan for ticket, plan in done}
    Ticket.objects.bulk_update(
        [_dated(pk, plan) for pk, plan in plans.items()],
        ["created_at", "updated_at", "status_changed_at", "solved_at", "closed_at"],
        batch_size=200,
    )
    events = list(
        TicketEvent.objects.filter(ticket_id__in=plans)
        .order_by("ticket_id", "id")
        .only("kind", "ticket_id", "changes")
    )
    moments = {pk: _event_moments(plan) for pk, plan in plans.items()}
    for event in events:
        transition = event.changes.get("status", ()) if event.kind == TicketEvent.Kind.STATUS else ()
        key = (event.kind, *transition)
        queue = moments[event.ticket_id].get(key)
        event.created_at = queue.pop(0) if queue else plans[event.ticket_id].actions[-1].at
    TicketEvent.objects.bulk_update(events, ["created_at"], batch_size=500)
    Interaction.objects.filter(ticket_id__in=plans).update(
        created_at=F("occurred_at"), updated_at=F("occurred_at")
    )
    first_ticket = (
        Ticket.objects.filter(customer=OuterRef("pk")).order_by("created_at").values("created_at")[:1]
    )
    Customer.objects.filter(pk__in=new_customer_ids).update(
        created_at=Coalesce(Subquery(first_ticket), F("created_at")),
        updated_at=Coalesce(Subquery(first_ticket), F("updated_at")),
    )
    customer_since = Customer.objects.filter(pk=OuterRef("customer_id")).values("created_at")[:1]
    Identity.objects.filter(customer_id__in=new_customer_ids).update(
        created_at=Subquery(customer_since), updated_at=Subquery(customer_since)
    )
    # Routing logged the plan's assignments (agents taking tickets themselves) as by hand: date them too.
    assigned_at = (
        TicketEvent.objects.filter(ticket=OuterRef("ticket_id"), kind=TicketEvent.Kind.ASSIGNED)
        .order_by("created_at", "id")
        .values("created_at")[:1]
    )
    RoutingDecision.objects.filter(ticket_id__in=plans, kind=RoutingDecision.Kind.MANUAL).update(
        created_at=Subquery(assigned_at), updated_at=Subquery(assigned_at)
    )
    # What still waits for an agent has waited since the customer wrote, not since the seeding queued it.
    opened = Ticket.objects.filter(pk=OuterRef("ticket_id")).values("created_at")[:1]
    QueuedItem.objects.filter(ticket_id__in=plans).update(
        enqueued_at=Subquery(opened), queue_entered_at=Subquery(opened)
    )


def _dated(pk: int, plan: TicketPlan) -> Ticket:
    ticket = Ticket(pk=pk, created_at=plan.created_at, updated_at=plan.actions[-1].at)
    ticket.status_changed_at, ticket.solved_at, ticket.closed_at = plan.created_at, None, None
    for action in plan.actions:
        if action.kind in ("assign", "status"):  # assigning a new ticket opens it
            ticket.status_changed_at = action.at
        if action.kind == "status" and action.text == Status.SOLVED:
            ticket.solved_at = action.at
        if action.kind == "status" and action.text == Status.CLOSED:
            ticket.closed_at = action.at
    return ticket


def _event_moments(plan: TicketPlan) -> dict[tuple[str, ...], list[dt.datetime]]:
    """When the plan's audit events happened, in order, keyed by kind and, for status, (before, after).

    Keyed by the transition rather than by position, so it holds whether or not assigning a new
    ticket records its implicit opening as a status event of its own.
    """
    created, assigned, status = TicketEvent.Kind.CREATED, TicketEvent.Kind.ASSIGNED, TicketEvent.Kind.STATUS
    moments: dict[tuple[str, ...], list[dt.datetime]] = {(created,): [plan.created_at]}
    current: str = Status.NEW
    for action in plan.actions:
        after: str
        if action.kind == "assign":
            moments.setdefault((assigned,), []).append(action.at)
            after = Status.OPEN if current == Status.NEW else current
        elif action.kind == "status":
            after = action.text
        else:
            continue
        if after != current:
            moments.setdefault((status, current, after), []).append(action.at)
            current = after
    return moments
