"""The routing issue's "Done when", played in the demo world with the clock in the test's hands.

A Spanish email for TeleSol goes to a Spanish-speaking agent authorised for TeleSol; with none online
it waits, then widens (B2, then the English fallback); outside service hours it goes to the night
pool; at night a pooled agent pulls work of two tenants; billing work overflows; the decision log
explains each step. Time is passed as ``now=`` to the services, and each item's waiting start is set
to the test's moment, so "after 30 s" means 30 s of the test's clock.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.db.models import Min
from django.test.utils import override_settings
from django.utils import timezone

from care.accounts.models import Agent, Presence
from care.accounts.services import agent_set_presence
from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundStatus, Mailbox
from care.contacts.models import Customer
from care.core.channels import Channel
from care.demo.build import external_id, plan_tenant, seed_demo
from care.demo.data import ROUTING, TENANTS
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.routing.selectors import explain_ticket
from care.routing.services import offer_expire, route_for_agent, route_item
from care.tenants.calendar import calendars_of
from care.tenants.models import Tenant
from care.tickets.models import Interaction, Priority, Ticket, TicketEvent
from care.tickets.services import ticket_create
from care.tickets.status import ACTIONABLE

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MADRID = ZoneInfo("Europe/Madrid")

# The steps of TeleSol's main queue, as the decision log names them.
NATIVE_STEP = (
    "after 0 s · during service hours · team Care Center Berlin · customer's language at Native or better"
)
B2_STEP = "after 30 s · during service hours · customer's language at B2 or better"
ENGLISH_STEP = "after 120 s · during service hours · en at B2 or better"
NIGHT_STEP = "after 0 s · outside service hours · team Night Pool"


@pytest.fixture(scope="module")
def seeded_at(django_db_setup, django_db_blocker):
    """The demo, seeded once for this module (and rolled back after it); each test runs in a savepoint."""
    now = timezone.now()
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        seed_demo(now=now)
        yield now
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _media(media_root, seeded_at):
    """Every test runs in the seeded demo, and stores what it receives in a temporary directory."""


# --- Helpers -------------------------------------------------------------------------------------


def agent(email: str) -> Agent:
    return Agent.objects.select_related("user").get(user__email=email)


def presence(email: str, state: str) -> None:
    agent_set_presence(agent=agent(email), presence=state)


def next_working_day_at(hour: int, minute: int = 0, *, zone: ZoneInfo = MADRID) -> dt.datetime:
    """The next Tuesday at ``hour``:``minute`` in ``zone``, two days ahead or more (after everything the
    demo created) and a public holiday of no demo tenant."""
    calendars = calendars_of(Tenant.objects.all()).values()
    day = timezone.now().astimezone(zone).date() + dt.timedelta(days=2)
    while day.weekday() != 1 or any(calendar.is_holiday(day) for calendar in calendars):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def spanish_email(message_id: str, sender: str = "Marta Gómez <marta.gomez@correo.example>") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@telesol.example"
    message["Subject"] = "Sin conexión de fibra desde ayer"
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(
        "Hola, desde ayer no tengo conexión de fibra en casa. El router tiene la luz roja encendida y "
        "ya lo he reiniciado dos veces. ¿Pueden revisar la línea, por favor? Mi número de cliente es "
        "712345678. Muchas gracias."
    )
    return message.as_bytes()


def receive(raw: bytes, mailbox: str = "support@telesol.example") -> Ticket:
    """The email as the HTTP endpoint or the ingest_email command takes it in: stored, then processed."""
    message, created = email_receive(
        mailbox=Mailbox.objects.get(address=mailbox), raw=raw, source="cli", process=False
    )
    assert created
    processed = process_stored(message.pk)
    assert processed is not None
    assert (processed.status, processed.outcome) == (InboundStatus.PROCESSED, "created")
    assert processed.ticket is not None
    return processed.ticket


def new_ticket(
    code: str,
    *,
    language: str,
    tags: tuple[str, ...] = (),
    priority: int = Priority.NORMAL,
    sla_due_at: dt.datetime | None = None,
) -> Ticket:
    """A ticket as an agent or a connector opens it (email ingestion cannot tag or set an SLA)."""
    tenant = Tenant.objects.get(code=code)
    ticket = ticket_create(
        tenant=tenant,
        customer=Customer.objects.filter(tenant=tenant).order_by("pk").first(),
        channel=Channel.EMAIL,
        subject=f"{code} {language} {' '.join(tags)}".strip(),
        language=language,
        tags=tags,
        priority=priority,
    )
    if sla_due_at is not None:  # the SLA engine sets the due time; pin it for a deterministic order
        Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=sla_due_at)
        QueuedItem.objects.filter(ticket=ticket).update(sla_due_at=sla_due_at)
    return ticket


def waiting_from(ticket: Ticket, moment: dt.datetime) -> QueuedItem:
    """Let the ticket's queued item wait from ``moment`` of the test's clock."""
    QueuedItem.objects.filter(ticket=ticket).update(enqueued_at=moment, queue_entered_at=moment)
    return QueuedItem.objects.get(ticket=ticket)


def route(ticket: Ticket, at: dt.datetime) -> RoutingDecision | None:
    return route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk, now=at)


def log(ticket: Ticket) -> list[tuple[str, str, str]]:
    """The ticket's decision log as (kind, agent's email or "", step)."""
    return [
        (d.kind, d.agent.user.email if d.agent else "", d.step)
        for d in RoutingDecision.objects.filter(ticket=ticket).select_related("agent__user").order_by("id")
    ]


def rejected(decision: RoutingDecision) -> dict[str, list[str]]:
    return {c["name"]: c["rejected"] for c in decision.candidates if "name" in c}


def assignee(ticket: Ticket) -> str | None:
    ticket = Ticket.objects.select_related("assignee__user").get(pk=ticket.pk)
    return ticket.assignee.user.email if ticket.assignee else None


# --- The seeded configuration ----------------------------------------------------------------------


def test_the_demo_routing_is_valid_and_tells_the_issues_story():
    queues = {(q.tenant.code, q.name): q for q in RoutingQueue.objects.select_related("tenant")}
    assert set(queues) == {(spec.tenant, spec.name) for spec in ROUTING}
    assert {code for code, _name in queues} == {spec.code for spec in TENANTS}
    for queue in queues.values():
        queue.full_clean()  # the admin's checks: languages, skills, teams, overflow cycles
    for step in RoutingStep.objects.select_related("queue__tenant", "team"):
        step.full_clean()

    def labels(code: str, name: str) -> list[str]:
        return [str(step) for step in queues[code, name].steps.order_by("after_seconds", "position")]

    assert labels("TSOL", "Atención al cliente") == [NATIVE_STEP, NIGHT_STEP, B2_STEP, ENGLISH_STEP]
    assert labels("SWN", "Kundenservice") == [
        "after 0 s · during service hours · in-house teams · customer's language at Native or better",
        "after 0 s · outside service hours · team Night Pool",
        "after 30 s · during service hours · in-house teams · customer's language at B2 or better",
        "after 60 s · during service hours · provider teams",
    ]
    billing = queues["TSOL", "Facturación"]
    assert billing.position < queues["TSOL", "Atención al cliente"].position  # matched first
    assert (billing.tags, billing.required_skill.code) == (["billing"], "facturacion")
    assert (billing.overflow_queue, billing.overflow_after_seconds) == (
        queues["TSOL", "Atención al cliente"],
        120,
    )
    assert list(Agent.objects.filter(accepts_offers=True).values_list("user__email", flat=True)) == [
        "emily@care.example"
    ]


def test_seeding_queues_the_waiting_tickets_and_routes_nothing(seeded_at):
    # Routing runs in Celery after the commit: seeding gives no work to anyone. The only decisions are
    # the plan's assignments (agents taking tickets themselves), logged as by hand when they happened.
    manual = RoutingDecision.objects.filter(kind=RoutingDecision.Kind.MANUAL)
    assert not RoutingDecision.objects.exclude(kind=RoutingDecision.Kind.MANUAL).exists()
    assert manual.count() == Ticket.objects.filter(events__kind=TicketEvent.Kind.ASSIGNED).distinct().count()
    for decision in manual.select_related("agent", "actor", "ticket"):
        assert decision.agent_id == decision.ticket.assignee_id
        assert decision.actor == decision.agent.user
        event = decision.ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
        assert decision.created_at == event.created_at < seeded_at
    waiting = Ticket.objects.filter(status__in=ACTIONABLE, assignee__isnull=True)
    items = {item.ticket_id: item for item in QueuedItem.objects.select_related("queue", "ticket__tenant")}
    assert waiting.count() > 10
    assert set(items) == set(waiting.values_list("pk", flat=True))
    main = {spec.tenant: spec.name for spec in ROUTING if not spec.tags}
    for item in items.values():
        code = item.ticket.tenant.code
        billing = code == "TSOL" and "billing" in item.ticket.tags
        assert item.state == QueuedItem.State.WAITING
        assert item.queue is not None
        assert item.queue.name == ("Facturación" if billing else main[code])
        assert item.enqueued_at == item.ticket.created_at  # waiting since the customer wrote
    # Who has which ticket is exactly what the plan says: routing neither gave nor took back any.
    for spec in TENANTS:
        _personas, plans = plan_tenant(spec, seeded_at)
        firsts = dict(
            Interaction.objects.filter(tenant__code=spec.code, external_id__endswith="-1").values_list(
                "external_id", "ticket__assignee__user__email"
            )
        )
        assert {external_id(spec.code, p.index, 1): p.assignee or None for p in plans} == firsts
    assert not Ticket.objects.filter(assignee__user__email="olivia@care.example").exists()


# --- The story -------------------------------------------------------------------------------------


def test_a_spanish_email_goes_to_a_native_spanish_agent_authorised_for_telesol():
    morning = next_working_day_at(11)
    ticket = receive(spanish_email("fibra-1@correo.example"))
    assert (ticket.tenant.code, ticket.language, ticket.assignee_id) == ("TSOL", "es", None)
    item = waiting_from(ticket, morning)
    assert item.queue.name == "Atención al cliente"

    decision = route(ticket, morning)

    assert decision is not None
    assert (decision.kind, decision.step, decision.queue_name) == (
        RoutingDecision.Kind.ASSIGNED,
        NATIVE_STEP,
        "Atención al cliente",
    )
    assert assignee(ticket) == "lucia@care.example"
    assert not QueuedItem.objects.filter(ticket=ticket).exists()
    # Alex is online and authorised but only C1 in Spanish: not in the first ring.
    assert rejected(decision)["Alex Weber"] == ["speaks es at C1, needs Native"]


def _without_natives_story() -> tuple[Ticket, Ticket]:
    """Lucía goes offline (Carlos is): the first email waits, then goes to Alex at B2; Alex takes a
    break, and the second email waits until the English fallback gives it to Olivia."""
    presence("lucia@care.example", Presence.OFFLINE)
    start = next_working_day_at(11)
    first = receive(spanish_email("fibra-2@correo.example"))
    waiting_from(first, start)
    assert route(first, start).kind == RoutingDecision.Kind.WAITING
    assert route(first, start + dt.timedelta(seconds=29)) is None  # same rings: nothing new to log
    assert route(first, start + dt.timedelta(seconds=30)).kind == RoutingDecision.Kind.ASSIGNED

    presence("agent@care.example", Presence.AWAY)
    later = start + dt.timedelta(minutes=5)
    second = receive(spanish_email("fibra-3@correo.example", sender="Jorge Ruiz <jorge@correo.example>"))
    waiting_from(second, later)
    for seconds in (0, 30, 60, 119, 120):
        route(second, later + dt.timedelta(seconds=seconds))
    return first, second


def test_without_native_speakers_online_it_waits_then_widens_to_b2_then_to_english():
    first, second = _without_natives_story()

    assert log(first) == [
        (RoutingDecision.Kind.WAITING, "", NATIVE_STEP),
        (RoutingDecision.Kind.ASSIGNED, "agent@care.example", B2_STEP),
    ]
    assert assignee(first) == "agent@care.example"
    waiting = RoutingDecision.objects.filter(ticket=first, kind=RoutingDecision.Kind.WAITING).get()
    assert waiting.reason == "nobody eligible is free at any active step"
    assert rejected(waiting) == {
        "Alex Weber": ["speaks es at C1, needs Native"],
        "Carlos Ruiz": ["not in the team required by the step", "is offline"],
        "Lucía Fernández": ["is offline"],
        "Olivia Hughes": ["does not speak es"],
        "Pierre Dubois": ["speaks es at C1, needs Native", "is offline"],
    }

    assert log(second) == [
        (RoutingDecision.Kind.WAITING, "", NATIVE_STEP),
        (RoutingDecision.Kind.WAITING, "", B2_STEP),
        (RoutingDecision.Kind.ASSIGNED, "olivia@care.example", ENGLISH_STEP),
    ]
    assert assignee(second) == "olivia@care.example"
    widened = RoutingDecision.objects.filter(ticket=second, kind=RoutingDecision.Kind.WAITING).last()
    assert rejected(widened)["Alex Weber"] == ["is away"]
    assert rejected(widened)["Olivia Hughes"] == ["does not speak es"]
    given = RoutingDecision.objects.get(ticket=second, kind=RoutingDecision.Kind.ASSIGNED)
    assert given.waited_seconds == 120


def test_the_explanation_names_every_step_and_every_reason():
    _first, second = _without_natives_story()

    text = explain_ticket(second)

    assert text.startswith(f"{second.reference} Sin conexión de fibra desde ayer")
    for line in (
        "Nobody available, waiting",
        f"queue Atención al cliente, step {NATIVE_STEP}, waited 0 s",
        f"queue Atención al cliente, step {B2_STEP}, waited 30 s",
        "nobody eligible is free at any active step",
        "- Alex Weber: rejected: speaks es at C1, needs Native",
        "- Alex Weber: rejected: is away",
        "- Pierre Dubois: rejected: is offline",
        "- Olivia Hughes: rejected: does not speak es",
        "Assigned → Olivia Hughes",
        f"queue Atención al cliente, step {ENGLISH_STEP}, strategy least_loaded, waited 120 s",
        "- Olivia Hughes: chosen",
    ):
        assert line in text, line
    assert text.index(NATIVE_STEP) < text.index(B2_STEP) < text.index(ENGLISH_STEP)


def test_outside_service_hours_it_goes_straight_to_the_night_pool():
    night = next_working_day_at(23, 30)  # TeleSol closes at 21:00
    ticket = receive(spanish_email("fibra-noche@correo.example"))
    waiting_from(ticket, night)

    waiting = route(ticket, night)

    # Lucía is online and native, but at night TeleSol's work is the night pool's.
    assert (waiting.kind, waiting.step) == (RoutingDecision.Kind.WAITING, NIGHT_STEP)
    assert rejected(waiting)["Lucía Fernández"] == ["not in the team required by the step"]
    assert rejected(waiting)["Carlos Ruiz"] == ["is offline"]

    presence("carlos@care.example", Presence.ONLINE)
    given = route(ticket, night + dt.timedelta(seconds=5))

    assert (given.kind, given.step, given.agent.user.email) == (
        RoutingDecision.Kind.ASSIGNED,
        NIGHT_STEP,
        "carlos@care.example",
    )
    assert assignee(ticket) == "carlos@care.example"


def test_at_night_a_pooled_agent_pulls_work_of_two_tenants_most_urgent_first():
    night = next_working_day_at(23, 30)  # TeleSol closed; Hudson Harbor (New York) open, served by the pool
    earliest = QueuedItem.objects.aggregate(first=Min("sla_due_at"))["first"]
    hudson = new_ticket("HUDS", language="en", sla_due_at=earliest - dt.timedelta(hours=2))
    telesol = new_ticket("TSOL", language="es", sla_due_at=earliest - dt.timedelta(hours=1))
    for ticket in (hudson, telesol):
        waiting_from(ticket, night - dt.timedelta(minutes=5))
    urgency = {
        item.ticket_id: (item.sla_due_at is None, item.sla_due_at or night, -item.priority, item.enqueued_at)
        for item in QueuedItem.objects.all()
    }
    carlos = agent("carlos@care.example")
    presence("carlos@care.example", Presence.ONLINE)

    given = []
    while (decision := route_for_agent(agent_id=carlos.pk, now=night)) is not None:
        given.append(decision)
        assert len(given) <= 20

    assert [d.ticket_id for d in given[:2]] == [hudson.pk, telesol.pk]
    assert [(d.kind, d.queue_name, d.step) for d in given[:2]] == [
        (RoutingDecision.Kind.ASSIGNED, "Customer service", "after 0 s · team Night Pool"),
        (RoutingDecision.Kind.ASSIGNED, "Atención al cliente", NIGHT_STEP),
    ]
    assert [urgency[d.ticket_id] for d in given] == sorted(urgency[d.ticket_id] for d in given)
    assert {d.ticket.tenant.code for d in given} == {"HUDS", "TSOL"}
    assert all(assignee(d.ticket) == "carlos@care.example" for d in given)
    # Carlos stopped at his capacity or when nothing left was his to take, never beyond it.
    capacity = carlos.channels.get(channel=Channel.EMAIL).capacity
    assert (
        Ticket.objects.filter(assignee=carlos, channel=Channel.EMAIL, status__in=ACTIONABLE).count()
        <= capacity
    )


def test_billing_work_overflows_to_customer_care_after_two_minutes():
    for email in ("lucia@care.example", "pierre@care.example"):  # with Carlos: who knows billing
        presence(email, Presence.OFFLINE)
    start = next_working_day_at(11)
    ticket = new_ticket("TSOL", language="es", tags=("billing",), priority=Priority.HIGH)
    assert waiting_from(ticket, start).queue.name == "Facturación"

    first = route(ticket, start)
    assert route(ticket, start + dt.timedelta(seconds=119)) is None
    route(ticket, start + dt.timedelta(seconds=120))
    route(ticket, start + dt.timedelta(seconds=150))

    assert rejected(first)["Alex Weber"] == ["lacks the skill Facturación"]
    assert log(ticket) == [
        (RoutingDecision.Kind.WAITING, "", "after 0 s · during service hours · team Care Center Berlin"),
        (RoutingDecision.Kind.OVERFLOWED, "", ""),
        (RoutingDecision.Kind.WAITING, "", NATIVE_STEP),
        (RoutingDecision.Kind.ASSIGNED, "agent@care.example", B2_STEP),
    ]
    overflowed = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.OVERFLOWED)
    assert (overflowed.queue_name, overflowed.reason) == (
        "Atención al cliente",
        "waited 120 s in Facturación",
    )
    assert assignee(ticket) == "agent@care.example"


def test_emily_is_offered_work_and_a_silent_offer_moves_on():
    afternoon = next_working_day_at(12, zone=ZoneInfo("America/New_York"))
    ticket = new_ticket("HUDS", language="en")
    waiting_from(ticket, afternoon)

    offered = route(ticket, afternoon)

    assert (offered.kind, offered.agent.user.email) == (RoutingDecision.Kind.OFFERED, "emily@care.example")
    item = QueuedItem.objects.get(ticket=ticket)
    assert item.offer_expires_at == afternoon + dt.timedelta(seconds=30)
    assert offer_expire(item_id=item.pk, now=afternoon + dt.timedelta(seconds=31))
    assert agent("emily@care.example").presence == Presence.AWAY

    given = route(ticket, afternoon + dt.timedelta(seconds=32))

    assert given.kind == RoutingDecision.Kind.ASSIGNED
    assert given.agent.team.name == "Night Pool"
    assert given.agent.user.email != "emily@care.example"
    assert [kind for kind, _agent, _step in log(ticket)] == ["offered", "expired", "assigned"]
