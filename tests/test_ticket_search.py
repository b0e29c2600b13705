"""care.tickets.search: language configurations, exact hits, tenant isolation, notes, junk queries."""

from __future__ import annotations

import pytest
from django.db import connection

from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets import search
from care.tickets.models import Direction
from care.tickets.search import MAX_QUERY_LENGTH, SEARCH_CONFIGS, search_config, ticket_search
from care.tickets.services import interaction_add, ticket_update
from tests.factories.accounts import make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def refs(result):
    return [hit.ticket.reference for hit in result.hits]


def entry(ticket, text, direction=Direction.INBOUND):
    interaction, _ = interaction_add(
        ticket=ticket, channel=Channel.EMAIL, direction=direction, body_text=text
    )
    return interaction


@pytest.fixture
def english_tenant(db):
    return TenantFactory(
        name="Acme UK",
        slug="acme-uk",
        code="ACUK",
        default_language="en",
        supported_languages=["en"],
        holiday_country="GB",
    )


def test_sql_and_python_configurations_agree():
    codes = [*SEARCH_CONFIGS, "xx", "de-AT", "", "EN"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, care_search_config(code)::text FROM unnest(%s::text[]) AS c(code)", [codes]
        )
        in_sql = dict(cursor.fetchall())
    assert {code: in_sql[code] for code in codes} == {code: search_config(code) for code in codes}
    assert search_config("de") == "german"
    assert search_config("nb") == search_config("no") == "norwegian"
    assert search_config("xx") == "simple"


