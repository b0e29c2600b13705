"""Every sample of the social corpus through the real webhook endpoint: signed as its platform signs,
answered 200 (never a 500), and every customer message in it stored as the interaction its adapter
parsed, with the sender as the customer's identity. The adapters' own tests check the parsing field by
field; this checks that nothing between the HTTP request and the timeline loses or breaks a sample.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from care.connectors.models import InboundMessage
from care.connectors.social.ingest import interaction_external_id
from care.connectors.social.registry import adapter_for
from care.tickets.models import Interaction
from tests.social.conftest import make_account, sign, webhook_url
from tests.social.corpus import SOCIAL, corpus_files

pytestmark = pytest.mark.django_db

SECRET = "corpus-app-secret"


def _messenger_body(path: Path) -> bytes:
    item = json.loads(path.read_bytes())
    if "object" in item:  # a whole POST body already
        return path.read_bytes()
    page = (item.get("recipient") or {}).get("id", "page")
    return json.dumps(
        {"object": "page", "entry": [{"id": page, "time": item.get("timestamp", 0), "messaging": [item]}]}
    ).encode()


def _samples() -> list[tuple[str, Path]]:
    samples = [("whatsapp", path) for path in corpus_files("whatsapp/pywa")]
    samples += [("messenger", path) for path in corpus_files("messenger/bottender")]
    samples += [("telegram", path) for path in corpus_files("telegram/zammad", "*/*.json")]
    samples += [("x", path) for path in corpus_files("twitter/zammad/webhook_events")]
    return samples


def _headers(slug: str, raw: bytes) -> dict[str, str]:
    if slug == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    if slug == "x":
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()
        return {"X-Twitter-Webhooks-Signature": "sha256=" + base64.b64encode(digest).decode()}
    return {"X-Hub-Signature-256": sign(SECRET, raw)}


@pytest.mark.parametrize(("slug", "path"), _samples(), ids=lambda value: getattr(value, "name", value))
def test_every_sample_is_stored_and_its_messages_reach_the_timeline(client, tenant_a, slug, path):
    raw = _messenger_body(path) if slug == "messenger" else path.read_bytes()
    adapter = adapter_for(slug)
    assert adapter is not None
    parsed = adapter.parse(raw)
    ids = [item.account_id for item in (*parsed.messages, *parsed.statuses) if item.account_id]
    account = make_account(
        tenant_a,
        platform=adapter.platform,
        name=f"corpus {slug}",
        account_id=ids[0] if ids else "corpus-account",
        app_secret=SECRET,
        verify_token=SECRET,
    )

    response = client.post(
        webhook_url(account, slug), data=raw, content_type="application/json", headers=_headers(slug, raw)
    )

    assert response.status_code == 200, (path.relative_to(SOCIAL), response.content)
    assert InboundMessage.objects.filter(tenant=tenant_a).count() == 1
    for message in parsed.messages:
        if message.from_account or (message.account_id and message.account_id != account.account_id):
            continue  # echoes land only on an open ticket; another account's message is not applied
        external_id = interaction_external_id(
            account=account, platform=adapter.platform, message_id=message.external_id
        )
        interaction = Interaction.objects.select_related("author_identity").get(external_id=external_id)
        assert interaction.body_text == message.text
        assert (interaction.author_identity.platform, interaction.author_identity.value) == (
            adapter.platform,
            message.sender_id,
        )
