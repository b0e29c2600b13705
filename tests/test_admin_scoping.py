"""The admin site is scoped by tenant: a staff supervisor of tenant A manages A's rows and never sees B's.

The supervisor gets every permission of Care's apps (through a group), so anything they cannot
reach below is refused by tenant scoping, not by a missing permission.
"""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from care.accounts.models import Agent, Skill, Team, TenantAuthorisation, User
from care.contacts.models import Customer, Identity
from care.tenants.models import Guideline, ServiceHours, Tenant, TenantGroup
from care.tickets.models import Ticket, TicketEvent
from tests.factories.accounts import TeamFactory, make_agent
from tests.factories.contacts import CustomerFactory
from tests.factories.tenants import TenantFactory, TenantGroupFactory
from tests.factories.tickets import make_ticket
from tests.helpers import TENANT_OWNED_MODELS as TENANT_OWNED

CARE_APPS = [
    "tenants",
    "accounts",
    "contacts",
    "tickets",
    "routing",
    "sla",
    "calls",
    "connectors",
    "macros",
    "mentions",
]

# Models whose rows belong to one tenant; the supervisor manages A's through the admin.

by_tenant_owned_model = pytest.mark.parametrize("model", TENANT_OWNED, ids=lambda m: m._meta.label)

# Rows that span tenants: only users who see every tenant manage them.
ALL_TENANTS_ONLY = [Tenant, TenantGroup, Team, User]

B_MARKERS = ["Telco Sur", "telco-sur", "TSU-1", "TSU ticket", "TSU customer", "TSU tariffs"]


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def tenant_of(row) -> int:
    return row.pk if isinstance(row, Tenant) else row.tenant_id


def assert_no_tenant_b_markers(response) -> None:
    page = response.content.decode()
    leaked = [marker for marker in B_MARKERS if marker in page]
    assert not leaked, f"tenant B shows on {response.request['PATH_INFO']}: {leaked}"


def assert_answers_as_missing(client, url: str) -> None:
    """Django's answer for an object outside get_queryset: back to the index, "doesn't exist"."""
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    assert response.url == reverse("admin:index")
    followed = client.get(response.url)
    assert "doesn’t exist" in followed.content.decode()
    assert_no_tenant_b_markers(followed)


@pytest.fixture
def supervisor_user(supervisor):
    """The supervisor of tenant A, staff, holding every permission of Care's apps."""
    group, _ = Group.objects.get_or_create(name="Supervisors")
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=CARE_APPS))
    supervisor.user.groups.add(group)
    return supervisor.user


