"""Ticket references (``ENN-1``): numbering per tenant, also under concurrent creation, and lookup."""

from __future__ import annotations

import pytest
from django.http import Http404

from care.tickets.models import Ticket, TicketCounter
from care.tickets.selectors import access_ticket, parse_reference
from tests.factories.contacts import CustomerFactory
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads


@pytest.mark.django_db
def test_references_count_up_per_tenant(tenant_a):
    tickets = [make_ticket(tenant=tenant_a) for _ in range(3)]
    assert [t.reference for t in tickets] == ["ENN-1", "ENN-2", "ENN-3"]
    assert TicketCounter.objects.get(tenant=tenant_a).last_number == 3


@pytest.mark.django_db
def test_each_tenant_has_its_own_numbers(tenant_a, tenant_b):
    references = [make_ticket(tenant=tenant).reference for tenant in (tenant_a, tenant_b, tenant_a, tenant_b)]
    assert references == ["ENN-1", "TSU-1", "ENN-2", "TSU-2"]
    assert Ticket.objects.filter(number=1).count() == 2


@pytest.mark.django_db
def test_a_failed_creation_does_not_burn_a_number(tenant_a, tenant_b):
    make_ticket(tenant=tenant_a)
    foreign_customer = CustomerFactory(tenant=tenant_b)
    with pytest.raises(Exception, match="another tenant"):
        make_ticket(tenant=tenant_a, customer=foreign_customer)
    assert make_ticket(tenant=tenant_a).reference == "ENN-2"


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_hands_out_distinct_consecutive_numbers(tenant_a, tenant_b):
    threads, per_thread = 8, 10
    customer = CustomerFactory(tenant=tenant_a)
    make_ticket(tenant=tenant_b)  # another tenant's counter must not interfere

    def create_tickets(_index):
        return [make_ticket(tenant=tenant_a, customer=customer).number for _ in range(per_thread)]

    numbers = [n for batch in run_in_threads(create_tickets, threads) for n in batch]

    assert sorted(numbers) == list(range(1, threads * per_thread + 1))
    assert Ticket.objects.filter(tenant=tenant_a).count() == threads * per_thread
    assert TicketCounter.objects.get(tenant=tenant_a).last_number == threads * per_thread
    assert TicketCounter.objects.get(tenant=tenant_b).last_number == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ENN-42", ("ENN", 42)),
        ("enn-7", ("ENN", 7)),
        ("  ENN-7 ", ("ENN", 7)),
        ("A1B2-3", ("A1B2", 3)),
        ("ABCDEFGHIJ-999999999", ("ABCDEFGHIJ", 999999999)),
    ],
)
def test_parse_reference_reads_code_and_number(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ENN",
        "ENN42",
        "ENN-",
        "-42",
        "E-1",
        "1EN-1",
        "ENN-4a",
        "ENN-1234567890",
        "ABCDEFGHIJK-1",
        "ENN 42",
    ],
)
def test_parse_reference_rejects_what_is_not_a_reference(text):
    assert parse_reference(text) is None


@pytest.mark.django_db
def test_agent_opens_ticket_by_reference_or_id(tenant_a, agent):
    make_ticket(tenant=tenant_a)
    ticket = make_ticket(tenant=tenant_a)

    for lookup in ("ENN-2", "enn-2", " ENN-2 ", ticket.pk, str(ticket.pk)):
        found = access_ticket(agent.user, lookup)
        assert found == ticket, lookup
        assert found.reference == "ENN-2"


@pytest.mark.django_db
def test_outsider_cannot_open_a_ticket_by_reference_or_id(tenant_a, tenant_b, outsider):
    ticket = make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_b)  # TSU-1 exists and is the outsider's; ENN-1 is not

    assert access_ticket(outsider.user, "TSU-1").tenant == tenant_b
    for lookup in ("ENN-1", ticket.pk, str(ticket.pk)):
        with pytest.raises(Http404):
            access_ticket(outsider.user, lookup)


@pytest.mark.django_db
@pytest.mark.parametrize("lookup", ["ENN-99", "TSU-1", "nonsense", "", "²", "٣", "99999999999999999999", -1])
def test_unknown_or_malformed_lookups_answer_404(tenant_a, tenant_b, agent, lookup):
    make_ticket(tenant=tenant_a)
    make_ticket(tenant=tenant_b)
    with pytest.raises(Http404):
        access_ticket(agent.user, lookup)


@pytest.mark.django_db
def test_admin_sees_every_tenants_ticket_by_reference(tenant_a, tenant_b, admin_user):
    make_ticket(tenant=tenant_a)
    ticket_b = make_ticket(tenant=tenant_b)
    assert access_ticket(admin_user, "TSU-1") == ticket_b
