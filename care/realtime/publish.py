"""Publishing live events: after the commit, sequenced and logged per stream, then sent to the groups.

``publish_on_commit`` is the only way services send events. Publishing runs after the transaction
committed (never for a change that was rolled back, never before the data can be read) and never
breaks the request or task that made the change: a Redis failure is logged, and clients that missed
the event get ``reload`` when they resubscribe, because its sequence was never handed out or its log
entry is missing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from care.realtime import log
from care.realtime import streams as live_streams
from care.realtime.schema import EPHEMERAL_TYPES, EVENT_TYPES, SCHEMA_VERSION, Envelope, timestamp

logger = logging.getLogger(__name__)


def publish_on_commit(
    *,
    event_type: str,
    tenant_id: int,
    data: Mapping[str, Any],
    streams: Iterable[str],
    using: str | None = None,
) -> None:
    """Publish one change to ``streams`` once the current transaction commits (at once outside one).

    ``data`` must be JSON-serialisable and is copied now, so later changes to it are not sent.
    """
    stream_names = list(streams)
    _check(event_type, stream_names)
    payload = dict(data)
    transaction.on_commit(
        partial(publish_now, event_type=event_type, tenant_id=tenant_id, data=payload, streams=stream_names),
        using=using,
        robust=True,
    )


def publish_now(*, event_type: str, tenant_id: int, data: Mapping[str, Any], streams: Iterable[str]) -> str:
    """Sequence, log and send an event now; returns its id. Errors are logged, not raised."""
    stream_names = list(streams)
    _check(event_type, stream_names)
    event_id = uuid.uuid4().hex
    at = timestamp(timezone.now())
    messages: list[tuple[str, dict[str, Any]]] = []
    try:
        for stream in stream_names:
            envelope: Envelope = {
                "v": SCHEMA_VERSION,
                "id": event_id,
                "type": event_type,
                "stream": stream,
                "seq": None,
                "at": at or "",
                "tenant": tenant_id,
                "data": dict(data),
            }
            if event_type not in EPHEMERAL_TYPES:
                kind = live_streams.kind_of(stream)
                stored = {key: value for key, value in envelope.items() if key != "seq"}
                envelope["seq"] = log.append(stream, stored, keep=kind.log_length if kind else None)
            messages.append((live_streams.group_name(stream), {"type": "live.event", "event": envelope}))
        async_to_sync(_send_all)(messages)
    except Exception:  # a live update must never undo or fail the committed change
        logger.exception("Live event %s to %s was not published", event_type, stream_names)
    return event_id


async def publish_ephemeral(*, event_type: str, tenant_id: int, data: Mapping[str, Any], stream: str) -> None:
    """From async code (a consumer): send an unlogged event such as ``ticket.viewers`` to one stream."""
    if event_type not in EPHEMERAL_TYPES:
        raise ValueError(f"{event_type} is not an ephemeral event type")
    envelope: Envelope = {
        "v": SCHEMA_VERSION,
        "id": uuid.uuid4().hex,
        "type": event_type,
        "stream": stream,
        "seq": None,
        "at": timestamp(timezone.now()) or "",
        "tenant": tenant_id,
        "data": dict(data),
    }
    await _send_all([(live_streams.group_name(stream), {"type": "live.event", "event": envelope})])


async def _send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        await layer.group_send(group, message)


def _check(event_type: str, stream_names: list[str]) -> None:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown live event type {event_type!r}; add it to care/realtime/schema.py")
    bad = [name for name in stream_names if live_streams.parse(name) is None]
    if bad:
        raise ValueError(f"Not stream names: {bad}")
