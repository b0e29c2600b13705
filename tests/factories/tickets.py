from __future__ import annotations

from care.core.channels import Channel
from care.tickets.models import Ticket
from care.tickets.services import ticket_create
from tests.factories.contacts import CustomerFactory


def make_ticket(
    *, tenant, customer=None, subject="Meter reading wrong", channel=Channel.EMAIL, **kwargs
) -> Ticket:
    """A ticket created the way Care creates them: through the service, with a reference number."""
    customer = customer or CustomerFactory(tenant=tenant)
    return ticket_create(tenant=tenant, customer=customer, channel=channel, subject=subject, **kwargs)