def test_german_stemming_finds_plural_by_singular(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Frage", language="de")
    entry(ticket, "Ich habe zwei Rechnungen bekommen.")
    result = ticket_search(user=agent.user, query="Rechnung")
    assert refs(result) == [ticket.reference]
    assert "<mark>Rechnungen</mark>" in result.hits[0].snippet


def test_english_stemming_finds_plural_by_singular(admin_user, english_tenant):
    ticket = make_ticket(tenant=english_tenant, subject="Two invoices for May", language="en")
    result = ticket_search(user=admin_user, query="invoice")
    assert refs(result) == [ticket.reference]
    assert "<mark>invoices</mark>" in result.hits[0].subject


def test_english_query_finds_english_ticket_of_a_german_tenant(agent, tenant_a):
    english = make_ticket(tenant=tenant_a, subject="Question", language="en")
    entry(english, "I received two invoices this month.")
    german = make_ticket(tenant=tenant_a, subject="Frage", language="de")
    entry(german, "Der Zählerstand ist falsch.")
    assert refs(ticket_search(user=agent.user, query="invoice")) == [english.reference]
    assert refs(ticket_search(user=agent.user, query="Zählerstände")) == [german.reference]


def test_changing_the_language_reindexes_the_timeline(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Frage", language="en")
    entry(ticket, "Zwei Rechnungen")
    ticket_update(ticket=ticket, actor=None, language="de")
    assert refs(ticket_search(user=agent.user, query="Rechnung")) == [ticket.reference]


def test_one_row_per_ticket_newest_first_and_keyset_pages(agent, tenant_a):
    tickets = [make_ticket(tenant=tenant_a, subject=f"Zähler {n}") for n in range(5)]
    for ticket in tickets:
        entry(ticket, "Zähler kaputt")
        entry(ticket, "Noch einmal: Zähler kaputt")
    first = ticket_search(user=agent.user, query="Zähler", limit=3)
    assert refs(first) == [t.reference for t in reversed(tickets)][:3]
    assert first.next_before == tickets[2].pk
    second = ticket_search(user=agent.user, query="Zähler", limit=3, before=first.next_before)
    assert refs(second) == [tickets[1].reference, tickets[0].reference]
    assert second.next_before is None


def test_filters_by_status_and_tenant(admin_user, tenant_a, tenant_b):
    new = make_ticket(tenant=tenant_a, subject="Störung Nord")
    other = make_ticket(tenant=tenant_b, subject="Störung Süd")
    assert set(refs(ticket_search(user=admin_user, query="Störung"))) == {new.reference, other.reference}
    assert refs(ticket_search(user=admin_user, query="Störung", tenant_id=tenant_a.pk)) == [new.reference]
    assert refs(ticket_search(user=admin_user, query="Störung", statuses=["solved"])) == []
    assert refs(ticket_search(user=admin_user, query="Störung", tenant_id=tenant_a.pk, statuses=["new"])) == [
        new.reference
    ]


def test_never_a_hit_from_another_tenant(agent, tenant_a, tenant_b):
    mine = make_ticket(tenant=tenant_a, subject="Kündigung")
    customer_b = CustomerFactory(tenant=tenant_b)
    IdentityFactory(customer=customer_b, value="shared@example.com")
    IdentityFactory(customer=customer_b, kind="phone", value="+4930123456")
    theirs = make_ticket(tenant=tenant_b, customer=customer_b, subject="Kündigung")
    entry(theirs, "Kündigung geheim")
    user = agent.user
    assert refs(ticket_search(user=user, query="Kündigung")) == [mine.reference]
    assert refs(ticket_search(user=user, query="geheim")) == []
    assert refs(ticket_search(user=user, query=theirs.reference)) == []
    assert refs(ticket_search(user=user, query="shared@example.com")) == []
    assert refs(ticket_search(user=user, query="+49 30 123456")) == []
    # Asking for the other tenant explicitly narrows to nothing, it does not widen.
    assert refs(ticket_search(user=user, query="Kündigung", tenant_id=tenant_b.pk)) == []
    assert refs(ticket_search(user=user, query="geheim", tenants=[tenant_a, tenant_b])) == []


def test_reference_jumps_to_the_ticket(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Irgendwas")
    result = ticket_search(user=agent.user, query=f"  {ticket.reference.lower()} ")
    assert result.kind == "reference"
    assert result.jump_to == ticket


def test_email_and_phone_list_the_customers_tickets(agent, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    IdentityFactory(customer=customer, value="greta@example.com")
    IdentityFactory(customer=customer, kind="phone", value="+4930123456")
    older = make_ticket(tenant=tenant_a, customer=customer, subject="Eins")
    newer = make_ticket(tenant=tenant_a, customer=customer, subject="Zwei")
    make_ticket(tenant=tenant_a, subject="Jemand anders")
    by_email = ticket_search(user=agent.user, query="Greta@Example.com")
    assert by_email.kind == "identity"
    assert refs(by_email) == [newer.reference, older.reference]
    # National format read with the tenant's region (DE), and E.164 with spaces.
    assert refs(ticket_search(user=agent.user, query="030 123456")) == [newer.reference, older.reference]
    assert refs(ticket_search(user=agent.user, query="+49 30 123456")) == [newer.reference, older.reference]


def test_internal_notes_are_searchable_for_staff_only_when_asked(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Frage")
    entry(ticket, "Kunde ist ungeduldig", direction=Direction.NOTE)
    with_notes = ticket_search(user=agent.user, query="ungeduldig")
    assert refs(with_notes) == [ticket.reference]
    assert with_notes.hits[0].snippet_is_note
    assert refs(ticket_search(user=agent.user, query="ungeduldig", include_notes=False)) == []


def test_snippets_are_escaped(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="<script>alert(1)</script> Zähler")
    entry(ticket, "<img src=x onerror=alert(1)> Zähler \x02kaputt\x03")
    hit = ticket_search(user=agent.user, query="Zähler").hits[0]
    assert "<script>" not in hit.subject
    assert "&lt;script&gt;" in hit.subject
    assert hit.snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "<mark>Zähler</mark>" in hit.snippet
    assert "<mark>kaputt</mark>" not in hit.snippet


@pytest.mark.parametrize(
    "query", ['"', '""', "- - or", "!!! ((", "&|!:*", "'", "\x00", "foo\x00bar", "a:* & b", "<->", "NOT"]
)
def test_junk_queries_give_empty_results_not_errors(agent, tenant_a, query):
    make_ticket(tenant=tenant_a, subject="foo bar")
    result = ticket_search(user=agent.user, query=query)
    assert result.kind in {"empty", "text"}
    assert all(hit.ticket.tenant_id == tenant_a.pk for hit in result.hits)


def test_empty_and_too_long_queries(agent, tenant_a):
    assert ticket_search(user=agent.user, query="   ").kind == "empty"
    assert "word" in ticket_search(user=agent.user, query="--- ?").message
    with pytest.raises(BusinessRuleViolation, match=str(MAX_QUERY_LENGTH)):
        ticket_search(user=agent.user, query="x" * 10_000)


def test_users_without_tenants_find_nothing(outsider, tenant_a):
    make_ticket(tenant=tenant_a, subject="Zähler")
    assert ticket_search(user=outsider.user, query="Zähler").hits == []


@pytest.mark.parametrize("mode", ["per_tenant", "any_tenant", "every_tenant"])
def test_matches_below_the_window_are_found_through_the_index(
    monkeypatch, admin_user, tenant_a, tenant_b, mode
):
    """The newest WINDOW tickets are checked directly, older ones through the GIN indexes: with a
    window of two tickets every part of the id query is used, in each of its three scope forms."""
    monkeypatch.setattr(search, "WINDOW_PER_TENANT", 2)
    monkeypatch.setattr(search, "WINDOW_GLOBAL", 2)
    if mode == "any_tenant":
        monkeypatch.setattr(search, "PER_TENANT_MAX", 1)
    old_subject = make_ticket(tenant=tenant_a, subject="Rechnungen doppelt")
    old_entry = make_ticket(tenant=tenant_a, subject="Frage")
    entry(old_entry, "Zwei Rechnungen")
    old_note = make_ticket(tenant=tenant_b, subject="Pregunta")
    entry(old_note, "Rechnung intern", direction=Direction.NOTE)
    for _ in range(3):
        make_ticket(tenant=tenant_a, subject="Nichts")
        make_ticket(tenant=tenant_b, subject="Nada")
    newest = make_ticket(tenant=tenant_a, subject="Rechnung neu")
    user = admin_user if mode == "every_tenant" else make_agent(tenants=[tenant_a, tenant_b]).user
    result = ticket_search(user=user, query="Rechnung", limit=3)
    assert refs(result) == [newest.reference, old_note.reference, old_entry.reference]
    rest = ticket_search(user=user, query="Rechnung", limit=3, before=result.next_before)
    assert refs(rest) == [old_subject.reference]
    opened = ticket_search(user=user, query="Rechnung", statuses=["new"], limit=10)
    assert refs(opened) == [newest.reference, old_note.reference, old_entry.reference, old_subject.reference]
    no_notes = ticket_search(user=user, query="Rechnung", include_notes=False)
    assert old_note.reference not in refs(no_notes)
