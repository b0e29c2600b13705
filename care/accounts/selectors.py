"""Reads of accounts, scoped to the user who asks."""

from __future__ import annotations

from typing import Any

from care.accounts.models import Agent


def access_agent(user: Any, agent_id: int) -> Agent | None:
    """The agent with ``agent_id`` if ``user`` may know of them: authorised for a tenant the user sees
    (everyone for global admins). An unknown id and another company's agent answer alike (None), so
    ids cannot be probed for names."""
    agents = Agent.objects.select_related("user")
    if not user.sees_all_tenants:
        agents = agents.filter(authorisations__tenant_id__in=list(user.visible_tenant_ids()))
    return agents.filter(pk=agent_id).distinct().first()
