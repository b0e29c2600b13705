"""The demo's social inboxes: a WhatsApp number and a Facebook page for the German utility (SWN) and a
WhatsApp number for the Spanish telecom (TSOL), each with a few conversations from this morning.

The messages go through the real pipeline: the bodies are what Meta sends (built here), stored raw
with ``social_receive`` and applied like a webhook's, so the tickets, customers and identities are
exactly what production would make. Every account has a published token and app secret
(``demo_social_token``, ``DEMO_APP_SECRET``) so that README's curl examples can sign their own
webhooks. Idempotent: the same bodies are recognised on a second run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from care.connectors.dispatch import process_stored
from care.connectors.models import InboundSource, SocialAccount
from care.connectors.social.ingest import social_receive
from care.connectors.social.registry import slug_for
from care.contacts.identities import SocialPlatform
from care.tenants.models import Tenant

# Published like the demo mail and phone tokens: signs the demo's webhooks (README).
DEMO_APP_SECRET = "demo-app-secret"  # noqa: S105 - a documented demo value, not a credential
DEMO_VERIFY_TOKEN = "demo-verify-token"  # noqa: S105


@dataclass(frozen=True)
class SocialAccountSpec:
    tenant: str
    platform: str
    account_id: str
    name: str
    language: str


@dataclass(frozen=True)
class DemoMessage:
    account_id: str
    sender: str
    name: str
    minutes_ago: int
    text: str


_SWN_WA, _SWN_FB, _TSOL_WA = "104940808001", "204940808001", "103493080001"
SOCIAL_ACCOUNTS = (
    SocialAccountSpec("SWN", SocialPlatform.WHATSAPP, _SWN_WA, "Stadtwerke Nord WhatsApp", "de"),
    SocialAccountSpec("SWN", SocialPlatform.MESSENGER, _SWN_FB, "Stadtwerke Nord (Facebook)", "de"),
    SocialAccountSpec("TSOL", SocialPlatform.WHATSAPP, _TSOL_WA, "TeleSol WhatsApp", "es"),
)

MESSAGES = (
    DemoMessage(
        "104940808001", "4915123450101", "Lena Vogt", 95, "Hallo, mein Zählerstand wurde falsch übernommen."
    ),
    DemoMessage("104940808001", "4915123450101", "Lena Vogt", 93, "Es sind 45.210 kWh, nicht 54.210."),
    DemoMessage(
        "104940808001", "4917698760202", "Murat Kaya", 40, "Wann kommt der Techniker für den Zählerwechsel?"
    ),
    DemoMessage(
        "204940808001", "6240001112223", "Jonas Peters", 70, "Gibt es einen Ökostromtarif für Studenten?"
    ),
    DemoMessage(
        "103493080001", "34612345601", "Carmen Ruiz", 55, "Hola, no tengo internet desde esta mañana."
    ),
    DemoMessage("103493080001", "34612345601", "Carmen Ruiz", 50, "El router parpadea en rojo."),
)


def demo_social_token(spec: SocialAccountSpec) -> str:
    return f"demo-{spec.tenant.lower()}-{spec.platform}"


def ensure_social(tenants: dict[str, Tenant], now: dt.datetime) -> dict[str, SocialAccount]:
    """The demo accounts (set as the table says on every run) and this morning's messages."""
    accounts: dict[str, SocialAccount] = {}
    for spec in SOCIAL_ACCOUNTS:
        account = SocialAccount.objects.filter(platform=spec.platform, account_id=spec.account_id).first()
        account = account or SocialAccount(platform=spec.platform, account_id=spec.account_id)
        account.tenant, account.name, account.default_language = (
            tenants[spec.tenant],
            spec.name,
            spec.language,
        )
        account.inbound_token = demo_social_token(spec)
        account.app_secret, account.verify_token = DEMO_APP_SECRET, DEMO_VERIFY_TOKEN
        account.api_base = "http://127.0.0.1:9/demo"  # replies fail fast and visibly: no platform here
        account.is_active = True
        account.full_clean()
        account.save()
        accounts[spec.account_id] = account
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for index, message in enumerate(MESSAGES):
        account = accounts[message.account_id]
        at = max(day, now - dt.timedelta(minutes=message.minutes_ago))
        raw = _body(account, message, index, at)
        stored, _created = social_receive(
            account=account,
            raw=raw,
            slug=slug_for(account.platform),
            source=InboundSource.CLI,
            source_ref="demo",
        )
        process_stored(stored.pk)
    return accounts


def _body(account: SocialAccount, message: DemoMessage, index: int, at: dt.datetime) -> bytes:
    # The message id is stable for the day, so a second seeding the same day adds nothing.
    key = f"demo-{at.date().isoformat()}-{index}"
    if account.platform == SocialPlatform.MESSENGER:
        item = {
            "sender": {"id": message.sender},
            "recipient": {"id": account.account_id},
            "timestamp": int(at.timestamp() * 1000),
            "message": {"mid": f"m_{key}", "text": message.text},
        }
        body = {
            "object": "page",
            "entry": [{"id": account.account_id, "time": item["timestamp"], "messaging": [item]}],
        }
    else:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": account.account_id, "phone_number_id": account.account_id},
            "contacts": [{"profile": {"name": message.name}, "wa_id": message.sender}],
            "messages": [
                {
                    "from": message.sender,
                    "id": f"wamid.{key}",
                    "timestamp": str(int(at.timestamp())),
                    "type": "text",
                    "text": {"body": message.text},
                }
            ],
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "demo-waba", "changes": [{"field": "messages", "value": value}]}],
        }
    return json.dumps(body, ensure_ascii=False).encode()
