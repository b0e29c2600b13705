"""Signals other apps subscribe to.

``agent_presence_changed`` is sent when an agent's presence really changes (not on every heartbeat),
inside the caller's transaction; routing subscribes to hand out work to agents who come online and to
return unstarted work of agents who go offline.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: agent (refreshed), presence (the new state), tenant_ids (a callable: the ids of the active
# tenants the agent is authorised for, read once per change however many receivers ask)
agent_presence_changed = Signal()
