"""The admin works for the superuser: every page of every registered model answers, bad input is a form
error (never a 500), bulk actions do their job or say why not, and list pages cost a fixed number of
queries however many rows they show.

Pages are found through ``admin.site._registry``, so a newly registered model is covered as soon as
``every_model_row`` can give one of its rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from care.accounts.models import Agent, Role, Shift, Team, User
from care.contacts.models import Customer, Identity
from care.contacts.services import customers_merge
from care.core.languages import Proficiency
from care.tenants.models import ServiceHours, Tenant
from care.tickets.models import Interaction, Ticket, TicketEvent
from care.tickets.services import ticket_assign, ticket_change_status
from tests.factories.accounts import TeamFactory, make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tenants import TenantFactory, TenantGroupFactory
from tests.factories.tickets import make_ticket

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
every_registered_model = pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def model_admin(model):
    return admin.site._registry[model]


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def admin_request(rf, admin_user):
    """A request by the superuser, to ask a ModelAdmin what it allows."""
    request = rf.get("/")
    request.user = admin_user
    return request


@pytest.fixture
def every_model_row(tenant_rows, tenant_a, admin_user, agent):
    """A row of every registered model, keyed by model; fails for a model it has no row of, so
    that a newly registered model gets one here (and with it every page test below)."""
    TeamFactory(name="Energie Nord in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_a)
    group = TenantGroupFactory(name="Nordic JV", slug="nordic-jv")
    Group.objects.create(name="Supervisors")
    Tenant.objects.filter(pk=tenant_a.pk).update(group=group)
    now = timezone.now()
    Shift.objects.create(agent=agent, starts_at=now, ends_at=now + dt.timedelta(hours=8))
    rows = {}
    for model in REGISTERED:
        row = model._default_manager.order_by("pk").first()
        assert row is not None, f"every_model_row makes no {model._meta.label}: add one with its factory"
        rows[model] = row
    return rows


def post_unchanged(client, admin_post_data, url: str, **overrides):
    """Send an admin page's own form back, with ``overrides``."""
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, admin_post_data(page, **overrides))


def form_errors(response) -> dict[str, list[str]]:
    """Errors of the main form and of every inline form, as ``{field: messages}``."""
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    errors = dict(response.context["adminform"].form.errors)
    for inline in response.context["inline_admin_formsets"]:
        for form_errors_ in inline.formset.errors:
            errors.update(form_errors_)
        if inline.formset.non_form_errors():
            errors.setdefault("__all__", []).extend(inline.formset.non_form_errors())
    return errors


# --- Every page answers -------------------------------------------------------------------------


@every_registered_model
def test_changelist_answers(superuser_client, every_model_row, model):
    response = superuser_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


@every_registered_model
@pytest.mark.parametrize("term", ["Energie", "ENN-1", "o'brien 100%_", "+49 30 1234567", "ü"])
def test_changelist_search_answers(superuser_client, every_model_row, model, term):
    response = superuser_client.get(admin_url(model, "changelist"), {"q": term})
    assert response.status_code == 200


@every_registered_model
def test_every_filter_choice_of_a_changelist_answers(superuser_client, every_model_row, model):
    url = admin_url(model, "changelist")
    changelist = superuser_client.get(url).context["cl"]
    query_strings = {
        choice["query_string"] for spec in changelist.filter_specs for choice in spec.choices(changelist)
    }
    for query_string in query_strings:
        assert superuser_client.get(url + query_string).status_code == 200, query_string


@every_registered_model
def test_add_page_answers(superuser_client, every_model_row, admin_request, model):
    allowed = model_admin(model).has_add_permission(admin_request)
    response = superuser_client.get(admin_url(model, "add"))
    assert response.status_code == (200 if allowed else 403)


@every_registered_model
@pytest.mark.parametrize("view", ["change", "history"])
def test_change_and_history_pages_answer(superuser_client, every_model_row, model, view):
    response = superuser_client.get(admin_url(model, view, every_model_row[model].pk))
    assert response.status_code == 200


@every_registered_model
def test_delete_page_answers_or_refuses(superuser_client, every_model_row, admin_request, model):
    row = every_model_row[model]
    allowed = model_admin(model).has_delete_permission(admin_request, row)
    response = superuser_client.get(admin_url(model, "delete", row.pk))
    assert response.status_code == (200 if allowed else 403)


