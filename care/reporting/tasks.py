"""Celery tasks of reporting: publish the live wallboards. Thin, idempotent, take ids."""

from __future__ import annotations

from celery import shared_task

from care.realtime import streams
from care.realtime.publish import publish_now
from care.reporting.selectors import live_figures
from care.tenants.models import Tenant

# Tenants one periodic refresh covers at most (ordered by id); a bound on one beat task's work.
WALLBOARD_TENANTS_LIMIT = 1000


def _publish(tenant: Tenant) -> None:
    board, stats = live_figures(tenant=tenant)
    publish_now(
        event_type="wallboard.snapshot",
        tenant_id=tenant.pk,
        data=board,
        streams=[streams.wallboard_stream(tenant.pk)],
    )
    publish_now(
        event_type="queue.stats", tenant_id=tenant.pk, data=stats, streams=[streams.tenant_stream(tenant.pk)]
    )


@shared_task(acks_late=True)
def refresh_wallboard(tenant_id: int) -> bool:
    """Publish the tenant's ``wallboard.snapshot`` and ``queue.stats`` now (nothing for an unknown or
    inactive tenant). Returns whether it published."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return False
    _publish(tenant)
    return True


@shared_task
def refresh_wallboards() -> int:
    """Celery beat, every 30 s: every active tenant's board, so that boards stay fresh (the longest
    wait, today's figures after midnight) when nothing changes, and the snapshot kept in the live
    log never expires. Returns how many were published."""
    tenants = list(Tenant.objects.filter(is_active=True).order_by("pk")[:WALLBOARD_TENANTS_LIMIT])
    for tenant in tenants:
        _publish(tenant)
    return len(tenants)
