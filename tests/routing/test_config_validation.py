"""Impossible routing configuration is refused when it is saved, with a message that says what is wrong:
by the models' ``full_clean()`` (``rules.check_queue`` / ``rules.check_step``) and so by the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from care.accounts.models import Skill, Team
from care.core.languages import Proficiency
from care.routing.models import RoutingQueue, RoutingStep, StepHours, TeamKind
from care.tenants.models import ServiceHours
from tests.factories.accounts import TeamFactory

pytestmark = pytest.mark.django_db

UNKNOWN_XX = "xx is not a known language code; use an ISO 639-1 code such as de, en or es."
BELOW_B2 = "Energie Nord requires at least B2 upper intermediate."


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


def queue_of(tenant, name: str = "First line", **fields) -> RoutingQueue:
    return RoutingQueue.objects.create(tenant=tenant, name=name, **fields)


# --- Queues -------------------------------------------------------------------------------------


def test_a_sound_queue_and_step_pass(tenant_a):
    skill = Skill.objects.create(tenant=tenant_a, code="tariffs", name="Tariffs")
    target = queue_of(tenant_a, "Second line")
    queue = RoutingQueue(
        tenant=tenant_a,
        name="First line",
        channels=["email", "phone"],
        languages=["de", "en"],
        required_skill=skill,
        overflow_queue=target,
        overflow_after_seconds=120,
    )
    queue.full_clean()
    queue.save()
    step = RoutingStep(queue=queue, after_seconds=60, language="en", min_proficiency=Proficiency.C1)
    step.full_clean()


def test_unknown_queue_language_is_refused(tenant_a):
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", languages=["de", "xx"]))
    assert (
        "xx is not a known language code; use an ISO 639-1 code such as de, en or es." in errors["languages"]
    )


def test_queue_language_the_tenant_does_not_serve_is_refused(tenant_a):
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", languages=["fr"]))
    assert errors["languages"] == ["Energie Nord does not serve fr (it serves de, en)."]


def test_unknown_channel_is_refused(tenant_a):
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", channels=["fax"]))
    assert errors["channels"][0].startswith("Unknown channels: fax; use ")


def test_skill_of_another_tenant_is_refused(tenant_a, tenant_b):
    foreign = Skill.objects.create(tenant=tenant_b, code="roaming", name="Roaming")
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", required_skill=foreign))
    assert errors["required_skill"] == ["That skill belongs to another tenant."]


def test_overflow_to_another_tenants_queue_is_refused(tenant_a, tenant_b):
    theirs = queue_of(tenant_b, "Primera línea")
    errors = errors_of(
        RoutingQueue(tenant=tenant_a, name="Q", overflow_queue=theirs, overflow_after_seconds=60)
    )
    assert errors["overflow_queue"] == ["A queue can only overflow to a queue of the same tenant."]


def test_overflow_without_delay_is_refused(tenant_a):
    target = queue_of(tenant_a, "Second line")
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", overflow_queue=target))
    assert errors["overflow_after_seconds"] == ["Say after how many seconds the work overflows."]


def test_overflow_delay_without_target_is_refused(tenant_a):
    errors = errors_of(RoutingQueue(tenant=tenant_a, name="Q", overflow_after_seconds=60))
    assert errors["overflow_queue"] == ["Say which queue to overflow to, or clear the overflow delay."]


def test_overflow_to_itself_is_a_cycle(tenant_a):
    queue = queue_of(tenant_a, "A")
    queue.overflow_queue, queue.overflow_after_seconds = queue, 60
    assert errors_of(queue)["overflow_queue"] == [
        "This overflow closes a cycle: A → A. Work would move in circles."
    ]


def test_overflow_back_and_forth_is_a_cycle(tenant_a):
    a = queue_of(tenant_a, "A")
    b = queue_of(tenant_a, "B", overflow_queue=a, overflow_after_seconds=60)
    a.overflow_queue, a.overflow_after_seconds = b, 60
    assert errors_of(a)["overflow_queue"] == [
        "This overflow closes a cycle: A → B → A. Work would move in circles."
    ]


def test_overflow_round_three_queues_is_a_cycle(tenant_a):
    a = queue_of(tenant_a, "A")
    c = queue_of(tenant_a, "C", overflow_queue=a, overflow_after_seconds=60)
    b = queue_of(tenant_a, "B", overflow_queue=c, overflow_after_seconds=60)
    a.overflow_queue, a.overflow_after_seconds = b, 60
    assert errors_of(a)["overflow_queue"] == [
        "This overflow closes a cycle: A → B → C → A. Work would move in circles."
    ]


def test_an_overflow_chain_without_a_cycle_passes(tenant_a):
    c = queue_of(tenant_a, "C")
    b = queue_of(tenant_a, "B", overflow_queue=c, overflow_after_seconds=60)
    RoutingQueue(tenant=tenant_a, name="A", overflow_queue=b, overflow_after_seconds=60).full_clean()


# --- Steps --------------------------------------------------------------------------------------


@pytest.fixture
def queue(tenant_a):
    return queue_of(tenant_a)


def test_unknown_step_language_is_refused(queue):
    errors = errors_of(RoutingStep(queue=queue, language="xx"))
    assert (
        "xx is not a known language code; use an ISO 639-1 code such as de, en or es." in errors["language"]
    )


def test_fallback_language_the_tenant_does_not_serve_is_refused(queue):
    errors = errors_of(RoutingStep(queue=queue, language="es"))
    assert errors["language"] == ["Energie Nord does not allow serving in es (it serves de, en)."]


def test_step_below_the_tenants_required_level_is_refused(queue):
    errors = errors_of(RoutingStep(queue=queue, min_proficiency=Proficiency.B1))
    assert errors["min_proficiency"] == [BELOW_B2]


def test_step_above_the_tenants_required_level_passes(queue):
    RoutingStep(queue=queue, min_proficiency=Proficiency.C1).full_clean()


def test_in_house_team_of_another_tenant_is_refused(queue, tenant_b):
    theirs = TeamFactory(name="Telco Sur in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b)
    errors = errors_of(RoutingStep(queue=queue, team=theirs))
    assert errors["team"] == [
        "Telco Sur in-house is the in-house team of another company and never serves Energie Nord."
    ]


def test_team_that_is_not_of_the_steps_team_kind_is_refused(queue):
    provider = TeamFactory(name="Night shift", kind=Team.Kind.PROVIDER)
    errors = errors_of(RoutingStep(queue=queue, team=provider, team_kind=TeamKind.IN_HOUSE))
    assert errors["team_kind"] == [
        "Night shift is not one of the in-house teams: no agent could satisfy this step."
    ]


def test_in_house_step_for_a_tenant_without_in_house_team_is_refused(queue, tenant_b):
    TeamFactory(name="Telco Sur in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b)  # not A's
    errors = errors_of(RoutingStep(queue=queue, team_kind=TeamKind.IN_HOUSE))
    assert errors["team_kind"] == ["Energie Nord has no in-house team: no agent could satisfy this step."]


def test_in_house_step_passes_once_the_tenant_has_an_in_house_team(queue, tenant_a):
    TeamFactory(name="Energie Nord in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_a)
    RoutingStep(queue=queue, team_kind=TeamKind.IN_HOUSE).full_clean()


def test_out_of_hours_step_for_a_tenant_served_round_the_clock_is_refused(queue, tenant_a):
    assert not ServiceHours.objects.filter(tenant=tenant_a).exists()
    errors = errors_of(RoutingStep(queue=queue, hours=StepHours.CLOSED))
    assert errors["hours"] == ["Energie Nord is served round the clock, so this step would never apply."]


def test_out_of_hours_step_passes_once_the_tenant_has_service_hours(queue, tenant_a):
    ServiceHours.objects.create(tenant=tenant_a, weekday=0, opens_at=dt.time(8), closes_at=dt.time(18))
    RoutingStep(queue=queue, hours=StepHours.CLOSED).full_clean()


def test_step_of_an_unsaved_queue_is_checked_against_that_queues_tenant(tenant_a):
    # The admin adds a queue and its steps in one form: the step holds the queue before it is saved.
    unsaved = RoutingQueue(tenant=tenant_a, name="New")
    errors = errors_of(RoutingStep(queue=unsaved, language="es", min_proficiency=Proficiency.A2))
    assert errors["language"] == ["Energie Nord does not allow serving in es (it serves de, en)."]
    assert errors["min_proficiency"] == [BELOW_B2]


# --- Through the admin --------------------------------------------------------------------------


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:routing_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


def all_errors(response) -> dict[str, list[str]]:
    """Errors of the main form and of every inline form."""
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    errors = {key: list(value) for key, value in response.context["adminform"].form.errors.items()}
    for inline in response.context["inline_admin_formsets"]:
        for form_errors in inline.formset.errors:
            for key, value in form_errors.items():
                errors.setdefault(key, []).extend(value)
    return errors


def step_rows(*steps: dict) -> dict[str, object]:
    """POST data for the steps inline: ``steps`` are new rows."""
    data: dict[str, object] = {
        "steps-TOTAL_FORMS": len(steps),
        "steps-INITIAL_FORMS": 0,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    for n, step in enumerate(steps):
        row = {"position": n, "after_seconds": 0, "hours": "any", "team_kind": "any", **step}
        data.update({f"steps-{n}-{key}": value for key, value in row.items()})
    return data


def test_admin_refuses_an_overflow_cycle_and_saves_nothing(superuser_client, admin_post_data, tenant_a):
    a = queue_of(tenant_a, "A")
    b = queue_of(tenant_a, "B", overflow_queue=a, overflow_after_seconds=60)
    url = admin_url(RoutingQueue, "change", a.pk)
    data = admin_post_data(superuser_client.get(url), overflow_queue=b.pk, overflow_after_seconds=30)
    response = superuser_client.post(url, data)
    assert all_errors(response)["overflow_queue"] == [
        "This overflow closes a cycle: A → B → A. Work would move in circles."
    ]
    assert "This overflow closes a cycle" in response.content.decode()
    a.refresh_from_db()
    assert (a.overflow_queue_id, a.overflow_after_seconds) == (None, None)


def test_admin_refuses_a_new_queue_with_an_impossible_step_and_saves_nothing(
    superuser_client, admin_post_data, tenant_a
):
    # The queue is new, so its steps are checked against the tenant chosen in the same form.
    page = superuser_client.get(admin_url(RoutingQueue, "add"))
    data = admin_post_data(page, tenant=tenant_a.pk, name="Impossible", offer_timeout_seconds=30)
    data.update(step_rows({"team_kind": "in_house"}, {"after_seconds": 60, "language": "es"}))
    response = superuser_client.post(admin_url(RoutingQueue, "add"), data)
    errors = all_errors(response)
    assert errors["team_kind"] == ["Energie Nord has no in-house team: no agent could satisfy this step."]
    assert errors["language"] == ["Energie Nord does not allow serving in es (it serves de, en)."]
    assert not RoutingQueue.objects.filter(name="Impossible").exists()
    assert not RoutingStep.objects.exists()


def test_admin_refuses_an_impossible_step_added_to_an_existing_queue(
    superuser_client, admin_post_data, tenant_a
):
    queue = queue_of(tenant_a)
    url = admin_url(RoutingQueue, "change", queue.pk)
    data = {**admin_post_data(superuser_client.get(url)), **step_rows({"min_proficiency": Proficiency.A1})}
    response = superuser_client.post(url, data)
    assert all_errors(response)["min_proficiency"] == [BELOW_B2]
    assert not queue.steps.exists()


def test_admin_adds_a_sound_queue_with_its_steps(superuser_client, admin_post_data, tenant_a):
    page = superuser_client.get(admin_url(RoutingQueue, "add"))
    data = admin_post_data(
        page, tenant=tenant_a.pk, name="Sound", languages="de,en", channels="email", offer_timeout_seconds=30
    )
    # (An extra row left at its defaults is an unused blank row to Django: the first one names "de".)
    data.update(
        step_rows(
            {"language": "de"}, {"after_seconds": 120, "language": "en", "min_proficiency": Proficiency.C1}
        )
    )
    response = superuser_client.post(admin_url(RoutingQueue, "add"), data)
    assert response.status_code == 302, all_errors(response)
    queue = RoutingQueue.objects.get(name="Sound")
    assert (queue.tenant, queue.languages, queue.channels) == (tenant_a, ["de", "en"], ["email"])
    assert list(queue.steps.values_list("after_seconds", "language")) == [(0, "de"), (120, "en")]


def test_admin_refuses_a_second_queue_of_the_same_name(superuser_client, admin_post_data, tenant_a):
    queue_of(tenant_a, "First line")
    other = queue_of(tenant_a, "Second line")
    url = admin_url(RoutingQueue, "change", other.pk)
    response = superuser_client.post(url, admin_post_data(superuser_client.get(url), name="First line"))
    assert all_errors(response)["name"] == ["Energie Nord already has a queue of this name."]
    other.refresh_from_db()
    assert other.name == "Second line"