@every_registered_model
def test_saving_a_change_page_unchanged_works(superuser_client, admin_post_data, every_model_row, model):
    row = every_model_row[model]
    url = admin_url(model, "change", row.pk)
    page = superuser_client.get(url)
    response = superuser_client.post(url, admin_post_data(page))
    if not page.context["has_change_permission"]:
        assert response.status_code == 403
        return
    assert response.status_code == 302, form_errors(response)


# --- Search -------------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["ENN-1", "enn-1", " ENN-1 "])
def test_ticket_search_by_reference_finds_the_ticket(superuser_client, tenant_rows, tenant_a, term):
    response = superuser_client.get(admin_url(Ticket, "changelist"), {"q": term})
    assert list(response.context["cl"].result_list) == [tenant_rows[Ticket][tenant_a.pk]]


def test_ticket_search_by_subject_and_customer_address(superuser_client, tenant_rows, tenant_a):
    mine = tenant_rows[Ticket][tenant_a.pk]
    customers_tickets = set(Ticket.objects.filter(customer=mine.customer))
    assert len(customers_tickets) == 2  # the ticket and its follow-up (see conftest)
    response = superuser_client.get(admin_url(Ticket, "changelist"), {"q": "ENN ticket"})
    assert list(response.context["cl"].result_list) == [mine]
    for term in ["ENN customer", "someone@energie-nord.test"]:
        response = superuser_client.get(admin_url(Ticket, "changelist"), {"q": term})
        assert set(response.context["cl"].result_list) == customers_tickets, term


# --- Query counts -------------------------------------------------------------------------------


def make_tickets(count: int, tenant, agent) -> None:
    for n in range(count):
        ticket = make_ticket(tenant=tenant, subject=f"Ticket {n}")
        ticket_assign(ticket=ticket, agent=agent, actor=None)


def make_customers(count: int, tenant, agent) -> None:
    for n in range(count):
        customer = CustomerFactory(tenant=tenant, display_name=f"Customer {n}")
        IdentityFactory(customer=customer)


def make_agents(count: int, tenant, agent) -> None:
    other = TenantFactory(name=f"Other {count}", slug=f"other-{count}", code=f"OT{count}")
    for n in range(count):
        make_agent(
            tenants=[tenant, other],
            email=f"agent{count}-{n}@care.test",
            languages=(("de", Proficiency.NATIVE), ("en", Proficiency.C1)),
        )


def changelist_queries(client, model) -> int:
    client.get(admin_url(model, "changelist"))  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    return len(queries.captured_queries)


# Each page: session and user (2), then
# - tickets: tenant and team filter choices, count, page, the tenants' languages (language filter);
# - customers: tenant filter choices, count, page, languages;
# - agents: team filter choices, two counts (filtered and total), page, languages and
#   authorisations prefetched, language filter values.
@pytest.mark.parametrize(
    ("model", "make_rows", "pinned"),
    [(Ticket, make_tickets, 7), (Customer, make_customers, 6), (Agent, make_agents, 9)],
    ids=["tickets", "customers", "agents"],
)
def test_changelist_query_count_does_not_grow_with_rows(
    superuser_client, tenant_a, agent, model, make_rows, pinned
):
    make_rows(5, tenant_a, agent)
    few = changelist_queries(superuser_client, model)
    make_rows(25, tenant_a, agent)
    many = changelist_queries(superuser_client, model)
    assert model.objects.count() >= 30
    assert (few, many) == (pinned, pinned)


@pytest.mark.parametrize(
    "drilldown",
    [{}, {"created_at__year": 2026}, {"created_at__year": 2026, "created_at__month": 11}],
    ids=["all", "year", "month"],
)
def test_ticket_date_hierarchy_answers(superuser_client, tenant_rows, drilldown):
    assert superuser_client.get(admin_url(Ticket, "changelist"), drilldown).status_code == 200


# --- Bad input is a form error ------------------------------------------------------------------

