"""Every domain change publishes its live events after the commit (docs/realtime.md, event catalogue):
the real service call, the real on-commit callbacks, then what the Redis live log holds per stream."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from care.accounts.models import Agent
from care.contacts.models import Identity
from care.contacts.services import customers_merge
from care.realtime import log, streams
from care.realtime.schema import timestamp
from care.sla.models import SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_event_apply_actions, sla_fire
from care.tickets import live
from care.tickets.models import Direction, Ticket, TicketEvent, TicketLink
from care.tickets.services import (
    interaction_add,
    ticket_assign,
    ticket_change_status,
    ticket_create,
    ticket_link,
    ticket_update,
)
from tests.factories.accounts import make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_broker(broker):
    """The tasks the changes enqueue after the commit (routing, SLA timers, wallboard refreshes) go to
    a queue of this test's own, deleted afterwards; no worker runs them."""
    return broker


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """``with commit(): ...`` runs the on-commit callbacks of what happened inside, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def logged(stream: str) -> list[dict]:
    return [dict(event) for event in log.since(stream, 0).events]


def types(stream: str) -> list[str]:
    return [event["type"] for event in logged(stream)]


def check_envelope(event: dict, *, event_type: str, stream: str, seq: int, tenant_id: int) -> dict:
    """Assert the envelope of version 1 and return its data."""
    assert len(event["id"]) == 32
    assert dt.datetime.fromisoformat(event["at"]).utcoffset() == dt.timedelta(0)
    rest = {key: value for key, value in event.items() if key not in ("id", "at", "data")}
    assert rest == {"v": 1, "type": event_type, "stream": stream, "seq": seq, "tenant": tenant_id}
    return event["data"]


def person(agent: Agent) -> dict:
    return {"id": agent.pk, "name": agent.user.get_full_name()}


def summary(ticket: Ticket, *, assignee: Agent | None = None, **overrides) -> dict:
    """The *ticket* shape, from the database row (not from the object the service returned)."""
    row = Ticket.objects.select_related("tenant").get(pk=ticket.pk)
    tenant = row.tenant
    shape = {
        "id": row.pk,
        "reference": row.reference,
        "tenant": {"id": tenant.pk, "code": tenant.code, "name": tenant.name, "colour": tenant.colour},
        "subject": row.subject,
        "status": row.status,
        "priority": row.priority,
        "channel": row.channel,
        "language": row.language,
        "assignee": person(assignee) if assignee else None,
        "updated_at": timestamp(row.updated_at),
    }
    shape.update(overrides)
    return shape


@pytest.fixture
def customer(tenant_a):
    return CustomerFactory(tenant=tenant_a, display_name="Anna Schmidt", preferred_language="de")


@pytest.fixture
def ticket(tenant_a, customer, commit):
    with commit():
        return make_ticket(tenant=tenant_a, customer=customer, subject="Meter reading wrong")


# --- Tickets -------------------------------------------------------------------------------------


def test_a_new_ticket_is_announced_on_its_tenant_and_its_own_stream(tenant_a, customer, commit):
    with commit():
        ticket = ticket_create(tenant=tenant_a, customer=customer, channel="email", subject=" Meter ")

    expected = {
        "ticket": {
            "id": ticket.pk,
            "reference": "ENN-1",
            "tenant": {"id": tenant_a.pk, "code": "ENN", "name": "Energie Nord", "colour": tenant_a.colour},
            "subject": "Meter",
            "status": "new",
            "priority": 2,
            "channel": "email",
            "language": "de",
            "assignee": None,
            "updated_at": timestamp(Ticket.objects.get(pk=ticket.pk).updated_at),
        }
    }
    tenant_stream, ticket_stream = streams.tenant_stream(tenant_a.pk), streams.ticket_stream(ticket.pk)
    [on_tenant] = logged(tenant_stream)
    [on_ticket] = logged(ticket_stream)
    kind = {"event_type": "ticket.created", "seq": 1, "tenant_id": tenant_a.pk}
    assert check_envelope(on_tenant, stream=tenant_stream, **kind) == expected
    assert check_envelope(on_ticket, stream=ticket_stream, **kind) == expected
    assert on_tenant["id"] == on_ticket["id"]  # one change, one id on every stream


def test_a_status_change_is_an_update_with_its_changes_and_actor(ticket, tenant_a, supervisor, commit):
    with commit():
        ticket_change_status(ticket=ticket, status="pending", actor=supervisor.user)

    stream = streams.ticket_stream(ticket.pk)
    assert types(stream) == ["ticket.created", "ticket.updated"]
    data = check_envelope(
        logged(stream)[1], event_type="ticket.updated", stream=stream, seq=2, tenant_id=tenant_a.pk
    )
    assert data == {
        "ticket": summary(ticket, status="pending"),
        "kind": "status",
        "changes": {"status": ["new", "pending"]},
        "actor": {"id": supervisor.user.pk, "name": supervisor.user.get_full_name()},
    }
    assert types(streams.tenant_stream(tenant_a.pk)) == ["ticket.created", "ticket.updated"]


def test_assigning_tells_the_new_and_the_previous_assignee(ticket, tenant_a, agent, supervisor, commit):
    bob = make_agent(tenants=[tenant_a], email="bob@care.test")
    with commit():
        ticket_assign(ticket=ticket, agent=agent, actor=supervisor.user)

    # A new ticket opens when it is assigned: the assignment, then the implicit status change.
    alice_stream = streams.agent_stream(agent.pk)
    assert types(alice_stream) == ["ticket.assigned", "ticket.updated"]
    assigned, opened = logged(alice_stream)
    assert check_envelope(
        assigned, event_type="ticket.assigned", stream=alice_stream, seq=1, tenant_id=tenant_a.pk
    ) == {
        "ticket": summary(ticket, assignee=agent),
        "assignee": person(agent),
        "previous": None,
        "actor": {"id": supervisor.user.pk, "name": supervisor.user.get_full_name()},
    }
    assert opened["data"]["kind"] == "status"
    assert opened["data"]["changes"] == {"status": ["new", "open"]}
    assert opened["data"]["ticket"]["assignee"] == person(agent)

    with commit():
        ticket_assign(ticket=Ticket.objects.get(pk=ticket.pk), agent=bob, actor=None)

    moved_away = logged(alice_stream)[-1]
    moved_to = logged(streams.agent_stream(bob.pk))
    assert [event["type"] for event in moved_to] == ["ticket.assigned"]
    assert moved_away["id"] == moved_to[0]["id"]
    assert moved_to[0]["data"] == {
        "ticket": summary(ticket, assignee=bob),
        "assignee": person(bob),
        "previous": person(agent),
        "actor": None,
    }
    assert types(streams.ticket_stream(ticket.pk)) == [
        "ticket.created",
        "ticket.assigned",
        "ticket.updated",
        "ticket.assigned",
    ]

    with commit():
        ticket_assign(ticket=Ticket.objects.get(pk=ticket.pk), agent=None, actor=supervisor.user)
    unassigned = logged(streams.agent_stream(bob.pk))[-1]["data"]
    assert (unassigned["assignee"], unassigned["previous"]) == (None, person(bob))
    assert unassigned["ticket"]["assignee"] is None


def test_an_update_of_fields_carries_before_and_after(ticket, tenant_a, agent, commit):
    ticket_assign(ticket=ticket, agent=agent, actor=None)
    with commit():
        ticket_update(ticket=Ticket.objects.get(pk=ticket.pk), actor=agent.user, priority=4, tags=["Meter"])

    update = logged(streams.agent_stream(agent.pk))[-1]
    assert update["type"] == "ticket.updated"
    assert update["data"] == {
        "ticket": summary(ticket, assignee=agent),
        "kind": "updated",
        "changes": {"priority": [2, 4], "tags": [[], ["meter"]]},
        "actor": {"id": agent.user.pk, "name": agent.user.get_full_name()},
    }


def test_links_and_customer_merges_are_updates_too(ticket, tenant_a, customer, agent, commit):
    duplicate = CustomerFactory(tenant=tenant_a, display_name="")
    moved = make_ticket(tenant=tenant_a, customer=duplicate)
    ticket_assign(ticket=moved, agent=agent, actor=None)
    with commit():
        ticket_link(source=ticket, target=moved, kind=TicketLink.Kind.RELATED, actor=agent.user)
        customers_merge(source=duplicate, target=customer, actor=agent.user)

    linked = logged(streams.ticket_stream(ticket.pk))[-1]["data"]
    assert (linked["kind"], linked["changes"]) == (
        "linked",
        {"link": [None, {"kind": "related", "ticket": moved.pk}]},
    )
    merged = logged(streams.ticket_stream(moved.pk))
    assert [event["type"] for event in merged] == ["ticket.updated"]
    assert merged[0]["data"] == {
        "ticket": summary(moved, assignee=agent),
        "kind": "customer_merged",
        "changes": {"customer": [duplicate.pk, customer.pk]},
        "actor": {"id": agent.user.pk, "name": agent.user.get_full_name()},
    }
    assert logged(streams.agent_stream(agent.pk))[-1]["id"] == merged[0]["id"]


# --- Interactions --------------------------------------------------------------------------------


def test_an_interaction_is_announced_with_its_author_and_a_preview(ticket, tenant_a, customer, agent, commit):
    identity = IdentityFactory(customer=customer, value="anna@example.com")
    ticket = ticket_assign(ticket=ticket, agent=agent, actor=None)
    text = "Hello, " + "x" * 300
    with commit():
        inbound, _ = interaction_add(
            ticket=ticket,
            channel="email",
            direction=Direction.INBOUND,
            body_text=text,
            author_identity=identity,
        )
        note, _ = interaction_add(
            ticket=ticket,
            channel="email",
            direction=Direction.NOTE,
            body_text="Call back",
            author_user=agent.user,
        )
        acknowledgement, _ = interaction_add(
            ticket=ticket, channel="email", direction=Direction.OUTBOUND, counts_as_response=False
        )

    stream = streams.ticket_stream(ticket.pk)
    added = [event for event in logged(stream) if event["type"] == "interaction.added"]
    assert check_envelope(
        added[0], event_type="interaction.added", stream=stream, seq=added[0]["seq"], tenant_id=tenant_a.pk
    ) == {
        "ticket": {"id": ticket.pk, "reference": "ENN-1"},
        "interaction": {
            "id": inbound.pk,
            "channel": "email",
            "direction": "inbound",
            "author": {"kind": "customer", "name": "Anna Schmidt"},
            "preview": text[:200],
            "occurred_at": timestamp(inbound.occurred_at),
        },
    }
    assert [(e["data"]["interaction"]["id"], e["data"]["interaction"]["author"]) for e in added[1:]] == [
        (note.pk, {"kind": "agent", "name": agent.user.get_full_name()}),
        (acknowledgement.pk, {"kind": "system", "name": None}),
    ]
    # The assignee's stream gets them too (notes included: streams are staff-only); the tenant's not.
    on_agent = [e["id"] for e in logged(streams.agent_stream(agent.pk)) if e["type"] == "interaction.added"]
    assert on_agent == [event["id"] for event in added]
    assert "interaction.added" not in types(streams.tenant_stream(tenant_a.pk))


def test_a_customer_without_a_name_is_named_by_the_identity(tenant_a, commit):
    nameless = CustomerFactory(tenant=tenant_a, display_name="")
    identity = IdentityFactory(customer=nameless, value="noname@example.com")
    ticket = make_ticket(tenant=tenant_a, customer=nameless)
    with commit():
        interaction_add(
            ticket=Ticket.objects.get(pk=ticket.pk),
            channel="email",
            direction=Direction.INBOUND,
            body_text="Hi",
            author_identity=identity,
        )
    [event] = [e for e in logged(streams.ticket_stream(ticket.pk)) if e["type"] == "interaction.added"]
    assert event["data"]["interaction"]["author"] == {"kind": "customer", "name": "noname@example.com"}


def test_an_idempotent_repeat_publishes_nothing(ticket, commit):
    def deliver():
        return interaction_add(
            ticket=ticket, channel="email", direction=Direction.INBOUND, body_text="Hi", external_id="<m1@x>"
        )

    with commit():
        deliver()
    with commit() as callbacks:
        _, created = deliver()
    assert created is False
    assert callbacks == []
    assert types(streams.ticket_stream(ticket.pk)).count("interaction.added") == 1


# --- Commit, rollback, isolation -----------------------------------------------------------------


def test_nothing_is_published_before_the_commit_or_for_a_rolled_back_change(ticket, agent, commit):
    stream = streams.ticket_stream(ticket.pk)
    with commit():
        ticket_change_status(ticket=ticket, status="open", actor=None)
        assert types(stream) == ["ticket.created"]  # not yet: the transaction has not committed
    assert types(stream) == ["ticket.created", "ticket.updated"]

    def change_then_fail():
        with transaction.atomic():
            ticket_assign(ticket=ticket, agent=agent, actor=None)
            interaction_add(ticket=ticket, channel="email", direction=Direction.NOTE, body_text="x")
            raise RuntimeError("rolled back")

    with commit() as callbacks, pytest.raises(RuntimeError):
        change_then_fail()
    assert callbacks == []
    assert types(stream) == ["ticket.created", "ticket.updated"]
    assert logged(streams.agent_stream(agent.pk)) == []


def test_a_tenants_events_never_reach_another_tenants_streams(tenant_a, tenant_b, agent, outsider, commit):
    with commit():
        ours = make_ticket(tenant=tenant_a)
        theirs = make_ticket(tenant=tenant_b)
        ticket_assign(ticket=ours, agent=agent, actor=None)
        ticket_assign(ticket=theirs, agent=outsider, actor=None)
        interaction_add(ticket=theirs, channel="email", direction=Direction.NOTE, body_text="B only")

    for tenant, ticket, own_agent in ((tenant_a, ours, agent), (tenant_b, theirs, outsider)):
        for stream in (
            streams.tenant_stream(tenant.pk),
            streams.ticket_stream(ticket.pk),
            streams.agent_stream(own_agent.pk),
        ):
            events = logged(stream)
            assert events
            assert {event["tenant"] for event in events} == {tenant.pk}
            assert {event["data"]["ticket"].get("reference", "").split("-")[0] for event in events} == {
                tenant.code
            }


# --- SLA -----------------------------------------------------------------------------------------


@pytest.fixture
def policy(tenant_a):
    return SlaPolicy.objects.create(
        tenant=tenant_a,
        name="Standard",
        first_response_minutes=60,
        resolution_minutes=480,
        business_hours=False,
    )


@pytest.mark.parametrize(
    ("kind", "instant", "event_type"),
    [("warning", "warn_at", "sla.warning"), ("breach", "due_at", "sla.breach")],
)
def test_sla_warnings_and_breaches_reach_the_ticket_its_assignee_and_the_tenant(
    policy, tenant_a, agent, commit, kind, instant, event_type
):
    ticket = make_ticket(tenant=tenant_a)
    ticket_assign(ticket=ticket, agent=agent, actor=None)
    clock = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    sla_fire(clock_ids=[clock.pk], now=getattr(clock, instant) + dt.timedelta(seconds=1))
    event = SlaEvent.objects.get(ticket=ticket, kind=kind)

    with commit():
        sla_event_apply_actions(event_id=event.pk)
        assert event_type not in types(streams.ticket_stream(ticket.pk))  # after the commit only
    with commit():
        sla_event_apply_actions(event_id=event.pk)  # a retried task: its actions were done, nothing more

    expected = {
        "ticket": {"id": ticket.pk, "reference": ticket.reference},
        "target": "first_response",
        "due_at": timestamp(clock.due_at),
    }
    ids = set()
    for stream in (
        streams.ticket_stream(ticket.pk),
        streams.agent_stream(agent.pk),
        streams.tenant_stream(tenant_a.pk),
    ):
        published = [e for e in logged(stream) if e["type"].startswith("sla.")]
        assert len(published) == 1, stream
        assert (
            check_envelope(
                published[0],
                event_type=event_type,
                stream=stream,
                seq=published[0]["seq"],
                tenant_id=tenant_a.pk,
            )
            == expected
        )
        ids.add(published[0]["id"])
    assert len(ids) == 1


# --- What building the payloads costs --------------------------------------------------------------


def test_payloads_cost_at_most_one_query_per_change(
    tenant_a, customer, agent, supervisor, django_assert_num_queries
):
    """The services' lock loads the tenant with the ticket; the assignee is read once per change."""
    ticket = make_ticket(tenant=tenant_a, customer=customer)
    ticket_assign(ticket=ticket, agent=agent, actor=None)
    locked = Ticket.objects.select_related("tenant").get(pk=ticket.pk)
    status = TicketEvent(ticket=locked, kind=TicketEvent.Kind.STATUS, changes={"status": ["open", "pending"]})
    with django_assert_num_queries(1):  # the assignee with their user
        live.publish_ticket_change(ticket=locked, event=status, actor=supervisor.user)
    with django_assert_num_queries(0):  # the next event of the same change: kept on the ticket
        live.publish_ticket_change(ticket=locked, event=status, actor=supervisor.user)

    bob = Agent.objects.get(pk=make_agent(tenants=[tenant_a]).pk)
    locked.assignee = bob
    assigned = TicketEvent(
        ticket=locked, kind=TicketEvent.Kind.ASSIGNED, changes={"assignee": [agent.pk, bob.pk]}
    )
    with django_assert_num_queries(1):  # both agents with their users
        live.publish_ticket_change(ticket=locked, event=assigned, actor=supervisor.user)

    new = make_ticket(tenant=tenant_a, customer=customer)  # as ticket_create holds it: tenant in hand
    created = TicketEvent(ticket=new, kind=TicketEvent.Kind.CREATED, changes={})
    with django_assert_num_queries(0):
        live.publish_ticket_change(ticket=new, event=created, actor=None)


def test_an_interaction_payload_costs_at_most_two_queries(tenant_a, customer, django_assert_num_queries):
    identity = IdentityFactory(customer=customer)
    ticket = make_ticket(tenant=tenant_a, customer=customer)
    interaction, _ = interaction_add(
        ticket=ticket, channel="email", direction=Direction.INBOUND, author_identity=identity
    )
    plain = Ticket.objects.get(pk=ticket.pk)
    interaction.author_identity = Identity.objects.get(pk=identity.pk)
    with django_assert_num_queries(2):  # the tenant's code for the reference, the customer's name
        live.publish_interaction_added(ticket=plain, interaction=interaction)
    # As the email ingestion holds them: the ticket with its tenant, the identity with its customer.
    loaded = Ticket.objects.select_related("tenant").get(pk=ticket.pk)
    interaction.author_identity = Identity.objects.select_related("customer").get(pk=identity.pk)
    with django_assert_num_queries(0):
        live.publish_interaction_added(ticket=loaded, interaction=interaction)
