"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import threading

from django.db import connections

from care.accounts.models import Skill, TenantAuthorisation
from care.calls.models import Call, CallCode, Campaign, PhoneLine, ServiceLevelTarget
from care.connectors.models import (
    InboundMessage,
    Mailbox,
    OutboundDelivery,
    SocialAccount,
    SocialConversation,
)
from care.contacts.models import Customer, Identity
from care.macros.models import Macro
from care.mentions.models import Mention
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue
from care.sla.models import SlaClock, SlaEvent, SlaPolicy
from care.tenants.models import Guideline, ServiceHours, TenantHoliday
from care.tickets.models import Attachment, Interaction, Ticket, TicketEvent, TicketLink

# Every model whose rows belong to one tenant. test_tenant_isolation fails when a new TenantOwned
# model is missing here, so that isolation tests and admin scoping tests cover it.
TENANT_OWNED_MODELS = [
    Ticket,
    Interaction,
    Attachment,
    TicketEvent,
    Customer,
    Identity,
    Skill,
    TenantAuthorisation,
    Guideline,
    TenantHoliday,
    ServiceHours,
    TicketLink,
    Mailbox,
    InboundMessage,
    OutboundDelivery,
    RoutingQueue,
    QueuedItem,
    RoutingDecision,
    SlaPolicy,
    SlaClock,
    SlaEvent,
    PhoneLine,
    Call,
    CallCode,
    Campaign,
    ServiceLevelTarget,
    SocialAccount,
    SocialConversation,
    Macro,
    Mention,
]


def run_in_threads(work, count):
    """Run ``work(i)`` in ``count`` threads released at the same moment; each uses its own connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def runner(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def drop_celery_pools(app) -> None:
    """Forget Celery's cached broker connections and producers, so the next publish uses the current
    ``broker_url`` (the app caches both at first use)."""
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    # kombu keeps its own registry of connection and producer pools per broker URL: a pool closed
    # above would otherwise be handed out again to the next test that uses the same URL.
    import kombu.pools

    kombu.pools.reset()
