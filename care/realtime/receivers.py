"""Live events for changes in the apps below realtime, which may not import it (they send signals).

``agent.presence`` (docs/realtime.md): published after the commit to the stream of every active
tenant the agent is authorised for (staff of those tenants see who serves them, and nobody else), and
once to the agent's own stream, which keeps the agent's open tabs in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import receiver

from care.accounts.models import Agent
from care.accounts.signals import agent_presence_changed
from care.realtime import schema, streams
from care.realtime.publish import publish_on_commit


@receiver(agent_presence_changed, dispatch_uid="realtime_publish_presence")
def publish_presence(
    sender: Any, *, agent: Agent, presence: str, tenant_ids: Callable[[], list[int]], **_: Any
) -> None:
    authorised = tenant_ids()
    data = {
        "agent": {"id": agent.pk, "name": agent.user.get_full_name()},
        "presence": presence,
        "since": schema.timestamp(agent.presence_changed_at),
    }
    # The agent's own copy rides with the first tenant's event (the consumer forwards it because the
    # agent sees that tenant); an agent of no active tenant gets it as tenant 0, the own-stream marker.
    own = streams.agent_stream(agent.pk)
    if not authorised:
        publish_on_commit(event_type="agent.presence", tenant_id=0, data=data, streams=[own])
        return
    for index, tenant_id in enumerate(authorised):
        targets = [streams.tenant_stream(tenant_id), *([own] if index == 0 else [])]
        publish_on_commit(event_type="agent.presence", tenant_id=tenant_id, data=data, streams=targets)
