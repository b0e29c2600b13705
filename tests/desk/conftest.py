"""A ticket of tenant A with one entry of each kind, for the desk's ticket page tests."""

from __future__ import annotations

import pytest

from care.core.channels import Channel
from care.tickets.models import Direction
from care.tickets.services import interaction_add, ticket_assign
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tickets import make_ticket

CUSTOMER_ADDRESS = "greta@example.com"


@pytest.fixture
def email_ticket(tenant_a, agent):
    """An email ticket of A assigned to ``agent``: the customer wrote, Alice answered and noted."""
    customer = CustomerFactory(tenant=tenant_a, display_name="Greta Kunde")
    identity = IdentityFactory(customer=customer, value=CUSTOMER_ADDRESS)
    ticket = make_ticket(
        tenant=tenant_a, customer=customer, subject="Zählerstand falsch", channel=Channel.EMAIL
    )
    ticket = ticket_assign(ticket=ticket, agent=agent, actor=None)
    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        body_text="Mein Zählerstand ist falsch.\nBitte prüfen.",
        author_identity=identity,
    )
    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        body_text="Wir prüfen das.",
        author_user=agent.user,
    )
    interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.NOTE,
        body_text="Kunde ruft oft an <b>ungeduldig</b>",
        author_user=agent.user,
    )
    return ticket


@pytest.fixture
def phone_ticket(tenant_a):
    return make_ticket(tenant=tenant_a, subject="Rückruf erbeten", channel=Channel.PHONE)


def page_url(ticket, suffix=""):
    return f"/desk/tickets/{ticket.reference}/{suffix}"
