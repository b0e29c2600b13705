from __future__ import annotations

import pytest

from care.tickets.models import Ticket
from care.tickets.services import ticket_change_status
from tests.factories.tickets import make_ticket


@pytest.mark.django_db
def test_ticket_gets_reference_and_visibility(tenant_a, tenant_b, agent, outsider):
    ticket = make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_b)
    assert ticket.reference == "ENN-1"
    assert list(Ticket.objects.visible_to(agent.user)) == [ticket]
    assert ticket not in Ticket.objects.visible_to(outsider.user)
    ticket = ticket_change_status(ticket=ticket, status="solved", actor=agent.user)
    assert ticket.solved_at is not None
