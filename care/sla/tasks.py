"""Celery tasks of the SLA engine. Thin and idempotent: each may run twice, late, or after a crash."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from care.sla import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def fire_clock(clock_id: int) -> dict[str, int]:
    """The timer of one clock (scheduled at its warning and due instants)."""
    return services.sla_fire(clock_ids=[clock_id])


@shared_task(acks_late=True)
def apply_actions(event_id: int) -> list[str]:
    return services.sla_event_apply_actions(event_id=event_id)


@shared_task(acks_late=True)
def apply_actions_of(event_ids: list[int]) -> int:
    """The actions of several events, each in its own transaction: one failing does not stop the rest
    (its event keeps ``actions_done_at`` empty and the sweep sends it again)."""
    done = 0
    for event_id in event_ids:
        try:
            services.sla_event_apply_actions(event_id=event_id)
            done += 1
        except Exception:
            logger.exception("SLA actions of event %s failed; the sweep retries them", event_id)
    return done


@shared_task
def arm_upcoming() -> int:
    return services.sla_arm_upcoming()


@shared_task
def sweep_sla() -> dict[str, Any]:
    return services.sla_sweep()
