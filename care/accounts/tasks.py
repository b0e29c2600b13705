"""Celery tasks of accounts. Thin: they call services; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from care.accounts import services


@shared_task(name="care.accounts.tasks.presence_sweep")
def presence_sweep() -> int:
    """Beat, every 15 s: set offline the agents whose websocket heartbeats stopped. A full batch means
    more may be waiting, so the task runs again at once instead of waiting for the next beat."""
    count = services.agent_presence_sweep()
    if count >= services.PRESENCE_SWEEP_BATCH:
        presence_sweep.delay()
    return count