VALID_TENANT = {
    "name": "Agua Este",
    "slug": "agua-este",
    "code": "AGE",
    "colour": "#0ea5e9",
    "is_active": "on",
    "default_language": "es",
    "supported_languages": "es,en",
    "time_zone": "Europe/Madrid",
    "holiday_country": "ES",
    "holiday_subdivision": "",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_zone", "Mars/Olympus"),
        ("default_language", "xx"),
        ("supported_languages", "es,xx"),
        ("supported_languages", "en"),  # must include the default language
        ("holiday_country", "XX"),
        ("holiday_subdivision", "ZZ"),
        ("colour", "red"),
        ("colour", "#12345g"),
        ("code", "age"),
        ("code", "ENN"),  # taken by tenant A
    ],
)
def test_bad_tenant_settings_are_form_errors(superuser_client, admin_post_data, tenant_a, field, value):
    page = superuser_client.get(admin_url(Tenant, "add"))
    response = superuser_client.post(
        admin_url(Tenant, "add"), admin_post_data(page, **{**VALID_TENANT, field: value})
    )
    assert field in form_errors(response)
    assert not Tenant.objects.filter(slug="agua-este").exists()


def test_valid_tenant_is_created(superuser_client, admin_post_data):
    page = superuser_client.get(admin_url(Tenant, "add"))
    response = superuser_client.post(admin_url(Tenant, "add"), admin_post_data(page, **VALID_TENANT))
    assert response.status_code == 302, form_errors(response)
    assert Tenant.objects.get(code="AGE").holiday_country == "ES"


@pytest.mark.parametrize(("field", "value"), [("time_zone", "Mars/Olympus"), ("holiday_subdivision", "XX")])
def test_bad_settings_on_an_existing_tenant_are_form_errors(
    superuser_client, admin_post_data, tenant_a, field, value
):
    response = post_unchanged(
        superuser_client, admin_post_data, admin_url(Tenant, "change", tenant_a.pk), **{field: value}
    )
    assert field in form_errors(response)
    tenant_a.refresh_from_db()
    assert tenant_a.time_zone == "Europe/Berlin"


def test_service_hours_closing_before_opening_are_a_form_error(superuser_client, admin_post_data, tenant_a):
    page = superuser_client.get(admin_url(ServiceHours, "add"))
    data = admin_post_data(page, tenant=tenant_a.pk, weekday=1, opens_at="18:00", closes_at="08:00")
    response = superuser_client.post(admin_url(ServiceHours, "add"), data)
    assert "closes_at" in form_errors(response)
    assert not ServiceHours.objects.exists()


def test_service_hours_inline_closing_before_opening_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a
):
    url = admin_url(Tenant, "change", tenant_a.pk)
    response = post_unchanged(
        superuser_client, admin_post_data, url, **{"servicehours_set-0-closes_at": "07:00"}
    )
    assert "closes_at" in form_errors(response)


def test_service_hours_starting_twice_the_same_day_are_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a
):
    """Tenant A opens Mondays at 08:00 already (``tenant_rows``)."""
    page = superuser_client.get(admin_url(ServiceHours, "add"))
    data = admin_post_data(page, tenant=tenant_a.pk, weekday=0, opens_at="08:00", closes_at="12:00")
    assert "__all__" in form_errors(superuser_client.post(admin_url(ServiceHours, "add"), data))
    on_tenant_page = {
        "servicehours_set-TOTAL_FORMS": 2,
        "servicehours_set-1-weekday": 0,
        "servicehours_set-1-opens_at": "08:00",
        "servicehours_set-1-closes_at": "09:00",
    }
    url = admin_url(Tenant, "change", tenant_a.pk)
    assert "__all__" in form_errors(post_unchanged(superuser_client, admin_post_data, url, **on_tenant_page))
    assert ServiceHours.objects.filter(tenant=tenant_a).count() == 1


@pytest.mark.parametrize("value", ["12345abc", "not a number", "+49 1"])
def test_identity_with_a_bad_phone_number_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a, value
):
    customer = tenant_rows[Customer][tenant_a.pk]
    page = superuser_client.get(admin_url(Identity, "add"))
    data = admin_post_data(page, tenant=tenant_a.pk, customer=customer.pk, kind="phone", value=value)
    response = superuser_client.post(admin_url(Identity, "add"), data)
    assert "value" in form_errors(response)
    assert not Identity.objects.filter(kind="phone").exists()


