"""Celery tasks of the SLA engine. Thin and idempotent: each may run twice, late, or after a crash."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from care.sla import services


@shared_task(acks_late=True)
def fire_clock(clock_id: int) -> dict[str, int]:
    """The timer of one clock (scheduled at its warning and due instants)."""
    return services.sla_fire(clock_ids=[clock_id])


@shared_task(acks_late=True)
def apply_actions(event_id: int) -> list[str]:
    return services.sla_event_apply_actions(event_id=event_id)


@shared_task
def sweep_sla() -> dict[str, Any]:
    return services.sla_sweep()
