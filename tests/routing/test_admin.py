"""Routing in the admin: pages answer in a bounded number of queries, tenant B stays invisible to
tenant A's supervisor, "Route now" routes, the ticket page explains its routing, and setting agents
offline (action or form) gives their unstarted work back to the queue."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from care.accounts.models import Agent, Presence, Shift, Skill
from care.accounts.services import agent_set_presence
from care.core.languages import Proficiency
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.routing.services import route_item
from care.tickets.models import Ticket
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

CARE_APPS = ["tenants", "accounts", "contacts", "tickets", "routing", "connectors"]


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


def online(agent: Agent) -> Agent:
    return agent_set_presence(agent=agent, presence=Presence.ONLINE)


def run_action(client, model, action: str, rows):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


def more_routing_rows(tenant, count: int, prefix: str = "Extra") -> None:
    """``count`` more queues (two steps each), waiting tickets and decisions in ``tenant``."""
    for n in range(count):
        queue = RoutingQueue.objects.create(tenant=tenant, name=f"{prefix} {n}", position=10 + n)
        RoutingStep.objects.create(queue=queue, after_seconds=0)
        RoutingStep.objects.create(queue=queue, after_seconds=60, language="en")
        ticket = make_ticket(tenant=tenant, subject=f"Extra ticket {n}")
        RoutingDecision.objects.create(
            tenant=tenant, ticket=ticket, kind=RoutingDecision.Kind.WAITING, reason="nobody free"
        )


# --- Pages and their cost -----------------------------------------------------------------------

ROUTING_MODELS = [RoutingQueue, QueuedItem, RoutingDecision]
by_routing_model = pytest.mark.parametrize("model", ROUTING_MODELS, ids=lambda m: m._meta.label)

# Each change list: session and user (2), the tenant filter's choices, the queue filter's choices
# (items), the count and the page, with everything shown per row joined or annotated in. The
# supervisor's scope costs three more: their visible tenants, their permissions, their groups'.
CHANGELIST_QUERIES = {
    ("superuser_client", RoutingQueue): 5,
    ("superuser_client", QueuedItem): 6,
    ("superuser_client", RoutingDecision): 5,
    ("supervisor_client", RoutingQueue): 8,
    ("supervisor_client", QueuedItem): 9,
    ("supervisor_client", RoutingDecision): 8,
}
# Measured 5 to 7 for the superuser, 9 to 10 for the supervisor.
MAX_CHANGE_PAGE_QUERIES = 10


def changelist_queries(client, model, pinned: int, django_assert_max_num_queries) -> int:
    client.get(admin_url(model, "changelist"))  # warm caches (content types, session)
    with django_assert_max_num_queries(pinned) as captured:
        response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 3
    return len(captured.captured_queries)


@by_routing_model
@pytest.mark.parametrize("actor", ["superuser_client", "supervisor_client"])
def test_changelist_cost_is_pinned_and_does_not_grow_with_rows(
    request, tenant_rows, tenant_a, django_assert_max_num_queries, model, actor
):
    client = request.getfixturevalue(actor)
    pinned = CHANGELIST_QUERIES[(actor, model)]
    more_routing_rows(tenant_a, 2)
    few = changelist_queries(client, model, pinned, django_assert_max_num_queries)
    more_routing_rows(tenant_a, 20, prefix="More")
    many = changelist_queries(client, model, pinned, django_assert_max_num_queries)
    assert (few, many) == (pinned, pinned)
    assert model.objects.filter(tenant=tenant_a).count() >= 20


@by_routing_model
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
    assert len(captured.captured_queries) >= 5  # the measurement is real


def test_queue_list_shows_steps_overflow_and_agents_online(superuser_client, tenant_a, agent, supervisor):
    skill = Skill.objects.create(tenant=tenant_a, code="tariffs", name="Tariffs")
    second = RoutingQueue.objects.create(tenant=tenant_a, name="Second line", position=2)
    first = RoutingQueue.objects.create(
        tenant=tenant_a,
        name="First line",
        position=1,
        channels=["email"],
        languages=["de"],
        overflow_queue=second,
        overflow_after_seconds=60,
    )
    skilled = RoutingQueue.objects.create(tenant=tenant_a, name="Tariffs", position=3, required_skill=skill)
    for after in (0, 60, 120):
        RoutingStep.objects.create(queue=first, after_seconds=after)
    online(agent)
    online(supervisor)
    agent.authorisations.get().skills.add(skill)
    response = superuser_client.get(admin_url(RoutingQueue, "changelist"))
    listed = {queue.name: queue for queue in response.context["cl"].result_list}
    assert (listed["First line"].step_total, listed["First line"].online_total) == (3, 2)
    assert (listed["Second line"].step_total, listed["Tariffs"].online_total) == (0, 1)
    page = response.content.decode()
    assert "Second line" in page.split("First line", 1)[1]  # the overflow column
    assert skilled in listed.values()


def test_decision_page_explains_the_candidates(superuser_client, tenant_a, agent):
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")
    decision = route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk)
    assert decision is not None
    assert decision.kind == RoutingDecision.Kind.WAITING
    response = superuser_client.get(admin_url(RoutingDecision, "change", decision.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "nobody eligible is free at any active step" in page
    assert f"{agent.user.full_name}: rejected: is offline" in page
    assert not response.context["has_change_permission"]


# --- Tenant B stays invisible -------------------------------------------------------------------


@by_routing_model
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


def test_supervisor_searching_tenant_b_reference_finds_nothing(supervisor_client, tenant_rows, tenant_a):
    for model in (QueuedItem, RoutingDecision):
        assert (
            list(
                supervisor_client.get(admin_url(model, "changelist"), {"q": "TSU-1"})
                .context["cl"]
                .result_list
            )
            == []
        )
        found = (
            supervisor_client.get(admin_url(model, "changelist"), {"q": "ENN-1"}).context["cl"].result_list
        )
        assert [row.ticket.reference for row in found] == ["ENN-1"]


def autocomplete(client, model, field_name: str, term: str = "") -> set[int]:
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "routing",
            "model_name": model._meta.model_name,
            "field_name": field_name,
            "term": term,
        },
    )
    assert response.status_code == 200
    return {int(result["id"]) for result in json.loads(response.content)["results"]}


def test_supervisor_autocomplete_offers_tenant_a_queues_and_skills_only(
    supervisor_client, tenant_rows, tenant_a, tenant_b
):
    assert autocomplete(supervisor_client, RoutingQueue, "overflow_queue") == {
        tenant_rows[RoutingQueue][tenant_a.pk].pk
    }
    assert autocomplete(supervisor_client, RoutingQueue, "overflow_queue", "TSU") == set()
    assert autocomplete(supervisor_client, RoutingQueue, "required_skill") == {
        tenant_rows[Skill][tenant_a.pk].pk
    }


def test_supervisor_queue_filter_offers_tenant_a_queues_only(supervisor_client, tenant_rows, tenant_a):
    RoutingQueue.objects.create(tenant=tenant_a, name="ENN second line")  # Django hides one-choice filters
    response = supervisor_client.get(admin_url(QueuedItem, "changelist"))
    [spec] = [s for s in response.context["cl"].filter_specs if getattr(s, "field_path", "") == "queue"]
    assert {name for _pk, name in spec.lookup_choices} == {"ENN first line", "ENN second line"}


def test_supervisor_cannot_overflow_into_a_tenant_b_queue(
    supervisor_client, admin_post_data, tenant_rows, tenant_a, tenant_b
):
    mine, theirs = tenant_rows[RoutingQueue][tenant_a.pk], tenant_rows[RoutingQueue][tenant_b.pk]
    url = admin_url(RoutingQueue, "change", mine.pk)
    data = admin_post_data(supervisor_client.get(url), overflow_queue=theirs.pk, overflow_after_seconds=60)
    response = supervisor_client.post(url, data)
    assert response.status_code == 200
    assert "overflow_queue" in response.context["adminform"].form.errors
    mine.refresh_from_db()
    assert mine.overflow_queue_id is None


def test_route_now_leaves_tenant_b_items_alone(supervisor_client, tenant_rows, tenant_b, outsider):
    online(outsider)
    theirs = tenant_rows[QueuedItem][tenant_b.pk]
    supervisor_client.post(
        admin_url(QueuedItem, "changelist"), {"action": "route_now", "_selected_action": [theirs.pk]}
    )
    assert QueuedItem.objects.filter(pk=theirs.pk, state=QueuedItem.State.WAITING).exists()
    assert Ticket.objects.get(pk=theirs.ticket_id).assignee is None


def test_supervisor_sees_shifts_of_tenant_a_agents_only(supervisor_client, tenant_rows, agent, outsider):
    now = timezone.now()
    mine = Shift.objects.create(agent=agent, starts_at=now, ends_at=now + dt.timedelta(hours=8))
    theirs = Shift.objects.create(agent=outsider, starts_at=now, ends_at=now + dt.timedelta(hours=8))
    response = supervisor_client.get(admin_url(Shift, "changelist"))
    assert list(response.context["cl"].result_list) == [mine]
    assert supervisor_client.get(admin_url(Shift, "change", theirs.pk)).status_code == 302
    # Planning binds the agent for all their tenants: for those who see every tenant only.
    assert supervisor_client.get(admin_url(Shift, "add")).status_code == 403


# --- Route now ----------------------------------------------------------------------------------


def test_route_now_assigns_a_waiting_item_to_an_online_eligible_agent(superuser_client, tenant_a, agent):
    online(agent)
    offline = make_agent(tenants=[tenant_a], email="olga@care.test")
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")
    item = QueuedItem.objects.get(ticket=ticket)
    response = run_action(superuser_client, QueuedItem, "route_now", [item])
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert not QueuedItem.objects.filter(pk=item.pk).exists()
    decision = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.ASSIGNED)
    rejected = {c["agent"]: c["rejected"] for c in decision.candidates}
    assert rejected[offline.pk] == ["is offline"]
    assert messages_of(response) == [
        "1 assigned, 0 offered, 0 still waiting (nobody eligible is free: see the decision log), "
        "0 already offered and left alone."
    ]


def test_route_now_counts_offers_waits_and_items_offered_before(superuser_client, tenant_a):
    offers = online(make_agent(tenants=[tenant_a], email="otto@care.test", channels=["email"]))
    Agent.objects.filter(pk=offers.pk).update(accepts_offers=True)
    english = make_ticket(tenant=tenant_a, subject="English please", language="en")  # nobody speaks en
    german = make_ticket(tenant=tenant_a, subject="Zählerstand falsch", language="de")
    items = [QueuedItem.objects.get(ticket=t) for t in (english, german)]
    response = run_action(superuser_client, QueuedItem, "route_now", items)
    assert QueuedItem.objects.get(ticket=german).offered_to == offers
    assert QueuedItem.objects.get(ticket=english).state == QueuedItem.State.WAITING
    assert "0 assigned, 1 offered, 1 still waiting" in messages_of(response)[0]
    response = run_action(superuser_client, QueuedItem, "route_now", items)
    assert "0 assigned, 0 offered, 1 still waiting" in messages_of(response)[0]
    assert "1 already offered and left alone." in messages_of(response)[0]


def test_route_now_needs_the_change_permission(client, supervisor, tenant_a, agent):
    # Supervisors who may only view the queue (the demo's) see it but cannot route from it.
    group, _ = Group.objects.get_or_create(name="Viewers")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="routing", codename__startswith="view_")
    )
    supervisor.user.groups.add(group)
    client.force_login(supervisor.user)
    online(agent)
    item = QueuedItem.objects.get(ticket=make_ticket(tenant=tenant_a))
    response = client.get(admin_url(QueuedItem, "changelist"))
    assert response.status_code == 200
    assert "route_now" not in response.content.decode()
    client.post(admin_url(QueuedItem, "changelist"), {"action": "route_now", "_selected_action": [item.pk]})
    assert QueuedItem.objects.filter(pk=item.pk, state=QueuedItem.State.WAITING).exists()


# --- The ticket page ----------------------------------------------------------------------------


# Session, user, the supervisor's tenants and permissions (2), the ticket, its interactions, links,
# events and routing decisions (one query with agents, users and actors), and the form's choices.
TICKET_PAGE_QUERIES = 15


def test_ticket_page_shows_its_routing_decisions_to_the_supervisor(
    supervisor_client, tenant_a, agent, django_assert_max_num_queries
):
    online(agent)
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")
    route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk)
    url = admin_url(Ticket, "change", ticket.pk)
    supervisor_client.get(url)  # warm caches
    with django_assert_max_num_queries(TICKET_PAGE_QUERIES) as one:
        response = supervisor_client.get(url)
    assert response.status_code == 200
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is RoutingDecision]
    assert [form.instance.kind for form in inline.formset.forms] == [RoutingDecision.Kind.ASSIGNED]
    page = response.content.decode()
    assert f"{agent.user.full_name}: chosen" in page
    assert "strategy least_loaded" in page
    for n in range(10):
        RoutingDecision.objects.create(
            tenant=tenant_a, ticket=ticket, kind="waiting", agent=agent, actor=agent.user, reason=f"r{n}"
        )
    with django_assert_max_num_queries(TICKET_PAGE_QUERIES) as eleven:
        response = supervisor_client.get(url)
    assert len(response.context["inline_admin_formsets"][-1].formset.forms) == 11
    assert len(one.captured_queries) == len(eleven.captured_queries)


# --- Agents going offline -----------------------------------------------------------------------


@pytest.fixture
def assigned_by_routing(tenant_a, agent):
    """A ticket routing gave ``agent``, who has not started on it."""
    online(agent)
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")
    decision = route_item(item_id=QueuedItem.objects.get(ticket=ticket).pk)
    assert decision is not None
    assert decision.kind == RoutingDecision.Kind.ASSIGNED
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    return ticket


def assert_back_in_the_queue(ticket, agent) -> None:
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert QueuedItem.objects.filter(ticket=ticket, state=QueuedItem.State.WAITING).exists()
    returned = RoutingDecision.objects.get(ticket=ticket, kind=RoutingDecision.Kind.RETURNED)
    assert returned.agent == agent


def test_set_offline_action_returns_unstarted_work(superuser_client, assigned_by_routing, agent):
    response = run_action(superuser_client, Agent, "set_offline", [agent])
    assert "1 agents set offline." in messages_of(response)
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert_back_in_the_queue(assigned_by_routing, agent)


def test_setting_presence_in_the_agent_form_returns_unstarted_work(
    superuser_client, admin_post_data, assigned_by_routing, agent
):
    url = admin_url(Agent, "change", agent.pk)
    response = superuser_client.post(
        url, admin_post_data(superuser_client.get(url), presence=Presence.OFFLINE)
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert_back_in_the_queue(assigned_by_routing, agent)


def test_agent_form_saves_accepts_offers_without_touching_presence(superuser_client, admin_post_data, agent):
    online(agent)
    changed_at = Agent.objects.get(pk=agent.pk).presence_changed_at
    url = admin_url(Agent, "change", agent.pk)
    response = superuser_client.post(url, admin_post_data(superuser_client.get(url), accepts_offers="on"))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.accepts_offers, agent.presence, agent.presence_changed_at) == (
        True,
        Presence.ONLINE,
        changed_at,
    )


# --- Queue actions ------------------------------------------------------------------------------


def test_deactivate_and_activate_queues(superuser_client, tenant_a):
    queues = [RoutingQueue.objects.create(tenant=tenant_a, name=f"Q{n}") for n in range(2)]
    RoutingQueue.objects.filter(pk=queues[1].pk).update(is_active=False)
    response = run_action(superuser_client, RoutingQueue, "deactivate", queues)
    assert "1 queues deactivated." in messages_of(response)
    assert not RoutingQueue.objects.filter(is_active=True).exists()
    response = run_action(superuser_client, RoutingQueue, "activate", queues)
    assert "2 queues activated." in messages_of(response)
    assert RoutingQueue.objects.filter(is_active=True).count() == 2


def test_required_proficiency_is_set_in_the_tenant_admin(superuser_client, admin_post_data, tenant_a):
    url = admin_url(tenant_a, "change", tenant_a.pk)
    response = superuser_client.post(
        url, admin_post_data(superuser_client.get(url), required_proficiency=Proficiency.C1)
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.required_proficiency == Proficiency.C1
