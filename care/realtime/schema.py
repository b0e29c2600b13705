"""The live event envelope, version 1, and the catalogue of event types (docs/realtime.md).

Payloads are built by the domain apps' ``live.py`` modules; this module only knows their names, so
that a misspelt type fails where it is published, not silently in a browser.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

SCHEMA_VERSION = 1

EVENT_TYPES = frozenset(
    {
        "ticket.created",
        "ticket.updated",
        "ticket.assigned",
        "interaction.added",
        "sla.warning",
        "sla.breach",
        "queue.stats",
        "agent.presence",
        "wallboard.snapshot",
        "ticket.viewers",
        "mention.added",
    }
)

# Not logged, not replayed: the current state is sent on subscribe instead.
EPHEMERAL_TYPES = frozenset({"ticket.viewers"})


class Envelope(TypedDict):
    v: int
    id: str
    type: str
    stream: str
    seq: int | None
    at: str
    tenant: int
    data: dict[str, Any]


def timestamp(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC, the one time format of every payload."""
    return value.astimezone(dt.UTC).isoformat() if value is not None else None
