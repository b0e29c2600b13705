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
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
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
    try:
        envelopes: list[Envelope] = []
        logged: list[tuple[int, tuple[str, dict[str, Any], int | None]]] = []
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
                logged.append((len(envelopes), (stream, stored, kind.log_length if kind else None)))
            envelopes.append(envelope)
        for (index, _entry), seq in zip(logged, log.append_all([entry for _i, entry in logged]), strict=True):
            envelopes[index]["seq"] = seq
        send_sync(
            [
                (live_streams.group_name(envelope["stream"]), {"type": "live.event", "event": envelope})
                for envelope in envelopes
            ]
        )
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


def send_sync(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send ``(group, message)`` pairs from synchronous code (a request, a Celery task).

    With the pub/sub layer on one Redis, a group send is one ``PUBLISH`` of the serialised message
    to the group's Redis channel: done here with the pooled synchronous client, in one pipeline.
    That avoids ``async_to_sync``, which starts an event loop, and with it a new Redis connection of
    the layer, for every call (about 3 ms of a 4 ms publish). Any other layer takes the async path.
    """
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    hosts = _single_pubsub_host(layer)
    if hosts is None:
        async_to_sync(_send_all)(messages)
        return
    with log.redis_for(hosts).pipeline(transaction=False) as pipe:
        for group, message in messages:
            pipe.publish(_pubsub_channel(group), layer.serialize(message))
        pipe.execute()


def _single_pubsub_host(layer: Any) -> str | None:
    """The Redis URL of a pub/sub layer with one host (sharding would pick the host per group)."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    config: Any = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    hosts = config.get("hosts", [])
    return hosts[0] if len(hosts) == 1 and isinstance(hosts[0], str) else None


def _pubsub_channel(group: str) -> str:
    # channels_redis 4.x: RedisPubSubLoopLayer._get_group_channel_name. Pinned by
    # tests/realtime/test_live_consumer.py, whose clients receive what this publishes.
    return f"{log.prefix()}__group__{group}"


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
