"""Celery tasks of routing. Thin: they take ids and call services; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from care.routing import services

# How many items one "agent freed up" task hands out at most (up to the agent's spare capacity).
PULL_LIMIT = 20


@shared_task(acks_late=True)
def route_item(item_id: int) -> str | None:
    decision = services.route_item(item_id=item_id)
    return decision.kind if decision else None


@shared_task(acks_late=True)
def route_for_agent(agent_id: int) -> int:
    given = 0
    while given < PULL_LIMIT and services.route_for_agent(agent_id=agent_id) is not None:
        given += 1
    return given


@shared_task(acks_late=True)
def expire_offer(item_id: int) -> bool:
    return services.offer_expire(item_id=item_id)


@shared_task
def sweep_routing() -> dict[str, int]:
    return services.routing_sweep()
