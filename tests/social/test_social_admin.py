"""Social accounts and conversations in the admin: secrets are write-only (never rendered, an empty
field keeps them), the webhook URL is shown, the pages are scoped to the user's tenants, bulk actions
do what they say, and conversations are looked at, not edited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.urls import reverse

from care.accounts.models import Team
from care.connectors.models import OutboundDelivery, SocialAccount, SocialConversation
from care.core.channels import Channel
from care.tickets.models import Direction
from care.tickets.services import interaction_add
from tests.factories.accounts import TeamFactory
from tests.social.conftest import body, make_account, message

pytestmark = pytest.mark.django_db

SECRETS = {
    "app_secret": "app-secret-xyz",
    "verify_token": "verify-token-xyz",
    "access_token": "access-token-xyz",
}


def url(model, view: str, *args) -> str:
    return reverse(f"admin:connectors_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def supervisor_client(client, supervisor):
    group, _ = Group.objects.get_or_create(name="Supervisors")
    group.permissions.set(Permission.objects.filter(content_type__app_label="connectors"))
    supervisor.user.groups.add(group)
    client.force_login(supervisor.user)
    return client


@pytest.fixture
def accounts(tenant_a, tenant_b):
    return {
        "a": make_account(tenant_a, **SECRETS, name="ENN chat"),
        "b": make_account(tenant_b, **SECRETS, name="TSU chat"),
    }


@pytest.fixture
def conversations(post, accounts):
    post(accounts["a"], body(message("m-1", sender="alice-handle")))
    post(accounts["b"], body(message("m-1", sender="bob-handle")))
    return {key: SocialConversation.objects.get(account=account) for key, account in accounts.items()}


def test_the_change_page_never_renders_a_secret(superuser_client, accounts) -> None:
    account = accounts["a"]
    response = superuser_client.get(url(SocialAccount, "change", account.pk))
    html = response.content.decode()
    assert response.status_code == 200
    for value in SECRETS.values():
        assert value not in html
    assert "app secret: set; verify token: set; access token: set" in html
    assert f"/inbound/social/generic/{account.inbound_token}/" in html
    assert html.count('type="password"') == 3


def test_an_empty_secret_field_keeps_the_stored_value(superuser_client, admin_post_data, accounts) -> None:
    account = accounts["a"]
    page = superuser_client.get(url(SocialAccount, "change", account.pk))
    response = superuser_client.post(
        url(SocialAccount, "change", account.pk),
        admin_post_data(page, name="Renamed", access_token="new-token"),
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert (account.app_secret, account.verify_token, account.access_token) == (
        "app-secret-xyz",
        "verify-token-xyz",
        "new-token",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM connectors_socialaccount WHERE id = %s", [account.pk])
        [stored] = cursor.fetchone()
    assert stored.startswith("fernet:")  # encrypted at rest
    assert "new-token" not in stored


def test_a_secret_can_be_cleared(superuser_client, admin_post_data, accounts) -> None:
    account = accounts["a"]
    page = superuser_client.get(url(SocialAccount, "change", account.pk))
    response = superuser_client.post(
        url(SocialAccount, "change", account.pk), admin_post_data(page, clear_secrets=["verify_token"])
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.app_secret, account.verify_token) == ("app-secret-xyz", "")
    page = superuser_client.get(url(SocialAccount, "change", account.pk))
    assert "verify token: not set" in page.content.decode()


def test_an_account_is_added_with_its_secrets(superuser_client, tenant_a) -> None:
    response = superuser_client.post(
        url(SocialAccount, "add"),
        {
            "tenant": tenant_a.pk,
            "platform": "telegram",
            "name": "ENN bot",
            "account_id": "987654",
            "is_active": "on",
            "verify_token": "tg-secret",
            "access_token": "123:bot-token",
            "default_priority": 2,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    account = SocialAccount.objects.get(account_id="987654")
    assert (account.verify_token, account.access_token, account.app_secret) == (
        "tg-secret",
        "123:bot-token",
        "",
    )
    assert account.inbound_token


def test_an_in_house_team_of_another_tenant_is_refused(superuser_client, tenant_a, tenant_b) -> None:
    team_b = TeamFactory(name="TSU in-house", kind=Team.Kind.IN_HOUSE, tenant=tenant_b)
    response = superuser_client.post(
        url(SocialAccount, "add"),
        {
            "tenant": tenant_a.pk,
            "platform": "other",
            "name": "chat",
            "account_id": "x",
            "default_team": team_b.pk,
            "default_priority": 2,
        },
    )
    assert response.status_code == 200
    assert "belongs to another tenant" in str(response.context["adminform"].form.errors["default_team"])
    assert not SocialAccount.objects.filter(account_id="x").exists()


def test_tenant_and_platform_are_fixed_once_saved(
    superuser_client, admin_post_data, accounts, tenant_b
) -> None:
    account = accounts["a"]
    page = superuser_client.get(url(SocialAccount, "change", account.pk))
    superuser_client.post(
        url(SocialAccount, "change", account.pk),
        admin_post_data(page, tenant=tenant_b.pk, platform="whatsapp"),
    )
    account.refresh_from_db()
    assert (account.tenant_id, account.platform) == (accounts["a"].tenant_id, "other")


def test_the_list_shows_the_webhook_url_and_filters_answer(superuser_client, accounts) -> None:
    response = superuser_client.get(url(SocialAccount, "changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"/inbound/social/generic/{accounts['a'].inbound_token}/" in html
    for query in (
        "?platform__exact=other",
        "?is_active__exact=0",
        f"?tenant__id__exact={accounts['a'].tenant_id}",
    ):
        assert superuser_client.get(url(SocialAccount, "changelist") + query).status_code == 200
    assert superuser_client.get(url(SocialAccount, "changelist"), {"q": "ENN"}).status_code == 200


def test_the_supervisor_sees_their_tenants_accounts_only(supervisor_client, accounts) -> None:
    response = supervisor_client.get(url(SocialAccount, "changelist"))
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [accounts["a"].pk]
    assert (
        supervisor_client.get(url(SocialAccount, "change", accounts["b"].pk)).status_code == 302
    )  # "missing"
    before = SocialAccount.objects.get(pk=accounts["b"].pk).name
    supervisor_client.post(url(SocialAccount, "change", accounts["b"].pk), {"name": "hijacked"})
    assert SocialAccount.objects.get(pk=accounts["b"].pk).name == before


def test_bulk_deactivate_and_activate(supervisor_client, accounts) -> None:
    both = [accounts["a"].pk, accounts["b"].pk]
    response = supervisor_client.post(
        url(SocialAccount, "changelist"), {"action": "deactivate", "_selected_action": both}, follow=True
    )
    assert "1 social accounts deactivated" in response.content.decode()
    assert not SocialAccount.objects.get(pk=accounts["a"].pk).is_active
    assert SocialAccount.objects.get(pk=accounts["b"].pk).is_active  # another tenant's: untouched
    supervisor_client.post(url(SocialAccount, "changelist"), {"action": "activate", "_selected_action": both})
    assert SocialAccount.objects.get(pk=accounts["a"].pk).is_active


def test_an_account_with_conversations_cannot_be_deleted(superuser_client, conversations, accounts) -> None:
    response = superuser_client.get(url(SocialAccount, "delete", accounts["a"].pk))
    assert response.status_code == 403
    unused = make_account(accounts["a"].tenant, account_id="unused")
    assert superuser_client.get(url(SocialAccount, "delete", unused.pk)).status_code == 200


def test_conversations_are_listed_searched_and_read_only(
    superuser_client, supervisor_client, conversations
) -> None:
    response = supervisor_client.get(url(SocialConversation, "changelist"), {"q": "alice-handle"})
    assert [row.pk for row in response.context["cl"].result_list] == [conversations["a"].pk]
    response = supervisor_client.get(url(SocialConversation, "changelist"), {"q": "bob-handle"})
    assert list(response.context["cl"].result_list) == []
    page = supervisor_client.get(url(SocialConversation, "change", conversations["a"].pk))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert supervisor_client.get(url(SocialConversation, "add")).status_code == 403
    changelist = superuser_client.get(url(SocialConversation, "changelist")).context["cl"]
    for spec in changelist.filter_specs:
        for choice in spec.choices(changelist):
            assert (
                superuser_client.get(
                    url(SocialConversation, "changelist") + choice["query_string"]
                ).status_code
                == 200
            )


def test_deliveries_show_their_social_account_and_read_state(
    superuser_client, conversations, accounts
) -> None:
    ticket = conversations["a"].ticket
    reply, _ = interaction_add(
        ticket=ticket, channel=Channel.SOCIAL, direction=Direction.OUTBOUND, body_text="Hi"
    )
    delivery = OutboundDelivery.objects.create(
        tenant=ticket.tenant,
        interaction=reply,
        channel=Channel.SOCIAL,
        social_account=accounts["a"],
        recipient="alice-handle",
        message_id="out-1",
        status="read",
    )
    listing = superuser_client.get(url(OutboundDelivery, "changelist"))
    assert "ENN chat" in listing.content.decode()
    page = superuser_client.get(url(OutboundDelivery, "change", delivery.pk))
    assert page.status_code == 200
    assert {"social_account", "delivered_at", "read_at"} <= set(page.context["adminform"].readonly_fields)
