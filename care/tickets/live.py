"""The tickets app's part of the live layer (docs/realtime.md): the ``ticket:<id>`` stream kind and
the payloads of ticket and interaction events, published after the commit.

Payloads are built inside the changing transaction from the objects the services hold, so that a
change costs at most one or two small queries more: the tenant is usually loaded with the ticket
(``select_related`` in the services' lock), and the agents an event names are read in one query and
kept on the ticket for the next event of the same change (assigning a new ticket records two).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from care.accounts.models import Agent
from care.contacts.models import Customer, Identity
from care.realtime import streams
from care.realtime.publish import publish_on_commit
from care.realtime.schema import timestamp
from care.tickets.models import Interaction, Ticket, TicketEvent

if TYPE_CHECKING:
    from care.accounts.models import User

Person = dict[str, Any]

# Characters of an interaction's text sent with ``interaction.added`` (the timeline loads the rest).
PREVIEW_LENGTH = 200

_UPDATED_KINDS = frozenset(
    {
        TicketEvent.Kind.STATUS,
        TicketEvent.Kind.UPDATED,
        TicketEvent.Kind.CUSTOMER_MERGED,
        TicketEvent.Kind.LINKED,
        TicketEvent.Kind.MERGED,
    }
)


def ticket_tenant(ticket_id: int) -> int | None:
    """The tenant of a ticket, for authorising ``ticket:<id>`` subscriptions (None: no such ticket)."""
    return Ticket.objects.filter(pk=ticket_id).values_list("tenant_id", flat=True).first()


def register_stream_kind() -> None:
    streams.register_kind(streams.TICKET, tenant_of=ticket_tenant)


# --- Shared shapes -------------------------------------------------------------------------------


def user_person(user: User | None) -> Person | None:
    """An actor: ``{"id": user id, "name": full name or email}``."""
    return {"id": user.pk, "name": user.get_full_name()} if user is not None else None


def agent_person(agent: Agent) -> Person:
    """An assignee: ``{"id": agent id, "name": the user's full name or email}`` (needs ``agent.user``)."""
    return {"id": agent.pk, "name": agent.user.get_full_name()}


def ticket_ref(ticket: Ticket) -> dict[str, Any]:
    """``{"id", "reference"}``; reads ``ticket.tenant`` (a query unless it is loaded)."""
    return {"id": ticket.pk, "reference": ticket.reference}


def ticket_summary(
    ticket: Ticket, *, assignee: Person | None, updated_at: dt.datetime | None = None
) -> dict[str, Any]:
    """The *ticket* shape of docs/realtime.md. ``assignee`` is the person of ``ticket.assignee_id``."""
    tenant = ticket.tenant
    return {
        "id": ticket.pk,
        "reference": ticket.reference,
        "tenant": {"id": tenant.pk, "code": tenant.code, "name": tenant.name, "colour": tenant.colour},
        "subject": ticket.subject,
        "status": str(ticket.status),
        "priority": int(ticket.priority),
        "channel": str(ticket.channel),
        "language": ticket.language,
        "assignee": assignee,
        "updated_at": timestamp(updated_at or ticket.updated_at),
    }


def _agents(ticket: Ticket, agent_ids: Iterable[int | None]) -> dict[int, Agent]:
    """The agents ``agent_ids`` names, each with its user: none, or one query for those not in hand.

    The ticket's assignee is cached on the ticket with its user, so the next event of the same
    change (and the caller) need not read it again.
    """
    wanted = {agent_id for agent_id in agent_ids if agent_id is not None}
    known: dict[int, Agent] = {}
    if Ticket.assignee.is_cached(ticket) and ticket.assignee is not None:
        known[ticket.assignee.pk] = ticket.assignee
    missing = {
        agent_id for agent_id in wanted if agent_id not in known or not Agent.user.is_cached(known[agent_id])
    }
    if missing:
        for agent in Agent.objects.select_related("user").filter(pk__in=missing):
            if agent.pk in known:
                known[agent.pk].user = agent.user
            else:
                known[agent.pk] = agent
                if agent.pk == ticket.assignee_id:
                    ticket.assignee = agent  # same id: only fills the cache
    return {agent_id: agent for agent_id, agent in known.items() if agent_id in wanted}


def _person(agents: dict[int, Agent], agent_id: int | None) -> Person | None:
    agent = agents.get(agent_id) if agent_id is not None else None
    return agent_person(agent) if agent is not None else None


def _ticket_streams(ticket: Ticket, agent_ids: Iterable[int | None]) -> list[str]:
    names = [streams.ticket_stream(ticket.pk), streams.tenant_stream(ticket.tenant_id)]
    for agent_id in dict.fromkeys(agent_ids):
        if agent_id is not None:
            names.append(streams.agent_stream(agent_id))
    return names


# --- Ticket events -------------------------------------------------------------------------------


def publish_ticket_change(*, ticket: Ticket, event: TicketEvent, actor: User | None) -> None:
    """Publish the live event of one audited change after the commit (``ticket.created``,
    ``ticket.updated`` or ``ticket.assigned``). Called by the services for every ``TicketEvent``."""
    changes: dict[str, Any] = event.changes or {}
    if event.kind == TicketEvent.Kind.ASSIGNED:
        before, after = changes.get("assignee", [None, ticket.assignee_id])
        agents = _agents(ticket, [after, before])
        assignee = _person(agents, ticket.assignee_id)
        publish_on_commit(
            event_type="ticket.assigned",
            tenant_id=ticket.tenant_id,
            data={
                "ticket": ticket_summary(ticket, assignee=assignee),
                "assignee": _person(agents, after),
                "previous": _person(agents, before),
                "actor": user_person(actor),
            },
            streams=_ticket_streams(ticket, [after, before]),
        )
        return
    assignee = _person(_agents(ticket, [ticket.assignee_id]), ticket.assignee_id)
    summary = ticket_summary(ticket, assignee=assignee)
    data: dict[str, Any] = {"ticket": summary}
    if event.kind == TicketEvent.Kind.CREATED:
        event_type = "ticket.created"
    elif event.kind in _UPDATED_KINDS:
        event_type = "ticket.updated"
        data.update(kind=str(event.kind), changes=changes, actor=user_person(actor))
    else:
        raise ValueError(f"No live event for ticket event kind {event.kind!r}")
    publish_on_commit(
        event_type=event_type,
        tenant_id=ticket.tenant_id,
        data=data,
        streams=_ticket_streams(ticket, [ticket.assignee_id]),
    )


def publish_customer_merged(
    *,
    tickets: Sequence[Ticket],
    events: Sequence[TicketEvent],
    actor: User | None,
    updated_at: dt.datetime,
) -> None:
    """``ticket.updated`` (kind ``customer_merged``) for each ticket moved to the surviving customer:
    two queries whatever their number (their tenant, their assignees)."""
    if not tickets:
        return
    tenant = tickets[0].tenant  # one customer's tickets: one tenant, loaded once
    assignee_ids = {t.assignee_id for t in tickets if t.assignee_id is not None}
    agents = {a.pk: a for a in Agent.objects.select_related("user").filter(pk__in=assignee_ids)}
    for ticket, event in zip(tickets, events, strict=True):
        ticket.tenant = tenant
        publish_on_commit(
            event_type="ticket.updated",
            tenant_id=ticket.tenant_id,
            data={
                "ticket": ticket_summary(
                    ticket, assignee=_person(agents, ticket.assignee_id), updated_at=updated_at
                ),
                "kind": str(event.kind),
                "changes": event.changes,
                "actor": user_person(actor),
            },
            streams=_ticket_streams(ticket, [ticket.assignee_id]),
        )


# --- Interactions --------------------------------------------------------------------------------


def _customer_name(ticket: Ticket, interaction: Interaction) -> str:
    """The customer's display name, else the identity's own name or value (a query at most)."""
    identity = interaction.author_identity
    assert identity is not None  # noqa: S101 - called for customer messages only
    customer: Customer | None = None
    if Identity.customer.is_cached(identity):
        customer = identity.customer
    elif Ticket.customer.is_cached(ticket) and ticket.customer_id == identity.customer_id:
        customer = ticket.customer
    if customer is not None:
        name = customer.display_name
    else:
        name = (
            Customer.objects.filter(pk=identity.customer_id).values_list("display_name", flat=True).first()
            or ""
        )
    return name or identity.display_name or identity.value


def _author(ticket: Ticket, interaction: Interaction) -> dict[str, Any]:
    if interaction.author_identity_id is not None:
        return {"kind": "customer", "name": _customer_name(ticket, interaction)}
    if interaction.author_user_id is not None and interaction.author_user is not None:
        return {"kind": "agent", "name": interaction.author_user.get_full_name()}
    return {"kind": "system", "name": None}


def publish_interaction_added(*, ticket: Ticket, interaction: Interaction) -> None:
    """``interaction.added`` to the ticket's stream and its assignee's, after the commit. For a newly
    stored interaction only (not an idempotent repeat). Internal notes too: streams are staff-only."""
    publish_on_commit(
        event_type="interaction.added",
        tenant_id=ticket.tenant_id,
        data={
            "ticket": ticket_ref(ticket),
            "interaction": {
                "id": interaction.pk,
                "channel": str(interaction.channel),
                "direction": str(interaction.direction),
                "author": _author(ticket, interaction),
                "preview": interaction.body_text[:PREVIEW_LENGTH],
                "occurred_at": timestamp(interaction.occurred_at),
            },
        },
        streams=[
            streams.ticket_stream(ticket.pk),
            *([streams.agent_stream(ticket.assignee_id)] if ticket.assignee_id is not None else []),
        ],
    )
