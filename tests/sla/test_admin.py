"""SLA in the admin: pages cost a pinned number of queries, tenant B stays invisible to tenant A's
supervisor, clocks and events are read-only records, the ticket page shows its clocks, and policies
are switched on and off in bulk."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from care.routing.models import RoutingQueue
from care.sla.admin import time_left
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_fire
from care.tickets.models import Direction, Ticket
from care.tickets.services import interaction_add, ticket_change_status
from tests.factories.tickets import make_ticket

CARE_APPS = ["tenants", "accounts", "contacts", "tickets", "routing", "sla", "connectors"]
MINUTE = dt.timedelta(minutes=1)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def supervisor_client(client, supervisor):
    """Tenant A's supervisor, staff, with every permission of Care's apps: what they cannot reach is
    refused by tenant scoping."""
    group, _ = Group.objects.get_or_create(name="Supervisors")
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=CARE_APPS))
    supervisor.user.groups.add(group)
    client.force_login(supervisor.user)
    return client


def more_sla_rows(tenant, count: int, prefix: str = "Extra") -> None:
    """``count`` more policies, and tickets with their clocks (first response and resolution) and a
    warning and a breach each, in ``tenant``."""
    for n in range(count):
        SlaPolicy.objects.create(
            tenant=tenant, name=f"{prefix} {n}", position=10 + n, resolution_minutes=600, is_active=False
        )
        ticket = make_ticket(tenant=tenant, subject=f"{prefix} ticket {n}")
        first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
        sla_fire(clock_ids=[first.pk], now=first.due_at + MINUTE)


# --- Pages and their cost -----------------------------------------------------------------------

SLA_MODELS = [SlaPolicy, SlaClock, SlaEvent]
by_sla_model = pytest.mark.parametrize("model", SLA_MODELS, ids=lambda m: m._meta.label)

# Each change list: session and user (2), the tenant filter's choices, the count and the page, with
# everything shown per row joined in. The supervisor's scope costs three more: their visible tenants,
# their permissions, their groups' permissions.
CHANGELIST_QUERIES = {
    ("superuser_client", SlaPolicy): 5,
    ("superuser_client", SlaClock): 5,
    ("superuser_client", SlaEvent): 5,
    ("supervisor_client", SlaPolicy): 8,
    ("supervisor_client", SlaClock): 8,
    ("supervisor_client", SlaEvent): 8,
}
MAX_CHANGE_PAGE_QUERIES = 10


def changelist_queries(client, model, pinned: int, django_assert_max_num_queries) -> int:
    client.get(admin_url(model, "changelist"))  # warm caches (content types, session)
    with django_assert_max_num_queries(pinned) as captured:
        response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 3
    return len(captured.captured_queries)


@by_sla_model
@pytest.mark.parametrize("actor", ["superuser_client", "supervisor_client"])
def test_changelist_cost_is_pinned_and_does_not_grow_with_rows(
    request, tenant_rows, tenant_a, django_assert_max_num_queries, model, actor
):
    client = request.getfixturevalue(actor)
    pinned = CHANGELIST_QUERIES[(actor, model)]
    more_sla_rows(tenant_a, 2)
    few = changelist_queries(client, model, pinned, django_assert_max_num_queries)
    more_sla_rows(tenant_a, 20, prefix="More")
    many = changelist_queries(client, model, pinned, django_assert_max_num_queries)
    assert (few, many) == (pinned, pinned)
    assert model.objects.filter(tenant=tenant_a).count() >= 20


@by_sla_model
@pytest.mark.parametrize("actor", ["superuser_client", "supervisor_client"])
def test_change_page_answers_in_bounded_queries(
    request, tenant_rows, tenant_a, django_assert_max_num_queries, model, actor
):
    client = request.getfixturevalue(actor)
    row = tenant_rows[model][tenant_a.pk]
    client.get(admin_url(model, "change", row.pk))
    with django_assert_max_num_queries(MAX_CHANGE_PAGE_QUERIES) as captured:
        response = client.get(admin_url(model, "change", row.pk))
    assert response.status_code == 200
    assert len(captured.captured_queries) >= 4  # the measurement is real


def test_policy_list_shows_targets_and_breach_actions(superuser_client, tenant_rows, tenant_a):
    response = superuser_client.get(admin_url(SlaPolicy, "changelist"), {"tenant__id__exact": tenant_a.pk})
    assert [p.name for p in response.context["cl"].result_list] == ["ENN standard"]
    row = response.content.decode().split('id="result_list"')[1]
    for shown in ("60", "30", "480", "75", "notify, route through ENN first line"):
        assert shown in row, shown


def test_clock_list_shows_time_left_and_flags(superuser_client, tenant_rows, tenant_a):
    response = superuser_client.get(admin_url(SlaClock, "changelist"), {"q": "ENN-1"})
    clocks = list(response.context["cl"].result_list)
    assert {(c.ticket.reference, c.target) for c in clocks} == {
        ("ENN-1", Target.FIRST_RESPONSE),
        ("ENN-1", Target.RESOLUTION),
    }
    page = response.content.decode()
    assert "7 h 59 min" in page  # resolution: 480 minutes from a moment ago
    assert page.count('alt="True"') == 1  # the resolution clock was warned (conftest)


# --- Tenant B stays invisible -------------------------------------------------------------------


@by_sla_model
def test_supervisor_lists_and_opens_tenant_a_rows_only(
    supervisor_client, tenant_rows, tenant_a, tenant_b, model
):
    response = supervisor_client.get(admin_url(model, "changelist"))
    assert {row.tenant_id for row in response.context["cl"].result_list} == {tenant_a.pk}
    assert "TSU" not in response.content.decode()
    mine, theirs = tenant_rows[model][tenant_a.pk], tenant_rows[model][tenant_b.pk]
    assert supervisor_client.get(admin_url(model, "change", mine.pk)).status_code == 200
    response = supervisor_client.get(admin_url(model, "change", theirs.pk))
    assert response.status_code == 302
    assert response.url == reverse("admin:index")


@pytest.mark.parametrize("model", [SlaClock, SlaEvent], ids=lambda m: m._meta.label)
def test_searching_by_ticket_finds_tenant_a_rows_only(supervisor_client, tenant_rows, model):
    def found(client, term):
        response = client.get(admin_url(model, "changelist"), {"q": term})
        return {row.ticket.reference for row in response.context["cl"].result_list}

    assert found(supervisor_client, "TSU-1") == set()
    assert found(supervisor_client, "enn-1") == {"ENN-1"}
    assert found(supervisor_client, "1") == {"ENN-1"}  # ticket number 1 of the tenants they see
    assert found(supervisor_client, "TSU ticket") == set()


def test_superuser_search_by_number_finds_both_tenants(superuser_client, tenant_rows):
    response = superuser_client.get(admin_url(SlaClock, "changelist"), {"q": "1"})
    assert {row.ticket.reference for row in response.context["cl"].result_list} == {"ENN-1", "TSU-1"}


def autocomplete(client, field_name: str, term: str = "") -> set[int]:
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "sla", "model_name": "slapolicy", "field_name": field_name, "term": term},
    )
    assert response.status_code == 200
    return {int(result["id"]) for result in json.loads(response.content)["results"]}


def test_supervisor_autocomplete_offers_tenant_a_queues_only(supervisor_client, tenant_rows, tenant_a):
    assert autocomplete(supervisor_client, "escalate_to_queue") == {tenant_rows[RoutingQueue][tenant_a.pk].pk}
    assert autocomplete(supervisor_client, "escalate_to_queue", "TSU") == set()


def test_supervisor_cannot_escalate_to_a_tenant_b_queue(
    supervisor_client, admin_post_data, tenant_rows, tenant_a, tenant_b
):
    mine = tenant_rows[SlaPolicy][tenant_a.pk]
    url = admin_url(SlaPolicy, "change", mine.pk)
    theirs = tenant_rows[RoutingQueue][tenant_b.pk]
    response = supervisor_client.post(
        url, admin_post_data(supervisor_client.get(url), escalate_to_queue=theirs.pk)
    )
    assert response.status_code == 200
    assert "escalate_to_queue" in response.context["adminform"].form.errors
    mine.refresh_from_db()
    assert mine.escalate_to_queue == tenant_rows[RoutingQueue][tenant_a.pk]


def test_supervisor_adds_a_policy_for_tenant_a_only(
    supervisor_client, admin_post_data, tenant_rows, tenant_b
):
    page = supervisor_client.get(admin_url(SlaPolicy, "add"))
    assert list(page.context["adminform"].form.fields["tenant"].queryset) != []
    assert tenant_b not in page.context["adminform"].form.fields["tenant"].queryset
    data = admin_post_data(page, tenant=tenant_b.pk, name="Crafted", first_response_minutes=10)
    response = supervisor_client.post(admin_url(SlaPolicy, "add"), data)
    assert "tenant" in response.context["adminform"].form.errors
    assert not SlaPolicy.objects.filter(name="Crafted").exists()


def test_policy_actions_leave_tenant_b_alone(supervisor_client, tenant_rows, tenant_a, tenant_b):
    mine, theirs = tenant_rows[SlaPolicy][tenant_a.pk], tenant_rows[SlaPolicy][tenant_b.pk]
    supervisor_client.post(
        admin_url(SlaPolicy, "changelist"),
        {"action": "deactivate", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert SlaPolicy.objects.get(pk=mine.pk).is_active is False
    assert SlaPolicy.objects.get(pk=theirs.pk).is_active is True


# --- Records are read-only ----------------------------------------------------------------------


@pytest.mark.parametrize("model", [SlaClock, SlaEvent], ids=lambda m: m._meta.label)
def test_clocks_and_events_are_read_only_even_for_the_superuser(
    superuser_client, tenant_rows, tenant_a, model
):
    row = tenant_rows[model][tenant_a.pk]
    before = model.objects.filter(pk=row.pk).values().get()
    page = superuser_client.get(admin_url(model, "change", row.pk))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert superuser_client.post(admin_url(model, "change", row.pk), {"state": "met"}).status_code == 403
    assert superuser_client.get(admin_url(model, "add")).status_code == 403
    assert superuser_client.get(admin_url(model, "delete", row.pk)).status_code == 403
    assert model.objects.filter(pk=row.pk).values().get() == before


def test_breached_filter(superuser_client, tenant_rows, tenant_a):
    ticket = tenant_rows[Ticket][tenant_a.pk]
    resolution = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
    sla_fire(clock_ids=[resolution.pk], now=resolution.due_at + MINUTE)
    url = admin_url(SlaClock, "changelist")
    breached = superuser_client.get(url, {"breached": "yes"}).context["cl"].result_list
    assert list(breached) == [resolution]
    not_breached = superuser_client.get(url, {"breached": "no"}).context["cl"].result_list
    assert resolution not in not_breached
    assert len(not_breached) == SlaClock.objects.filter(breached_at__isnull=True).count() > 0


def test_event_shows_the_actions_taken(superuser_client, tenant_rows, tenant_a):
    event = tenant_rows[SlaEvent][tenant_a.pk]
    page = superuser_client.get(admin_url(SlaEvent, "change", event.pk)).content.decode()
    assert "pending" in page  # its actions task has not run (tests do not commit)
    SlaEvent.objects.filter(pk=event.pk).update(
        actions=["notified the assignee and the supervisors"], actions_done_at=timezone.now()
    )
    response = superuser_client.get(admin_url(SlaEvent, "changelist"))
    assert "notified the assignee and the supervisors" in response.content.decode()


# --- The ticket page ----------------------------------------------------------------------------

# Session, user, the supervisor's tenants and permissions (2), the ticket, its interactions, links,
# events, routing decisions and SLA clocks, and the form's choices.
TICKET_PAGE_QUERIES = 16


def test_ticket_page_shows_its_clocks(
    supervisor_client, tenant_rows, tenant_a, django_assert_max_num_queries
):
    ticket = tenant_rows[Ticket][tenant_a.pk]
    url = admin_url(Ticket, "change", ticket.pk)
    supervisor_client.get(url)  # warm caches
    with django_assert_max_num_queries(TICKET_PAGE_QUERIES) as two:
        response = supervisor_client.get(url)
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is SlaClock]
    shown = [(form.instance.target, form.instance.state) for form in inline.formset.forms]
    assert shown == [(Target.FIRST_RESPONSE, ClockState.MET), (Target.RESOLUTION, ClockState.RUNNING)]
    assert "7 h 59 min" in response.content.decode()  # the resolution clock's time left
    # Customer messages start next-response clocks: more rows, the same queries.
    for n in range(5):
        at = timezone.now() + n * MINUTE
        interaction_add(ticket=ticket, channel="email", direction=Direction.INBOUND, occurred_at=at)
        interaction_add(ticket=ticket, channel="email", direction=Direction.OUTBOUND, occurred_at=at)
    with django_assert_max_num_queries(TICKET_PAGE_QUERIES) as seven:
        response = supervisor_client.get(url)
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is SlaClock]
    assert len(inline.formset.forms) == 7
    assert len(two.captured_queries) == len(seven.captured_queries)


# --- Policy actions -----------------------------------------------------------------------------


def run_action(client, model, action: str, rows):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


def test_deactivate_and_activate_policies(superuser_client, tenant_a):
    policies = [
        SlaPolicy.objects.create(tenant=tenant_a, name=f"P{n}", first_response_minutes=60) for n in range(2)
    ]
    SlaPolicy.objects.filter(pk=policies[1].pk).update(is_active=False)
    response = run_action(superuser_client, SlaPolicy, "deactivate", policies)
    assert "1 policies deactivated." in messages_of(response)
    assert not SlaPolicy.objects.filter(is_active=True).exists()
    assert not SlaClock.objects.filter(ticket=make_ticket(tenant=tenant_a)).exists()  # none applies
    response = run_action(superuser_client, SlaPolicy, "activate", policies)
    assert "2 policies activated." in messages_of(response)
    assert SlaPolicy.objects.filter(is_active=True).count() == 2


# --- Time left ----------------------------------------------------------------------------------


def test_time_left_reads_like_a_person_would_say_it(tenant_a):
    SlaPolicy.objects.create(tenant=tenant_a, name="Std", first_response_minutes=60, resolution_minutes=300)
    ticket = make_ticket(tenant=tenant_a)
    first = SlaClock.objects.get(ticket=ticket, target=Target.FIRST_RESPONSE)
    assert time_left(first, now=first.due_at - 40 * MINUTE) == "40 min"
    assert time_left(first, now=first.due_at - 125 * MINUTE) == "2 h 05 min"
    assert time_left(first, now=first.due_at + 3 * MINUTE) == "overdue by 3 min"
    ticket_change_status(ticket=ticket, status="pending", actor=None)
    first.refresh_from_db()
    assert time_left(first) in ("1 h 00 min (paused)", "59 min (paused)")  # what was left of 60
    ticket_change_status(ticket=ticket, status="solved", actor=None)
    first.refresh_from_db()
    assert time_left(first) == "–"
