"""Benchmark ``social_ingest``: social webhook requests per second, end to end.

Each request is what Meta sends: a signed WhatsApp Cloud API or Messenger webhook body, posted with
``django.test.Client`` to ``/inbound/social/<platform>/<token>/``. The server side is all of it:
find the account, check ``X-Hub-Signature-256``, store the raw body (``InboundMessage``), parse it,
find or create the customer by their handle, thread onto the open ticket of that account or open a
new one (which routing queues and the SLA engine starts clocks for), write the interaction and
answer. The tasks the commit enqueues (routing, media downloads) go to a queue of this run's own and
are not run.

Variants (one JSON line each; samples are per request, ``requests_per_second_wall`` is requests over
the wall time, one process):

- ``social_ingest.whatsapp_new``: a text from a sender never seen: new customer, identity,
  conversation and ticket;
- ``social_ingest.whatsapp_thread``: a text from a sender with an open ticket: appended;
- ``social_ingest.messenger``: Messenger texts, new and known senders mixed (half from a new sender);
- ``social_ingest.replay``: bodies of ``whatsapp_thread`` posted again: recognised, nothing written.

Full size: 400 requests per variant; ``--quick``: 40. The bench tenant's rows are deleted at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Sequence

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from bench.email_ingest import temporary_media
from bench.harness import Context, Result, benchmark, log, machine_load, percentile
from bench.routing import own_task_queue
from care.connectors.models import SocialAccount, SocialConversation
from care.contacts.identities import SocialPlatform
from care.tenants.models import Tenant

TENANT_CODE, TENANT_SLUG = "BSOC", "bench-social"
WA_NUMBER_ID, PAGE_ID = "109990001", "209990001"
APP_SECRET = "bench-social-app-secret"  # noqa: S105 - the bench accounts' webhook key, not a credential
FULL, QUICK = 400, 40
TEXTS = (
    "Hallo, meine Bestellung ist noch nicht angekommen. Können Sie nachsehen?",
    "Hi, I was charged twice for my last invoice, please help.",
    "Bonjour, je voudrais changer mon adresse de livraison.",
    "Is the store in the city centre open on Sunday?",
)


def _tenant() -> Tenant:
    tenant = Tenant.objects.filter(code=TENANT_CODE).first()
    if tenant is None:
        tenant = Tenant(
            name="Bench social client",
            slug=TENANT_SLUG,
            code=TENANT_CODE,
            time_zone="Europe/Berlin",
            default_language="de",
            supported_languages=["de", "en", "fr"],
            holiday_country="DE",
        )
        tenant.full_clean()
        tenant.save()
    return tenant


def _account(tenant: Tenant, platform: str, account_id: str) -> SocialAccount:
    account = SocialAccount.objects.filter(platform=platform, account_id=account_id).first()
    if account is None:
        account = SocialAccount(
            tenant=tenant, platform=platform, account_id=account_id, name=f"Bench {platform}"
        )
    if account.tenant_id != tenant.pk:
        raise SystemExit(f"{platform} account {account_id} exists but is not the benchmark's; remove it.")
    account.app_secret, account.is_active = APP_SECRET, True
    account.save()
    return account


def clear(tenant_id: int) -> None:
    """Delete every row the benchmark made for its tenant (conversations first: they hold tickets)."""
    from bench.email_ingest import clear_tenant

    SocialConversation.objects.filter(tenant_id=tenant_id).delete()
    clear_tenant(tenant_id)


# --- the bodies Meta would send ----------------------------------------------------------------------


def whatsapp_body(index: int, sender: str, text: str, *, at: int) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "bench-waba",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "4930555000",
                                    "phone_number_id": WA_NUMBER_ID,
                                },
                                "contacts": [{"profile": {"name": f"Kunde {sender[-4:]}"}, "wa_id": sender}],
                                "messages": [
                                    {
                                        "from": sender,
                                        "id": f"wamid.bench-{index}",
                                        "timestamp": str(at),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def messenger_body(index: int, sender: str, text: str, *, at: int) -> bytes:
    item = {
        "sender": {"id": sender},
        "recipient": {"id": PAGE_ID},
        "timestamp": at * 1000,
        "message": {"mid": f"m_bench-{index}", "text": text},
    }
    return json.dumps(
        {"object": "page", "entry": [{"id": PAGE_ID, "time": at * 1000, "messaging": [item]}]}
    ).encode()


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"HTTP_X_HUB_SIGNATURE_256": f"sha256={digest}"}


# --- timing ------------------------------------------------------------------------------------------


def _timed(
    client: Client, url: str, bodies: Sequence[bytes]
) -> tuple[list[int], list[int], int, dict[int, int]]:
    samples, queries, statuses = [], [], {}
    begun = time.perf_counter_ns()
    for body in bodies:
        connection.queries_log.clear()  # the log keeps 9,000 queries; the count needs room each time
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter_ns()
            response = client.post(url, body, content_type="application/json", **_signed(body))
            samples.append(time.perf_counter_ns() - start)
        queries.append(len(captured))
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return samples, queries, time.perf_counter_ns() - begun, statuses


def _result(name: str, timed: tuple[list[int], list[int], int, dict[int, int]], ctx: Context) -> Result:
    samples, queries, wall_ns, statuses = timed
    if set(statuses) != {200}:
        raise SystemExit(f"{name}: the endpoint answered {statuses}, expected only 200.")
    return Result(
        name=name,
        samples_ns=samples,
        queries=max(queries),
        rows=None,
        extra={
            **({"queries_min": min(queries)} if min(queries) != max(queries) else {}),
            "queries_median": percentile([float(q) for q in queries], 50),
            "requests_per_second_wall": round(len(samples) / (wall_ns / 1e9), 1),
            "load_1m": machine_load(),
            "quick": ctx.options.quick,
        },
    )


@benchmark(
    "social_ingest",
    description="Social webhooks (WhatsApp, Messenger) per second, HTTP to stored interaction",
)
def social_ingest(ctx: Context) -> Iterator[Result]:
    count = QUICK if ctx.options.quick else FULL
    tenant = _tenant()
    clear(tenant.pk)
    whatsapp = _account(tenant, SocialPlatform.WHATSAPP, WA_NUMBER_ID)
    messenger = _account(tenant, SocialPlatform.MESSENGER, PAGE_ID)
    client = Client()
    now = int(time.time())
    try:
        with own_task_queue(), temporary_media(), override_settings(ALLOWED_HOSTS=["testserver"]):
            yield from _variants(ctx, client, whatsapp, messenger, count, now)
    finally:
        clear(tenant.pk)


def _variants(
    ctx: Context, client: Client, whatsapp: SocialAccount, messenger: SocialAccount, count: int, now: int
) -> Iterator[Result]:
    wa_url = f"/inbound/social/whatsapp/{whatsapp.inbound_token}/"
    fb_url = f"/inbound/social/messenger/{messenger.inbound_token}/"

    def text(i: int) -> str:
        return f"{TEXTS[i % len(TEXTS)]} (#{i})"

    warm = [whatsapp_body(900_000 + i, f"49170{900_000 + i}", text(i), at=now) for i in range(10)]
    _timed(client, wa_url, warm)

    new = [whatsapp_body(i, f"49171{i:06d}", text(i), at=now) for i in range(count)]
    yield _result("social_ingest.whatsapp_new", _timed(client, wa_url, new), ctx)
    log(f"social_ingest: {count} new WhatsApp senders")

    thread = [
        whatsapp_body(100_000 + i, f"49171{i % count:06d}", text(i + 1), at=now + 1) for i in range(count)
    ]
    yield _result("social_ingest.whatsapp_thread", _timed(client, wa_url, thread), ctx)

    mixed = [
        messenger_body(i, f"7{(i // 4) if i % 4 else 500_000 + i:09d}", text(i), at=now) for i in range(count)
    ]
    yield _result("social_ingest.messenger", _timed(client, fb_url, mixed), ctx)

    yield _result("social_ingest.replay", _timed(client, wa_url, thread), ctx)
