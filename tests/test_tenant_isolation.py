"""Tenant isolation: every tenant-owned model answers ``visible_to(user)`` with that user's tenants only.

Each test runs over every tenant-owned model (and Tenant itself), so a new model added to
``TENANT_OWNED_MODELS`` is checked by all of them. The world comes from ``tenant_rows`` in conftest:
one row of every model in tenant A and in tenant B.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from care.accounts.models import TenantAuthorisation, User
from care.core.models import TenantOwned
from care.tenants.models import Tenant
from care.tickets.selectors import access_ticket, ticket_queue
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket
from tests.helpers import TENANT_OWNED_MODELS as TENANT_OWNED

TENANT_OWNED_MODELS = [*TENANT_OWNED, Tenant]


by_model = pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m._meta.label)


def fresh(user: User) -> User:
    """The user as the next request loads it: visible tenant ids are cached per instance."""
    return User.objects.get(pk=user.pk)


def tenant_of(row) -> int:
    return row.pk if isinstance(row, Tenant) else row.tenant_id


def visible_tenants(model, user) -> set[int]:
    """The tenants of the rows of ``model`` that ``user`` sees."""
    return {tenant_of(row) for row in model.objects.visible_to(user)}


def test_every_tenant_owned_model_is_checked():
    from django.apps import apps

    owned = {m for m in apps.get_models() if issubclass(m, TenantOwned)} | {Tenant}
    assert owned == set(TENANT_OWNED_MODELS), "add the new tenant-owned model to TENANT_OWNED_MODELS"


@by_model
@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("agent", "A"),
        ("supervisor", "A"),
        ("outsider", "B"),
        ("portal_user", "A"),
        ("admin_user", "AB"),
    ],
)
def test_each_actor_sees_exactly_the_rows_of_their_tenants(
    request, tenant_rows, tenant_a, tenant_b, model, actor, expected
):
    user = request.getfixturevalue(actor)
    user = getattr(user, "user", user)  # agent fixtures are Agent profiles
    tenant_ids = {"A": tenant_a.pk, "B": tenant_b.pk}
    assert visible_tenants(model, user) == {tenant_ids[letter] for letter in expected}


@by_model
def test_agent_sees_tenant_a_row_and_not_tenant_b_row(tenant_rows, tenant_a, tenant_b, agent, model):
    visible = model.objects.visible_to(agent.user)
    assert tenant_rows[model][tenant_a.pk] in visible
    assert tenant_rows[model][tenant_b.pk] not in visible
    assert not visible.filter(pk=tenant_rows[model][tenant_b.pk].pk).exists()


@by_model
def test_anonymous_user_sees_nothing(tenant_rows, model):
    assert not model.objects.visible_to(AnonymousUser()).exists()


@by_model
@pytest.mark.parametrize("actor", ["agent", "portal_user", "admin_user"])
def test_inactive_user_sees_nothing(request, tenant_rows, model, actor):
    user = request.getfixturevalue(actor)
    user = getattr(user, "user", user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert not model.objects.visible_to(fresh(user)).exists()


@by_model
def test_deauthorised_agent_loses_visibility(tenant_rows, agent, model):
    assert model.objects.visible_to(fresh(agent.user)).exists()
    TenantAuthorisation.objects.filter(agent=agent).delete()
    assert not model.objects.visible_to(fresh(agent.user)).exists()


@by_model
def test_deactivated_tenant_disappears_for_agents_and_its_portal(
    tenant_rows, tenant_a, agent, supervisor, portal_user, admin_user, model
):
    Tenant.objects.filter(pk=tenant_a.pk).update(is_active=False)
    assert not model.objects.visible_to(fresh(agent.user)).exists()
    assert not model.objects.visible_to(fresh(supervisor.user)).exists()
    assert not model.objects.visible_to(fresh(portal_user)).exists()
    assert tenant_a.pk in visible_tenants(model, fresh(admin_user))


@by_model
def test_agent_authorised_for_both_tenants_sees_both(tenant_rows, tenant_a, tenant_b, model):
    both = make_agent(tenants=[tenant_a, tenant_b], email="bea@care.test")
    assert visible_tenants(model, both.user) == {tenant_a.pk, tenant_b.pk}


@by_model
def test_staff_flag_does_not_widen_an_agents_scope(tenant_rows, tenant_a, agent, model):
    User.objects.filter(pk=agent.user.pk).update(is_staff=True)
    assert visible_tenants(model, fresh(agent.user)) == {tenant_a.pk}


# --- access_ticket and ticket_queue ---------------------------------------------------------------


@pytest.fixture
def ticket_a(tenant_a):
    return make_ticket(tenant=tenant_a, subject="A's ticket")


@pytest.fixture
def ticket_b(tenant_b):
    return make_ticket(tenant=tenant_b, subject="B's ticket")


@pytest.mark.parametrize("lookup", ["reference", "lowercase reference", "id", "id as text"])
def test_access_ticket_finds_own_tenants_ticket(agent, ticket_a, lookup):
    key = {
        "reference": ticket_a.reference,
        "lowercase reference": ticket_a.reference.lower(),
        "id": ticket_a.pk,
        "id as text": str(ticket_a.pk),
    }[lookup]
    assert access_ticket(agent.user, key) == ticket_a


@pytest.mark.parametrize("lookup", ["reference", "lowercase reference", "id", "id as text"])
def test_access_ticket_answers_404_for_another_tenants_ticket(agent, ticket_a, ticket_b, lookup):
    assert ticket_b.reference == "TSU-1"
    key = {
        "reference": ticket_b.reference,
        "lowercase reference": ticket_b.reference.lower(),
        "id": ticket_b.pk,
        "id as text": str(ticket_b.pk),
    }[lookup]
    with pytest.raises(Http404):
        access_ticket(agent.user, key)


def test_outsider_cannot_access_tenant_a_ticket_by_its_reference(outsider, ticket_a):
    assert ticket_a.reference == "ENN-1"
    with pytest.raises(Http404):
        access_ticket(outsider.user, "ENN-1")
    with pytest.raises(Http404):
        access_ticket(outsider.user, ticket_a.pk)


@pytest.mark.parametrize("key", ["ENN-1", "enn-1"])
def test_access_ticket_refuses_anonymous_and_inactive_users(agent, ticket_a, key):
    with pytest.raises(Http404):
        access_ticket(AnonymousUser(), key)
    User.objects.filter(pk=agent.user.pk).update(is_active=False)
    with pytest.raises(Http404):
        access_ticket(fresh(agent.user), key)


@pytest.mark.parametrize("key", ["", "ENN", "ENN-", "ENN-0", "XYZ-1", "-1", "0", "999999999"])
def test_access_ticket_answers_404_for_unknown_or_malformed_references(agent, ticket_a, key):
    with pytest.raises(Http404):
        access_ticket(agent.user, key)


@pytest.mark.parametrize(
    ("tenant_ids", "expected"),
    [(None, "A"), ("B", ""), ("AB", "A"), ("A", "A"), ("", "")],
)
def test_ticket_queue_tenant_filter_cannot_widen_an_agents_scope(
    agent, tenant_a, tenant_b, ticket_a, ticket_b, tenant_ids, expected
):
    ids = {"A": tenant_a.pk, "B": tenant_b.pk}
    requested = None if tenant_ids is None else [ids[letter] for letter in tenant_ids]
    queue = ticket_queue(user=agent.user, tenant_ids=requested)
    assert {t.tenant_id for t in queue} == {ids[letter] for letter in expected}
    assert ticket_b not in queue


def test_ticket_queue_is_empty_for_anonymous_users(ticket_a, ticket_b):
    assert ticket_queue(user=AnonymousUser()) == []
    assert ticket_queue(user=AnonymousUser(), tenant_ids=[ticket_a.tenant_id]) == []
