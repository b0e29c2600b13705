"""The phone channel's admin: write-only secrets, the call record coded through its service, the
ticket page's calls."""

from __future__ import annotations

import pytest
from django.urls import reverse

from care.calls.models import Call, CallCode, PhoneLine
from tests.calls.conftest import answered_call
from tests.calls.test_call_tickets import apply_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_signing_secret_is_never_shown_and_kept_when_left_empty(superuser_client, line, admin_post_data):
    url = reverse("admin:calls_phoneline_change", args=[line.pk])
    page = superuser_client.get(url)
    data = admin_post_data(page, signing_secret="s3cret-token")
    assert superuser_client.post(url, data).status_code == 302
    line.refresh_from_db()
    assert line.signing_secret == "s3cret-token"

    page = superuser_client.get(url)
    assert "s3cret-token" not in page.content.decode()
    assert f"/inbound/phone/{line.inbound_token}/events" in page.content.decode()
    assert f"/inbound/phone/{line.inbound_token}/route" in page.content.decode()
    assert superuser_client.post(url, admin_post_data(page, signing_secret="")).status_code == 302
    assert PhoneLine.objects.get(pk=line.pk).signing_secret == "s3cret-token"


def test_codes_are_set_on_the_call_page(superuser_client, line, phone_agent, admin_post_data):
    call = apply_all(line, answered_call())
    reason = CallCode.objects.create(tenant=line.tenant, kind="reason", code="move", label="Moving house")
    url = reverse("admin:calls_call_change", args=[call.pk])
    page = superuser_client.get(url)
    assert page.status_code == 200
    response = superuser_client.post(url, admin_post_data(page, reason=reason.pk))
    assert response.status_code == 302
    assert Call.objects.get(pk=call.pk).reason == reason


def test_a_code_of_another_tenant_is_refused_on_the_call_page(
    superuser_client, line, phone_agent, tenant_b, admin_post_data
):
    call = apply_all(line, answered_call())
    other = CallCode.objects.create(tenant=tenant_b, kind="reason", code="move", label="TSU moving")
    url = reverse("admin:calls_call_change", args=[call.pk])
    response = superuser_client.post(url, admin_post_data(superuser_client.get(url), reason=other.pk))
    assert response.status_code == 200  # the form again, with the error
    assert Call.objects.get(pk=call.pk).reason is None


def test_calls_are_listed_and_searchable_by_ticket_reference(superuser_client, line, phone_agent):
    call = apply_all(line, answered_call())
    url = reverse("admin:calls_call_changelist")
    assert superuser_client.get(url).status_code == 200
    found = superuser_client.get(url, {"q": call.ticket.reference})
    assert list(found.context["cl"].result_list) == [call]
    assert superuser_client.get(reverse("admin:calls_call_add")).status_code == 403


def test_the_ticket_page_shows_its_calls(superuser_client, line, phone_agent):
    call = apply_all(line, answered_call())
    page = superuser_client.get(reverse("admin:tickets_ticket_change", args=[call.ticket_id]))
    assert page.status_code == 200
    assert reverse("admin:calls_call_change", args=[call.pk]) in page.content.decode()