def test_identity_phone_is_stored_normalised(superuser_client, admin_post_data, tenant_rows, tenant_a):
    customer = tenant_rows[Customer][tenant_a.pk]
    page = superuser_client.get(admin_url(Identity, "add"))
    data = admin_post_data(page, tenant=tenant_a.pk, customer=customer.pk, kind="phone", value="030 1234567")
    response = superuser_client.post(admin_url(Identity, "add"), data)
    assert response.status_code == 302, form_errors(response)
    assert Identity.objects.get(kind="phone").value == "+49301234567"


def test_identity_of_another_tenants_customer_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a, tenant_b
):
    page = superuser_client.get(admin_url(Identity, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        customer=tenant_rows[Customer][tenant_b.pk].pk,
        kind="email",
        value="x@y.test",
    )
    assert "customer" in form_errors(superuser_client.post(admin_url(Identity, "add"), data))


@pytest.mark.parametrize(
    ("kind", "value", "error_on"),
    [
        ("phone", "12345abc", "value"),
        ("email", "someone@energie-nord.test", "__all__"),  # A's first customer has it
        ("email", "SOMEONE@energie-nord.test", "__all__"),
    ],
)
def test_bad_or_taken_identity_in_the_customer_page_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a, kind, value, error_on
):
    other = CustomerFactory(tenant=tenant_a, display_name="Other customer")
    url = admin_url(Customer, "change", other.pk)
    response = post_unchanged(
        superuser_client,
        admin_post_data,
        url,
        **{"identities-TOTAL_FORMS": 1, "identities-0-kind": kind, "identities-0-value": value},
    )
    assert error_on in form_errors(response)
    assert not other.identities.exists()


def test_new_customer_with_a_taken_identity_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a
):
    page = superuser_client.get(admin_url(Customer, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        display_name="Duplicate",
        **{
            "identities-TOTAL_FORMS": 1,
            "identities-0-kind": "email",
            "identities-0-value": "someone@energie-nord.test",
        },
    )
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert "__all__" in form_errors(response)
    assert not Customer.objects.filter(display_name="Duplicate").exists()


def test_one_address_typed_twice_on_a_customer_page_is_a_form_error(
    superuser_client, admin_post_data, tenant_a
):
    page = superuser_client.get(admin_url(Customer, "add"))
    twice = {
        "identities-TOTAL_FORMS": 2,
        "identities-0-kind": "email",
        "identities-0-value": "Twice@Example.com",
        "identities-1-kind": "email",
        "identities-1-value": "twice@example.com",
    }
    data = admin_post_data(page, tenant=tenant_a.pk, display_name="Twice", **twice)
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert "twice@example.com is listed twice." in form_errors(response)["__all__"]
    assert not Customer.objects.filter(display_name="Twice").exists()


def test_new_customer_with_identities_is_created(superuser_client, admin_post_data, tenant_a):
    page = superuser_client.get(admin_url(Customer, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        display_name="Neue Kundin",
        **{
            "identities-TOTAL_FORMS": 2,
            "identities-0-kind": "email",
            "identities-0-value": "Neue@Example.com",
            "identities-1-kind": "phone",
            "identities-1-value": "030 7654321",
        },
    )
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert response.status_code == 302, form_errors(response)
    customer = Customer.objects.get(display_name="Neue Kundin")
    assert {(i.tenant_id, i.value) for i in customer.identities.all()} == {
        (tenant_a.pk, "neue@example.com"),
        (tenant_a.pk, "+49307654321"),
    }


@pytest.mark.parametrize(
    ("kind", "with_tenant", "field"),
    [("in_house", False, "tenant"), ("provider", True, "tenant")],
    ids=["in-house team without tenant", "provider team with a tenant"],
)
def test_team_tenant_must_match_its_kind(
    superuser_client, admin_post_data, tenant_a, kind, with_tenant, field
):
    page = superuser_client.get(admin_url(Team, "add"))
    data = admin_post_data(page, name="Crew", kind=kind, tenant=tenant_a.pk if with_tenant else None)
    assert field in form_errors(superuser_client.post(admin_url(Team, "add"), data))
    assert not Team.objects.filter(name="Crew").exists()


def test_portal_user_without_tenant_is_a_form_error(superuser_client, admin_post_data):
    page = superuser_client.get(admin_url(User, "add"))
    data = admin_post_data(
        page, email="client@example.com", role=Role.PORTAL, password1="x9!Lq-2vR#m", password2="x9!Lq-2vR#m"
    )
    assert "portal_tenant" in form_errors(superuser_client.post(admin_url(User, "add"), data))
    assert not User.objects.filter(email="client@example.com").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"role": Role.PORTAL, "portal_tenant": None}, "portal_tenant"),
        ({"role": Role.PORTAL, "is_staff": "on"}, "is_staff"),
        ({"role": Role.AGENT}, "portal_tenant"),  # an agent with a portal tenant
        ({"email": "ROOT@care.test"}, "email"),  # the superuser's address in capitals
    ],
    ids=["portal without tenant", "portal staff", "agent with portal tenant", "taken email"],
)
def test_bad_user_changes_are_form_errors(
    superuser_client, admin_post_data, portal_user, admin_user, tenant_a, changes, field
):
    url = admin_url(User, "change", portal_user.pk)
    response = post_unchanged(superuser_client, admin_post_data, url, **changes)
    assert field in form_errors(response), form_errors(response)
    portal_user.refresh_from_db()
    assert (portal_user.role, portal_user.portal_tenant_id) == (Role.PORTAL, tenant_a.pk)