@pytest.fixture
def supervisor_client(client, supervisor_user):
    client.force_login(supervisor_user)
    return client


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def in_house_teams(tenant_a, tenant_b):
    return {
        tenant_a.pk: TeamFactory(name="Energie Nord in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_a),
        tenant_b.pk: TeamFactory(name="Telco Sur in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b),
    }


# --- Change lists -------------------------------------------------------------------------------


@by_tenant_owned_model
def test_supervisor_changelist_lists_tenant_a_rows_only(supervisor_client, tenant_rows, tenant_a, model):
    response = supervisor_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert listed, "A's row is missing"
    assert {tenant_of(row) for row in listed} == {tenant_a.pk}
    assert_no_tenant_b_markers(response)


@by_tenant_owned_model
def test_superuser_changelist_lists_every_tenants_rows(
    superuser_client, tenant_rows, tenant_a, tenant_b, model
):
    response = superuser_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert {tenant_of(row) for row in response.context["cl"].result_list} == {tenant_a.pk, tenant_b.pk}


def test_supervisor_agent_list_shows_agents_of_tenant_a_only(
    supervisor_client, tenant_rows, tenant_a, tenant_b, agent, supervisor, outsider
):
    both = make_agent(tenants=[tenant_a, tenant_b], email="bea@care.test")
    response = supervisor_client.get(admin_url(Agent, "changelist"))
    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == {agent, supervisor, both}
    # The agent who also works for B is listed, but B's name is not shown beside them.
    assert "TSU" not in response.content.decode().split('id="result_list"')[1]
    assert_no_tenant_b_markers(response)


def test_supervisor_agent_page_hides_authorisations_for_other_tenants(
    supervisor_client, tenant_rows, tenant_a, tenant_b
):
    both = make_agent(tenants=[tenant_a, tenant_b], email="bea@care.test")
    response = supervisor_client.get(admin_url(Agent, "change", both.pk))
    assert response.status_code == 200
    assert_no_tenant_b_markers(response)


def filter_choices(response, field_path: str) -> list[tuple[int, str]]:
    """The choices a change list's related-field filter offers (Django hides a filter of one choice)."""
    specs = [s for s in response.context["cl"].filter_specs if getattr(s, "field_path", "") == field_path]
    return specs[0].lookup_choices if specs else []


def test_ticket_tenant_filter_offers_tenant_a_only(supervisor_client, supervisor, tenant_rows, tenant_a):
    # With one tenant Django shows no filter at all; a second tenant of the supervisor's makes it appear.
    tenant_c = TenantFactory(name="Agua Este", slug="agua-este", code="AGE")
    TenantAuthorisation.objects.create(agent=supervisor, tenant=tenant_c)
    response = supervisor_client.get(admin_url(Ticket, "changelist"))
    assert filter_choices(response, "tenant") == [(tenant_c.pk, "Agua Este"), (tenant_a.pk, "Energie Nord")]
    assert_no_tenant_b_markers(response)


def test_ticket_team_filter_offers_no_in_house_team_of_tenant_b(
    supervisor_client, tenant_rows, in_house_teams, tenant_a
):
    provider = TeamFactory(name="Night shift")
    response = supervisor_client.get(admin_url(Ticket, "changelist"))
    offered = {name for _, name in filter_choices(response, "team")}
    assert "Energie Nord in-house" in offered
    assert provider.name in offered
    assert "Telco Sur in-house" not in offered


def test_filtering_by_tenant_b_in_the_url_shows_no_tenant_b_rows(
    supervisor_client, tenant_rows, tenant_a, tenant_b
):
    # (Django drops a filter it does not display, so this may list A's rows: never B's.)
    response = supervisor_client.get(admin_url(Ticket, "changelist"), {"tenant__id__exact": tenant_b.pk})
    assert response.status_code == 200
    assert {t.tenant_id for t in response.context["cl"].result_list} <= {tenant_a.pk}
    assert_no_tenant_b_markers(response)


def test_searching_for_tenant_b_reference_finds_nothing(supervisor_client, tenant_rows):
    response = supervisor_client.get(admin_url(Ticket, "changelist"), {"q": "TSU-1"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


# --- Change pages -------------------------------------------------------------------------------


@by_tenant_owned_model
def test_supervisor_opens_tenant_a_row(supervisor_client, tenant_rows, tenant_a, model):
    row = tenant_rows[model][tenant_a.pk]
    response = supervisor_client.get(admin_url(model, "change", row.pk))
    assert response.status_code == 200
    assert_no_tenant_b_markers(response)


@by_tenant_owned_model
@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_tenant_b_row_answers_as_missing_to_the_supervisor(
    supervisor_client, tenant_rows, tenant_b, model, view
):
    row = tenant_rows[model][tenant_b.pk]
    url = admin_url(model, view, row.pk)
    response = supervisor_client.get(url)
    if response.status_code == 403:  # e.g. deleting what nobody may delete
        return
    assert_answers_as_missing(supervisor_client, url)


@by_tenant_owned_model
def test_posting_to_a_tenant_b_row_changes_nothing(supervisor_client, tenant_rows, tenant_b, model):
    row = tenant_rows[model][tenant_b.pk]
    before = model.objects.filter(pk=row.pk).values().get()
    response = supervisor_client.post(
        admin_url(model, "change", row.pk), {"note": "x", "title": "x", "subject": "x"}
    )
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
    assert model.objects.filter(pk=row.pk).values().get() == before


def test_supervisor_cannot_delete_tenant_b_rows_in_bulk(supervisor_client, tenant_rows, tenant_a, tenant_b):
    mine, theirs = tenant_rows[Guideline][tenant_a.pk], tenant_rows[Guideline][tenant_b.pk]
    response = supervisor_client.post(
        admin_url(Guideline, "changelist"),
        {"action": "delete_selected", "_selected_action": [mine.pk, theirs.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Guideline.objects.filter(pk=mine.pk).exists()
    assert Guideline.objects.filter(pk=theirs.pk).exists()


def test_ticket_actions_leave_tenant_b_tickets_alone(supervisor_client, tenant_rows, tenant_b):
    theirs = tenant_rows[Ticket][tenant_b.pk]
    response = supervisor_client.post(
        admin_url(Ticket, "changelist"), {"action": "mark_closed", "_selected_action": [theirs.pk]}
    )
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.status == "new"
    assert not theirs.events.filter(kind=TicketEvent.Kind.STATUS).exists()


# --- Autocomplete -------------------------------------------------------------------------------


def autocomplete(client, model, field_name: str, term: str = ""):
    return client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": model._meta.app_label,
            "model_name": model._meta.model_name,
            "field_name": field_name,
            "term": term,
        },
    )


def test_customer_autocomplete_returns_tenant_a_customers_only(supervisor_client, tenant_rows, tenant_a):
    more = [CustomerFactory(tenant=tenant_a, display_name=f"Kunde {n}") for n in range(3)]
    response = autocomplete(supervisor_client, Ticket, "customer")
    assert response.status_code == 200
    ids = {int(result["id"]) for result in json.loads(response.content)["results"]}
    assert ids == {tenant_rows[Customer][tenant_a.pk].pk, *(c.pk for c in more)}


def test_customer_autocomplete_search_cannot_find_tenant_b_customer(supervisor_client, tenant_rows):
    response = autocomplete(supervisor_client, Ticket, "customer", term="TSU")
    assert response.status_code == 200
    assert json.loads(response.content)["results"] == []


def autocomplete_fields_of_every_admin():
    for model, model_admin in admin.site._registry.items():
        for field_name in model_admin.autocomplete_fields:
            yield pytest.param(model, field_name, id=f"{model._meta.label}.{field_name}")


@pytest.mark.parametrize(("model", "field_name"), list(autocomplete_fields_of_every_admin()))
def test_no_autocomplete_offers_tenant_b_rows(
    supervisor_client, tenant_rows, tenant_b, outsider, in_house_teams, model, field_name
):
    response = autocomplete(supervisor_client, model, field_name)
    assert response.status_code in (200, 403)  # 403: the related admin is not the supervisor's
    if response.status_code == 403:
        return
    offered = {str(result["id"]) for result in json.loads(response.content)["results"]}
    related = model._meta.get_field(field_name).related_model
    tenant_b_rows = {str(rows[tenant_b.pk].pk) for m, rows in tenant_rows.items() if m is related}
    tenant_b_rows |= {
        Agent: {str(outsider.pk)},
        Team: {str(in_house_teams[tenant_b.pk].pk)},
    }.get(related, set())
    assert not offered & tenant_b_rows


def test_supervisor_ticket_form_offers_own_tenants_and_teams_in_plain_selects(
    supervisor_client, tenant_rows, tenant_a, tenant_b, in_house_teams
):
    # The tenants and teams admins refuse the supervisor: an autocomplete there would answer 403.
    fields = supervisor_client.get(admin_url(Ticket, "add")).context["adminform"].form.fields
    assert not isinstance(fields["tenant"].widget.widget, AutocompleteSelect)
    assert list(fields["tenant"].queryset) == [tenant_a]
    assert not isinstance(fields["team"].widget.widget, AutocompleteSelect)
    assert in_house_teams[tenant_a.pk] in fields["team"].queryset
    assert in_house_teams[tenant_b.pk] not in fields["team"].queryset
    # Customers keep their autocomplete: the customers admin is the supervisor's.
    assert isinstance(fields["customer"].widget.widget, AutocompleteSelect)


# --- Crafted POSTs ------------------------------------------------------------------------------


@pytest.mark.parametrize("crafted", ["tenant B", "customer of B", "team of B"])
def test_crafted_ticket_for_tenant_b_is_refused(
    supervisor_client, admin_post_data, tenant_rows, tenant_a, tenant_b, in_house_teams, crafted
):
    page = supervisor_client.get(admin_url(Ticket, "add"))
    assert page.status_code == 200
    mine = {"tenant": tenant_a.pk, "customer": tenant_rows[Customer][tenant_a.pk].pk}
    changes = {
        "tenant B": {"tenant": tenant_b.pk, "customer": tenant_rows[Customer][tenant_b.pk].pk},
        "customer of B": {"customer": tenant_rows[Customer][tenant_b.pk].pk},
        "team of B": {"team": in_house_teams[tenant_b.pk].pk},
    }[crafted]
    data = admin_post_data(page, **mine, channel="email", subject="Crafted", language="de", priority=2)
    response = supervisor_client.post(admin_url(Ticket, "add"), {**data, **changes})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(changes) & set(errors), errors
    assert not Ticket.objects.filter(subject="Crafted").exists()


def test_crafted_ticket_for_tenant_a_is_accepted(
    supervisor_client, admin_post_data, tenant_rows, tenant_a, supervisor_user
):
    page = supervisor_client.get(admin_url(Ticket, "add"))
    data = admin_post_data(
        page,
        tenant=tenant_a.pk,
        customer=tenant_rows[Customer][tenant_a.pk].pk,
        channel="email",
        subject="Proper",
        language="de",
        status="new",
        priority=2,
    )
    response = supervisor_client.post(admin_url(Ticket, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    ticket = Ticket.objects.get(subject="Proper")
    assert ticket.tenant == tenant_a
    assert ticket.events.get().actor == supervisor_user


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Skill, {"code": "crafted", "name": "Crafted"}),
        (Guideline, {"title": "Crafted", "body": "x", "kind": "instruction", "position": 0}),
        (ServiceHours, {"weekday": 1, "opens_at": "08:00", "closes_at": "12:00"}),
        (Customer, {"display_name": "Crafted"}),
        (Identity, {"kind": "email", "value": "crafted@example.com"}),
    ],
    ids=lambda v: v._meta.label if hasattr(v, "_meta") else "",
)
def test_crafted_row_for_tenant_b_is_refused(
    supervisor_client, admin_post_data, tenant_rows, tenant_b, model, fields
):
    page = supervisor_client.get(admin_url(model, "add"))
    assert page.status_code == 200
    extra = {"customer": tenant_rows[Customer][tenant_b.pk].pk} if model is Identity else {}
    count = model.objects.count()
    response = supervisor_client.post(
        admin_url(model, "add"), admin_post_data(page, tenant=tenant_b.pk, **fields, **extra)
    )
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    assert model.objects.count() == count


def test_supervisors_cannot_grant_tenant_access_at_all(
    supervisor_client, tenant_rows, tenant_a, tenant_b, outsider
):
    # Granting access to a client's data is the provider's decision: a supervisor of A could otherwise
    # authorise B's outsider for A. They may still see who works their tenants.
    assert supervisor_client.get(admin_url(TenantAuthorisation, "changelist")).status_code == 200
    assert supervisor_client.get(admin_url(TenantAuthorisation, "add")).status_code == 403
    response = supervisor_client.post(
        admin_url(TenantAuthorisation, "add"), {"tenant": tenant_a.pk, "agent": outsider.pk, "note": "x"}
    )
    assert response.status_code == 403
    assert not outsider.authorisations.filter(tenant=tenant_a).exists()


def test_authorisation_with_skills_of_another_tenant_is_refused(superuser_client, tenant_a, tenant_b, agent):
    foreign = Skill.objects.create(tenant=tenant_b, code="roaming", name="Roaming")
    response = superuser_client.post(
        admin_url(TenantAuthorisation, "add"),
        {"tenant": tenant_a.pk, "agent": agent.pk, "skills": [foreign.pk], "note": ""},
    )
    assert response.status_code == 200
    assert "skills" in response.context["adminform"].form.errors


def test_supervisor_cannot_move_a_ticket_to_tenant_b_team(
    supervisor_client, admin_post_data, tenant_rows, tenant_a, tenant_b, in_house_teams
):
    ticket = tenant_rows[Ticket][tenant_a.pk]
    url = admin_url(Ticket, "change", ticket.pk)
    data = admin_post_data(supervisor_client.get(url), team=in_house_teams[tenant_b.pk].pk)
    response = supervisor_client.post(url, data)
    assert response.status_code == 200
    assert "team" in response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.team is None


# --- Pages for users who see every tenant -------------------------------------------------------


@pytest.fixture
def cross_tenant_rows(tenant_a, supervisor_user, in_house_teams):
    """One row of each model that spans tenants; the supervisor's own tenant, team and user at that."""
    return {
        Tenant: tenant_a,
        TenantGroup: TenantGroupFactory(name="Nordic JV", slug="nordic-jv"),
        Team: in_house_teams[tenant_a.pk],
        User: supervisor_user,
    }


by_cross_tenant_model = pytest.mark.parametrize("model", ALL_TENANTS_ONLY, ids=lambda m: m._meta.label)
by_page = pytest.mark.parametrize("view", ["changelist", "add", "change", "history"])


@by_cross_tenant_model
@by_page
def test_cross_tenant_pages_are_forbidden_to_the_supervisor(
    supervisor_client, cross_tenant_rows, model, view
):
    args = [cross_tenant_rows[model].pk] if view in ("change", "history") else []
    assert supervisor_client.get(admin_url(model, view, *args)).status_code == 403


@by_cross_tenant_model
@by_page
def test_cross_tenant_pages_are_open_to_the_superuser(superuser_client, cross_tenant_rows, model, view):
    args = [cross_tenant_rows[model].pk] if view in ("change", "history") else []
    assert superuser_client.get(admin_url(model, view, *args)).status_code == 200


def test_supervisor_cannot_open_the_password_page_of_users(supervisor_client, supervisor_user):
    url = reverse("admin:auth_user_password_change", args=[supervisor_user.pk])
    assert supervisor_client.get(url).status_code == 403


@pytest.mark.parametrize("actor", ["agent", "portal_user"])
def test_users_without_staff_status_are_sent_to_the_login_page(request, client, tenant_rows, actor):
    user = request.getfixturevalue(actor)
    client.force_login(getattr(user, "user", user))
    for url in [reverse("admin:index"), admin_url(Ticket, "changelist")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_agent_of_tenant_b_only_answers_as_missing(supervisor_client, outsider):
    assert_answers_as_missing(supervisor_client, admin_url(Agent, "change", outsider.pk))


def test_supervisor_index_lists_tenant_a_work_but_no_cross_tenant_models(supervisor_client, tenant_rows):
    response = supervisor_client.get(reverse("admin:index"))
    assert response.status_code == 200
    listed = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"Ticket", "Customer", "Guideline", "ServiceHours", "Agent"} <= listed
    assert not listed & {"Tenant", "TenantGroup", "Team", "User"}


def test_supervisor_cannot_change_tenant_settings_by_post(supervisor_client, tenant_a):
    response = supervisor_client.post(admin_url(Tenant, "change", tenant_a.pk), {"name": "Hijacked"})
    assert response.status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Energie Nord"


def test_supervisor_cannot_deactivate_tenants_with_the_bulk_action(supervisor_client, tenant_a, tenant_b):
    response = supervisor_client.post(
        admin_url(Tenant, "changelist"),
        {"action": "deactivate", "_selected_action": [tenant_a.pk, tenant_b.pk]},
    )
    assert response.status_code == 403
    assert Tenant.objects.filter(is_active=True).count() == 2


def test_superuser_ticket_tenant_filter_offers_every_tenant(
    superuser_client, tenant_rows, tenant_a, tenant_b
):
    response = superuser_client.get(admin_url(Ticket, "changelist"))
    assert {pk for pk, _ in filter_choices(response, "tenant")} == {tenant_a.pk, tenant_b.pk}


def test_superuser_finds_any_tenants_ticket_by_reference(superuser_client, tenant_rows, tenant_b):
    response = superuser_client.get(admin_url(Ticket, "changelist"), {"q": "TSU-1"})
    assert list(response.context["cl"].result_list) == [tenant_rows[Ticket][tenant_b.pk]]


def test_superuser_customer_autocomplete_offers_every_tenant(
    superuser_client, tenant_rows, tenant_a, tenant_b
):
    response = autocomplete(superuser_client, Ticket, "customer")
    ids = {int(result["id"]) for result in json.loads(response.content)["results"]}
    assert ids == {tenant_rows[Customer][tenant_a.pk].pk, tenant_rows[Customer][tenant_b.pk].pk}


def test_a_ticket_made_for_tenant_b_by_the_superuser_stays_hidden_from_the_supervisor(
    supervisor_client, tenant_b
):
    theirs = make_ticket(tenant=tenant_b, subject="TSU ticket")
    response = supervisor_client.get(admin_url(Ticket, "changelist"))
    assert theirs not in response.context["cl"].result_list


# --- Cost ---------------------------------------------------------------------------------------


def changelist_queries(client, model) -> int:
    client.get(admin_url(model, "changelist"))  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    return len(queries.captured_queries)


def test_supervisor_ticket_list_costs_the_same_for_5_or_30_tickets(supervisor_client, tenant_a, tenant_b):
    """The superuser's seven queries, plus permissions (2) and the supervisor's tenants (1), once."""
    for n in range(5):
        make_ticket(tenant=tenant_a, subject=f"Ticket {n}")
        make_ticket(tenant=tenant_b, subject=f"TSU ticket {n}")
    few = changelist_queries(supervisor_client, Ticket)
    for n in range(25):
        make_ticket(tenant=tenant_a, subject=f"More {n}")
    many = changelist_queries(supervisor_client, Ticket)
    assert (few, many) == (10, 10)
