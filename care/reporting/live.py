"""Reporting's part of the live layer: keeping ``wallboard:<tenant>`` and the tenant's ``queue.stats``
fresh a moment after anything moves them, at most once a second per tenant.

``wallboard_refresh_soon`` runs after the commit: the first change of a tenant in a second claims a
cache key that lives ``REFRESH_DEBOUNCE_SECONDS`` and enqueues one refresh task to run that long
later; changes while the key lives enqueue nothing. The task's delay is not shorter than the key's
life, so it runs after every change it stood in for was committed, and it reads them all.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

from care.realtime import log

REFRESH_DEBOUNCE_SECONDS = 1


def _debounce_key(tenant_id: int) -> str:
    # The channel layer's prefix keeps deployments (and test runs) sharing one cache apart.
    return f"{log.prefix()}:wallboard-refresh:{tenant_id}"


def _refresh_now_or_never(tenant_id: int) -> None:
    from care.reporting.tasks import refresh_wallboard

    if cache.add(_debounce_key(tenant_id), 1, timeout=REFRESH_DEBOUNCE_SECONDS):
        refresh_wallboard.apply_async(args=(tenant_id,), countdown=REFRESH_DEBOUNCE_SECONDS)


def wallboard_refresh_soon(tenant_id: int) -> None:
    """Have the tenant's wallboard and queue statistics published again shortly after the current
    transaction commits (at once outside one). Never fails the caller: a lost refresh is made up by
    the periodic one (``refresh_wallboards``, every 30 s)."""
    transaction.on_commit(lambda: _refresh_now_or_never(tenant_id), robust=True)
