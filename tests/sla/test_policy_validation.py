"""An SLA policy that cannot work is refused with a message: by ``full_clean()`` (what the admin and the
demo build call) and through the admin's add and change forms, where nothing is saved."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from care.routing.models import RoutingQueue
from care.sla.models import SlaPolicy

NO_TARGET = "Set at least one target (first response, next response or resolution)."
FOREIGN_QUEUE = "That queue belongs to another tenant."


def policy(tenant, **fields) -> SlaPolicy:
    return SlaPolicy(tenant=tenant, name="Standard", **{"first_response_minutes": 60, **fields})


def errors_of(candidate: SlaPolicy) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        candidate.full_clean()
    return raised.value.message_dict


@pytest.mark.parametrize(
    "targets",
    [
        {"first_response_minutes": None},
        {"first_response_minutes": 0, "next_response_minutes": 0, "resolution_minutes": 0},
    ],
    ids=["none set", "all zero"],
)
def test_a_policy_without_a_target_is_refused(tenant_a, targets):
    assert errors_of(policy(tenant_a, **targets)) == {"__all__": [NO_TARGET]}


@pytest.mark.parametrize("target", ["first_response_minutes", "next_response_minutes", "resolution_minutes"])
def test_any_one_target_is_enough(tenant_a, target):
    policy(tenant_a, **{"first_response_minutes": None, target: 30}).full_clean()


def test_escalating_to_another_tenants_queue_is_refused(tenant_a, tenant_b):
    theirs = RoutingQueue.objects.create(tenant=tenant_b, name="Overflow")
    assert errors_of(policy(tenant_a, escalate_to_queue=theirs)) == {"escalate_to_queue": [FOREIGN_QUEUE]}
    mine = RoutingQueue.objects.create(tenant=tenant_a, name="Overflow")
    policy(tenant_a, escalate_to_queue=mine).full_clean()


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        (0, "Ensure this value is greater than or equal to 1."),
        (100, "Ensure this value is less than or equal to 99."),
        (250, "Ensure this value is less than or equal to 99."),
    ],
)
def test_warning_percent_outside_1_to_99_is_refused(tenant_a, percent, message):
    assert errors_of(policy(tenant_a, warning_percent=percent)) == {"warning_percent": [message]}


@pytest.mark.parametrize("percent", [1, 99])
def test_warning_percent_at_the_bounds_is_accepted(tenant_a, percent):
    policy(tenant_a, warning_percent=percent).full_clean()


# --- Through the admin --------------------------------------------------------------------------

ADD = reverse("admin:sla_slapolicy_add")


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    return dict(response.context["adminform"].form.errors)


def post_policy(client, admin_post_data, url=ADD, **fields):
    return client.post(url, admin_post_data(client.get(url), **fields))


@pytest.fixture
def valid(tenant_a):
    return {
        "tenant": tenant_a.pk,
        "name": "Standard",
        "position": 0,
        "first_response_minutes": 60,
        "warning_percent": 75,
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"first_response_minutes": ""}, "__all__", NO_TARGET),
        ({"warning_percent": 0}, "warning_percent", "Ensure this value is greater than or equal to 1."),
        ({"warning_percent": 100}, "warning_percent", "Ensure this value is less than or equal to 99."),
        ({"escalate_to_queue": "tenant B"}, "escalate_to_queue", FOREIGN_QUEUE),
    ],
    ids=["no target", "warning 0", "warning 100", "queue of tenant B"],
)
def test_the_add_form_shows_the_error_and_saves_nothing(
    superuser_client, admin_post_data, tenant_b, valid, changes, field, message
):
    if changes.get("escalate_to_queue") == "tenant B":
        changes = {"escalate_to_queue": RoutingQueue.objects.create(tenant=tenant_b, name="TSU overflow").pk}
    response = post_policy(superuser_client, admin_post_data, **{**valid, **changes})
    assert form_errors(response) == {field: [message]}
    assert message in response.content.decode()
    assert not SlaPolicy.objects.exists()


def test_a_valid_policy_is_saved(superuser_client, admin_post_data, tenant_a, valid):
    queue = RoutingQueue.objects.create(tenant=tenant_a, name="Overflow")
    response = post_policy(superuser_client, admin_post_data, **valid, escalate_to_queue=queue.pk)
    assert response.status_code == 302, form_errors(response)
    saved = SlaPolicy.objects.get()
    assert (saved.tenant, saved.first_response_minutes, saved.escalate_to_queue) == (tenant_a, 60, queue)


def test_a_taken_name_is_a_form_error_on_add_and_change(superuser_client, admin_post_data, tenant_a, valid):
    SlaPolicy.objects.create(tenant=tenant_a, name="Standard", first_response_minutes=60)
    response = post_policy(superuser_client, admin_post_data, **valid)
    assert form_errors(response) == {"name": ["Energie Nord already has a policy of this name."]}
    assert SlaPolicy.objects.count() == 1
    # On the change page the tenant is read-only: the form itself checks the name.
    other = SlaPolicy.objects.create(tenant=tenant_a, name="Urgent", first_response_minutes=15)
    url = reverse("admin:sla_slapolicy_change", args=[other.pk])
    response = post_policy(superuser_client, admin_post_data, url=url, name="Standard")
    assert form_errors(response) == {"name": ["Energie Nord already has a policy of this name."]}
    other.refresh_from_db()
    assert other.name == "Urgent"


def test_the_change_form_refuses_a_policy_emptied_of_targets(
    superuser_client, admin_post_data, tenant_a, valid
):
    saved = SlaPolicy.objects.create(tenant=tenant_a, name="Standard", first_response_minutes=60)
    url = reverse("admin:sla_slapolicy_change", args=[saved.pk])
    response = post_policy(superuser_client, admin_post_data, url=url, first_response_minutes="")
    assert form_errors(response) == {"__all__": [NO_TARGET]}
    saved.refresh_from_db()
    assert saved.first_response_minutes == 60