# --- Tickets through the admin: rules and audit -------------------------------------------------


@pytest.fixture
def ticket(tenant_rows, tenant_a):
    return tenant_rows[Ticket][tenant_a.pk]


def post_ticket(client, admin_post_data, ticket, **changes):
    return post_unchanged(client, admin_post_data, admin_url(Ticket, "change", ticket.pk), **changes)


def test_closed_ticket_cannot_be_reopened_and_the_form_says_why(
    superuser_client, admin_post_data, ticket, admin_user
):
    ticket_change_status(ticket=ticket, status="closed", actor=admin_user)
    response = post_ticket(superuser_client, admin_post_data, ticket, status="open")
    assert "status" in form_errors(response)
    assert "A ticket cannot go from Closed to Open" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "closed"


def test_closed_ticket_cannot_be_reassigned(superuser_client, admin_post_data, ticket, admin_user, agent):
    ticket_change_status(ticket=ticket, status="closed", actor=admin_user)
    response = post_ticket(superuser_client, admin_post_data, ticket, assignee=agent.pk)
    assert "assignee" in form_errors(response)


def test_ticket_cannot_go_to_an_agent_of_another_tenant(superuser_client, admin_post_data, ticket, outsider):
    response = post_ticket(superuser_client, admin_post_data, ticket, assignee=outsider.pk)
    assert "assignee" in form_errors(response)
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_ticket_cannot_go_to_an_in_house_team_of_another_tenant(
    superuser_client, admin_post_data, ticket, tenant_b
):
    theirs = TeamFactory(name="Telco Sur in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b)
    response = post_ticket(superuser_client, admin_post_data, ticket, team=theirs.pk)
    assert "team" in form_errors(response)


def test_new_ticket_for_a_merged_away_customer_is_a_form_error(
    superuser_client, admin_post_data, tenant_rows, tenant_a
):
    survivor = tenant_rows[Customer][tenant_a.pk]
    merged = CustomerFactory(tenant=tenant_a, display_name="Merged away")
    customers_merge(source=merged, target=survivor)
    page = superuser_client.get(admin_url(Ticket, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        customer=merged.pk,
        channel="email",
        subject="New",
        language="de",
        priority=2,
    )
    assert "customer" in form_errors(superuser_client.post(admin_url(Ticket, "add"), data))


def test_new_ticket_must_start_as_new(superuser_client, admin_post_data, tenant_rows, tenant_a):
    page = superuser_client.get(admin_url(Ticket, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        customer=tenant_rows[Customer][tenant_a.pk].pk,
        channel="email",
        subject="New",
        language="de",
        priority=2,
        status="solved",
    )
    assert "status" in form_errors(superuser_client.post(admin_url(Ticket, "add"), data))


def test_saving_a_ticket_records_the_change_with_its_actor(
    superuser_client, admin_post_data, ticket, admin_user, agent
):
    response = post_ticket(
        superuser_client,
        admin_post_data,
        ticket,
        subject="Meter reading still wrong",
        priority=3,
        assignee=agent.pk,
    )
    assert response.status_code == 302, form_errors(response)
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority, ticket.assignee, ticket.status) == (
        "Meter reading still wrong",
        3,
        agent,
        "open",
    )
    events = {e.kind: e for e in ticket.events.exclude(kind=TicketEvent.Kind.CREATED)}
    assert {TicketEvent.Kind.UPDATED, TicketEvent.Kind.ASSIGNED} <= set(events)
    assert {e.actor for e in events.values()} == {admin_user}
    assert events[TicketEvent.Kind.UPDATED].changes["subject"] == ["ENN ticket", "Meter reading still wrong"]
    assert events[TicketEvent.Kind.UPDATED].changes["priority"] == [2, 3]
    assert events[TicketEvent.Kind.ASSIGNED].changes == {"assignee": [None, agent.pk]}


def test_status_change_through_the_admin_is_audited(superuser_client, admin_post_data, ticket, admin_user):
    response = post_ticket(superuser_client, admin_post_data, ticket, status="pending")
    assert response.status_code == 302, form_errors(response)
    event = ticket.events.get(kind=TicketEvent.Kind.STATUS)
    assert (event.actor, event.changes) == (admin_user, {"status": ["new", "pending"]})


def test_ticket_added_through_the_admin_gets_a_reference_and_an_audit_event(
    superuser_client, admin_post_data, tenant_rows, tenant_a, admin_user, agent
):
    next_number = Ticket.objects.filter(tenant=tenant_a).count() + 1
    page = superuser_client.get(admin_url(Ticket, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        customer=tenant_rows[Customer][tenant_a.pk].pk,
        channel="phone",
        subject="Called about a bill",
        language="de",
        priority=2,
        assignee=agent.pk,
    )
    response = superuser_client.post(admin_url(Ticket, "add"), data)
    assert response.status_code == 302, form_errors(response)
    created = Ticket.objects.get(subject="Called about a bill")
    assert created.reference == f"ENN-{next_number}"
    assert created.assignee == agent
    kinds = [e.kind for e in created.events.order_by("id")]
    assert kinds[:2] == [TicketEvent.Kind.CREATED, TicketEvent.Kind.ASSIGNED]
    assert {e.actor for e in created.events.all()} == {admin_user}


def test_interactions_are_read_only_in_the_admin(superuser_client, tenant_rows, tenant_a, tenant_b):
    interaction = tenant_rows[Interaction][tenant_a.pk]
    url = admin_url(Interaction, "change", interaction.pk)
    assert superuser_client.get(url).status_code == 200
    response = superuser_client.post(
        url, {"ticket": tenant_rows[Ticket][tenant_b.pk].pk, "body_text": "edited"}
    )
    assert response.status_code == 403
    interaction.refresh_from_db()
    assert (interaction.ticket_id, interaction.body_text) == (
        tenant_rows[Ticket][tenant_a.pk].pk,
        "ENN message",
    )


# --- Bulk actions -------------------------------------------------------------------------------


def run_action(client, model, action: str, rows):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


@pytest.fixture
def three_tickets(tenant_a, agent):
    tickets = [make_ticket(tenant=tenant_a, subject=f"Bulk {n}") for n in range(3)]
    for ticket in tickets:
        ticket_assign(ticket=ticket, agent=agent, actor=None)
    return tickets


def statuses(tickets) -> list[str]:
    return [Ticket.objects.get(pk=t.pk).status for t in tickets]


def test_mark_solved_solves_open_tickets(superuser_client, three_tickets, admin_user):
    response = run_action(superuser_client, Ticket, "mark_solved", three_tickets)
    assert response.status_code == 200
    assert statuses(three_tickets) == ["solved"] * 3
    assert "3 tickets updated." in messages_of(response)
    assert TicketEvent.objects.filter(kind=TicketEvent.Kind.STATUS, actor=admin_user).count() == 3


def test_mark_solved_refuses_a_closed_ticket_with_a_message(superuser_client, three_tickets):
    closed = ticket_change_status(ticket=three_tickets[0], status="closed", actor=None)
    response = run_action(superuser_client, Ticket, "mark_solved", three_tickets)
    assert response.status_code == 200
    assert statuses(three_tickets) == ["closed", "solved", "solved"]
    messages = messages_of(response)
    assert "2 tickets updated." in messages
    assert f"{closed.reference}: A ticket cannot go from Closed to Solved." in " ".join(messages), messages


def test_mark_closed_leaves_closed_tickets_alone(superuser_client, three_tickets):
    ticket_change_status(ticket=three_tickets[0], status="closed", actor=None)
    response = run_action(superuser_client, Ticket, "mark_closed", three_tickets)
    assert statuses(three_tickets) == ["closed"] * 3
    assert "2 tickets updated." in messages_of(response)
    assert (
        three_tickets[0].events.filter(kind=TicketEvent.Kind.STATUS, changes__status__1="closed").count() == 1
    )


def test_unassign_clears_assignees_and_refuses_closed_tickets(superuser_client, three_tickets):
    closed = ticket_change_status(ticket=three_tickets[0], status="closed", actor=None)
    response = run_action(superuser_client, Ticket, "unassign", three_tickets)
    assert response.status_code == 200
    assignees = [Ticket.objects.get(pk=t.pk).assignee_id for t in three_tickets]
    assert assignees[1:] == [None, None]
    assert assignees[0] is not None
    messages = messages_of(response)
    assert "2 tickets unassigned." in messages
    assert f"{closed.reference}: A closed ticket cannot be assigned." in messages


def test_merge_into_oldest_merges_customers_and_moves_their_tickets(superuser_client, tenant_a):
    oldest, *others = [CustomerFactory(tenant=tenant_a, display_name=f"Dup {n}") for n in range(3)]
    tickets = [make_ticket(tenant=tenant_a, customer=c) for c in others]
    response = run_action(superuser_client, Customer, "merge_into_oldest", [*others, oldest])
    assert response.status_code == 200
    assert "2 customers merged into Dup 0." in messages_of(response)
    assert {Customer.objects.get(pk=c.pk).merged_into_id for c in others} == {oldest.pk}
    assert {Ticket.objects.get(pk=t.pk).customer_id for t in tickets} == {oldest.pk}


def merged_away_into(target: Customer) -> Customer:
    source = CustomerFactory(tenant=target.tenant)
    customers_merge(source=source, target=target)
    return source


@pytest.mark.parametrize(
    "selection",
    [
        lambda first, other_tenant: [first, CustomerFactory(tenant=other_tenant)],
        lambda first, other_tenant: [first, merged_away_into(first)],
        lambda first, other_tenant: [first],
    ],
    ids=["different tenants", "already merged", "only one"],
)
def test_merge_into_oldest_refuses_what_cannot_be_merged(superuser_client, tenant_a, tenant_b, selection):
    customers = selection(CustomerFactory(tenant=tenant_a, display_name="First"), tenant_b)
    before = list(Customer.objects.values_list("pk", "merged_into_id").order_by("pk"))
    response = run_action(superuser_client, Customer, "merge_into_oldest", customers)
    assert response.status_code == 200
    assert {m.level_tag for m in response.context["messages"]} & {"warning", "error"}
    assert list(Customer.objects.values_list("pk", "merged_into_id").order_by("pk")) == before


def test_deactivate_tenants_counts_only_active_ones(superuser_client, tenant_a, tenant_b):
    Tenant.objects.filter(pk=tenant_b.pk).update(is_active=False)
    response = run_action(superuser_client, Tenant, "deactivate", [tenant_a, tenant_b])
    assert response.status_code == 200
    assert "1 tenants deactivated." in messages_of(response)
    assert not Tenant.objects.filter(is_active=True).exists()


def test_deactivated_tenant_disappears_for_its_agents_but_not_for_the_superuser(
    superuser_client, tenant_rows, tenant_a, agent
):
    run_action(superuser_client, Tenant, "deactivate", [tenant_a])
    assert not Ticket.objects.visible_to(User.objects.get(pk=agent.user.pk)).exists()
    response = superuser_client.get(admin_url(Ticket, "changelist"))
    assert tenant_rows[Ticket][tenant_a.pk] in response.context["cl"].result_list


def test_tenants_cannot_be_deleted_in_the_admin(superuser_client, tenant_a):
    response = superuser_client.post(
        admin_url(Tenant, "changelist"), {"action": "delete_selected", "_selected_action": [tenant_a.pk]}
    )
    # delete_selected is not offered: Django answers as for an unknown action.
    assert response.status_code in (200, 302)
    assert Tenant.objects.filter(pk=tenant_a.pk).exists()
