"""Social accounts and a signed-POST helper for the social channel's tests.

The generic adapter (Care's signed JSON) carries the ingestion tests, so that they need none of the
platform adapters; the platform samples of ../shared/corpus/social go through the endpoint in
test_social_endpoint.py when their adapter is installed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from django.urls import reverse

from care.connectors.models import SocialAccount
from care.connectors.social.registry import slug_for
from care.contacts.identities import SocialPlatform

GENERIC_SECRET = "generic-hmac-key"
API_BASE = "https://chat.example.test/api"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_url(account: SocialAccount, slug: str | None = None) -> str:
    return reverse(
        "inbound:social", kwargs={"slug": slug or slug_for(account.platform), "token": account.inbound_token}
    )


def message(
    message_id: str = "m-1",
    *,
    sender: str = "u-42",
    name: str = "Ada Lovelace",
    text: str = "My meter reading is wrong, please check it.",
    timestamp: Any = "2026-11-27T10:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    """One message of the generic adapter's body."""
    return {
        "id": message_id,
        "from": {"id": sender, "name": name},
        "conversation": f"c-{sender}",
        "text": text,
        "timestamp": timestamp,
        **extra,
    }


def body(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None, **extra: Any) -> bytes:
    document: dict[str, Any] = {"messages": list(messages), **extra}
    if statuses is not None:
        document["statuses"] = statuses
    return json.dumps(document).encode()


def make_account(tenant, **fields: Any) -> SocialAccount:
    values: dict[str, Any] = {
        "tenant": tenant,
        "platform": SocialPlatform.OTHER,
        "name": f"{tenant.code} web chat",
        "account_id": f"{tenant.code.lower()}-chat",
        "app_secret": GENERIC_SECRET,
        "access_token": "generic-access-token",
        "api_base": API_BASE,
    }
    values.update(fields)
    return SocialAccount.objects.create(**values)


@pytest.fixture
def account(tenant_a) -> SocialAccount:
    return make_account(tenant_a)


@pytest.fixture
def post(client):
    """POST ``raw`` to ``account``'s webhook, signed with its app secret unless ``signature`` is given."""

    def send(account: SocialAccount, raw: bytes, *, signature: str | None = None, slug: str | None = None):
        headers = {"X-Care-Signature": signature if signature is not None else sign(account.app_secret, raw)}
        return client.post(
            webhook_url(account, slug), data=raw, content_type="application/json", headers=headers
        )

    return send


@pytest.fixture
def at():
    """A time in the recent past, as the generic adapter's ISO 8601."""

    def moment(minutes_ago: float = 0) -> str:
        return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()

    return moment
