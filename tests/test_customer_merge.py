"""Merging two records of the same customer: identities and tickets move, a tombstone stays."""

from __future__ import annotations

import pytest

from care.contacts.models import Customer, Identity
from care.contacts.selectors import customer_list
from care.contacts.services import (
    customer_create,
    customer_get_or_create_by_identity,
    customers_merge,
    identity_add,
)
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Ticket, TicketEvent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def duplicate(tenant_a):
    """Anna wrote from her phone and later by mail: two records, two tickets on the duplicate."""
    customer = customer_create(tenant=tenant_a, display_name="", notes="Prefers calls in the morning.")
    identity_add(customer=customer, kind="phone", value="030 1234567", is_primary=True)
    identity_add(customer=customer, kind="social", value="@anna", platform="whatsapp")
    return customer


@pytest.fixture
def survivor(tenant_a):
    customer = customer_create(
        tenant=tenant_a, display_name="Anna Schmidt", preferred_language="de", notes="Has two meters."
    )
    identity_add(customer=customer, kind="email", value="anna@example.com", is_primary=True)
    return customer


def test_merge_moves_identities_and_tickets_and_leaves_a_tombstone(tenant_a, duplicate, survivor, agent):
    moved = [make_ticket(tenant=tenant_a, customer=duplicate) for _ in range(2)]
    own = make_ticket(tenant=tenant_a, customer=survivor)

    result = customers_merge(source=duplicate, target=survivor, actor=agent.user)

    assert result == survivor
    assert set(Identity.objects.filter(customer=survivor).values_list("value", flat=True)) == {
        "anna@example.com",
        "+49301234567",
        "anna",
    }
    assert not Identity.objects.filter(customer=duplicate).exists()
    # Only the survivor's own primary identity stays primary.
    assert list(
        Identity.objects.filter(customer=survivor, is_primary=True).values_list("value", flat=True)
    ) == ["anna@example.com"]
    assert set(Ticket.objects.filter(customer=survivor)) == {*moved, own}
    assert not Ticket.objects.filter(customer=duplicate).exists()
    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor


def test_each_moved_ticket_gets_an_audit_event(tenant_a, duplicate, survivor, agent):
    moved = [make_ticket(tenant=tenant_a, customer=duplicate) for _ in range(3)]
    own = make_ticket(tenant=tenant_a, customer=survivor)

    customers_merge(source=duplicate, target=survivor, actor=agent.user)

    events = TicketEvent.objects.filter(kind=TicketEvent.Kind.CUSTOMER_MERGED)
    assert sorted(e.ticket_id for e in events) == sorted(t.pk for t in moved)
    for event in events:
        assert event.changes == {"customer": [duplicate.pk, survivor.pk]}
        assert event.actor == agent.user
        assert event.tenant_id == tenant_a.pk
    assert not events.filter(ticket=own).exists()


def test_merge_without_tickets_writes_no_ticket_events(duplicate, survivor):
    customers_merge(source=duplicate, target=survivor)
    assert not TicketEvent.objects.filter(kind=TicketEvent.Kind.CUSTOMER_MERGED).exists()


def test_survivor_keeps_its_details_and_gains_the_duplicates_notes(tenant_a, survivor):
    duplicate = customer_create(
        tenant=tenant_a, display_name="A. Schmidt", preferred_language="en", notes="Call after 6."
    )

    customers_merge(source=duplicate, target=survivor)

    survivor.refresh_from_db()
    assert survivor.display_name == "Anna Schmidt"
    assert survivor.preferred_language == "de"
    assert survivor.notes == "Has two meters.\n\nCall after 6."


def test_survivor_without_name_takes_the_duplicates(tenant_a, duplicate):
    named = customer_create(tenant=tenant_a, display_name="Anna S.", preferred_language="es")
    customers_merge(source=named, target=duplicate)

    duplicate.refresh_from_db()
    assert (duplicate.display_name, duplicate.preferred_language) == ("Anna S.", "es")
    assert duplicate.notes == "Prefers calls in the morning."


def test_merged_customer_is_found_through_the_survivor(tenant_a, duplicate, survivor, agent):
    customers_merge(source=duplicate, target=survivor)

    found, identity, created = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="phone", value="+49 30 1234567"
    )
    assert (found, created) == (survivor, False)
    assert identity.customer == survivor
    assert list(customer_list(user=agent.user)) == [survivor]


def test_customer_cannot_be_merged_into_itself(survivor):
    with pytest.raises(BusinessRuleViolation, match="cannot be merged into itself"):
        customers_merge(source=survivor, target=survivor)
    survivor.refresh_from_db()
    assert survivor.merged_into is None


def test_customers_of_different_tenants_cannot_be_merged(tenant_b, survivor):
    foreign = customer_create(tenant=tenant_b, display_name="Ana")
    identity_add(customer=foreign, kind="email", value="ana@example.es")
    make_ticket(tenant=tenant_b, customer=foreign)

    for source, target in ((foreign, survivor), (survivor, foreign)):
        with pytest.raises(BusinessRuleViolation, match="different tenants cannot be merged"):
            customers_merge(source=source, target=target)

    assert foreign.identities.count() == 1
    assert Ticket.objects.get(tenant=tenant_b).customer == foreign
    assert not Customer.objects.exclude(merged_into=None).exists()


def test_already_merged_customer_cannot_be_merged_again(tenant_a, duplicate, survivor):
    third = customer_create(tenant=tenant_a, display_name="Anna (3rd record)")
    customers_merge(source=duplicate, target=survivor)

    # ``duplicate`` is the caller's stale object: the service must read the stored state.
    with pytest.raises(BusinessRuleViolation, match="already merged into another one"):
        customers_merge(source=duplicate, target=third)
    with pytest.raises(BusinessRuleViolation, match="itself merged away"):
        customers_merge(source=third, target=duplicate)

    duplicate.refresh_from_db()
    third.refresh_from_db()
    assert duplicate.merged_into == survivor
    assert third.merged_into is None


def test_merged_customer_cannot_get_new_tickets(tenant_a, duplicate, survivor):
    customers_merge(source=duplicate, target=survivor)
    fresh = Customer.objects.get(pk=duplicate.pk)

    # Both a freshly loaded object and the caller's stale one (merged_into not yet set) are refused.
    assert duplicate.merged_into_id is None
    for customer in (fresh, duplicate):
        with pytest.raises(BusinessRuleViolation, match="merged into another one; use that customer"):
            make_ticket(tenant=tenant_a, customer=customer)

    assert not Ticket.objects.filter(customer=duplicate).exists()
    assert make_ticket(tenant=tenant_a, customer=survivor).customer == survivor
