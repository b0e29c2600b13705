"""Websocket consumers: ``LiveConsumer`` at /ws/live/ (docs/realtime.md) and the ping at /ws/ping/.

The consumer is an edge: it authorises each subscription, forwards events in sequence order (filling
gaps from the log), re-checks every event's tenant against what the user may see now, and turns
heartbeats and typing into calls of the presence service and the viewer registry. It holds no
domain rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connections
from django.utils.translation import gettext as _

from care.accounts import services as account_services
from care.realtime import log, streams, viewers
from care.realtime.publish import publish_ephemeral
from care.realtime.schema import SCHEMA_VERSION, Envelope

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
HEARTBEAT_SECONDS = 20
MIN_HEARTBEAT_INTERVAL = 5.0  # a client that beats faster is not written to the database each time
MAX_SUBSCRIPTIONS = 200


@dataclass
class Subscription:
    tenant_id: int  # 0 for the agent's own stream, which spans tenants
    last: int  # the newest sequence forwarded (or known) on this connection


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    access: streams.Access
    access_loaded_at: float
    last_heartbeat: float
    last_idle: bool
    subscriptions: dict[str, Subscription]
    typing_watches: dict[str, asyncio.Task[None]]
    access_refresh: asyncio.Task[None] | None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        access = await database_sync_to_async(streams.load_access)(user)
        if access is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.access = access
        # Spread the re-reads: connections opened together (a server restart) do not all re-read together.
        self.access_loaded_at = time.monotonic() - random.uniform(0, streams.ACCESS_SECONDS / 2)  # noqa: S311
        self.access_refresh = None
        self.last_heartbeat = 0.0
        self.last_idle = False
        self.subscriptions = {}
        self.typing_watches = {}
        await self.accept()
        own = {"agent": streams.agent_stream(access.agent_id)} if access.agent_id is not None else {}
        await self.send_json(
            {
                "type": "welcome",
                "v": SCHEMA_VERSION,
                "user": {"id": access.user_id, "name": access.name},
                "agent": access.agent_id,
                "streams": own,
                "heartbeat_seconds": HEARTBEAT_SECONDS,
            }
        )

    async def disconnect(self, code: int) -> None:
        refresh = getattr(self, "access_refresh", None)
        if refresh is not None:
            refresh.cancel()
        for stream in list(getattr(self, "subscriptions", {})):
            await self._unsubscribe(stream)

    # --- from the client -----------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            content = json.loads(text_data or (bytes_data or b"").decode("utf-8", "replace"))
        except ValueError:
            await self._error(_("Messages must be JSON objects."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self._error(_("Messages must be JSON objects."))
            return
        handlers = {
            "subscribe": self._on_subscribe,
            "unsubscribe": self._on_unsubscribe,
            "typing": self._on_typing,
            "heartbeat": self._on_heartbeat,
            "ping": self._on_ping,
        }
        handler = handlers.get(content.get("type"))  # type: ignore[arg-type]
        if handler is None:
            await self._error(
                _("Unknown message type; use one of: %(types)s.") % {"types": ", ".join(sorted(handlers))}
            )
            return
        await self._refresh_access(wait=True)
        await handler(content)

    async def _on_ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def _on_subscribe(self, content: dict[str, Any]) -> None:
        stream, since = content.get("stream"), content.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            await self._error(_('"since" must be a sequence number (0 or more) or null.'))
            return
        if not isinstance(stream, str):
            await self._error(_('"stream" must be a stream name such as "ticket:42".'))
            return
        if stream not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self._refuse(stream, _("Too many subscriptions on one connection."))
            return
        tenant_id = await database_sync_to_async(streams.tenant_for_subscription)(self.access, stream)
        if tenant_id is None:
            await self._refuse(stream, _("You may not subscribe to this stream, or it does not exist."))
            return
        # Join the group first: events published while the log is read wait in this channel and are
        # then dropped or forwarded by sequence, so nothing falls between the catch-up and the live feed.
        await self.channel_layer.group_add(streams.group_name(stream), self.channel_name)
        subscription = Subscription(tenant_id=tenant_id, last=0)
        self.subscriptions[stream] = subscription
        replayed = await self._catch_up(stream, subscription, since)
        await self.send_json(
            {"type": "subscribed", "stream": stream, "seq": subscription.last, "replayed": replayed}
        )
        if stream.startswith(streams.TICKET + ":"):
            await sync_to_async(viewers.join, thread_sensitive=False)(
                stream, self.channel_name, user_id=self.access.user_id, name=self.access.name
            )
            await self._publish_viewers(stream, tenant_id)

    async def _catch_up(self, stream: str, subscription: Subscription, since: int | None) -> int:
        """Send what the client missed since ``since``; set the subscription's position. Returns how many."""
        kind = streams.kind_of(stream)
        if kind is not None and kind.log_length == 1:
            # A snapshot stream: the newest board is all there is to catch up on.
            latest = await sync_to_async(log.latest, thread_sensitive=False)(stream, 1)
            subscription.last = (latest[-1]["seq"] or 0) if latest else 0
            fresh = [event for event in latest if since is None or (event["seq"] or 0) > since]
            return await self._forward_all(stream, fresh)
        if since is None:
            subscription.last = await sync_to_async(log.current, thread_sensitive=False)(stream)
            return 0
        catch_up = await sync_to_async(log.since, thread_sensitive=False)(stream, since)
        subscription.last = catch_up.newest
        if not catch_up.complete:
            await self.send_json(
                {
                    "type": "reload",
                    "stream": stream,
                    "reason": _("Too many updates were missed; reload this view."),
                }
            )
            return 0
        return await self._forward_all(stream, catch_up.events)

    async def _on_unsubscribe(self, content: dict[str, Any]) -> None:
        stream = content.get("stream")
        if isinstance(stream, str) and stream in self.subscriptions:
            await self._unsubscribe(stream)

    async def _unsubscribe(self, stream: str) -> None:
        subscription = self.subscriptions.pop(stream)
        watch = self.typing_watches.pop(stream, None)
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await self.channel_layer.group_discard(streams.group_name(stream), self.channel_name)
        if stream.startswith(streams.TICKET + ":"):
            await sync_to_async(viewers.leave, thread_sensitive=False)(stream, self.channel_name)
            await self._publish_viewers(stream, subscription.tenant_id)

    async def _on_typing(self, content: dict[str, Any]) -> None:
        stream, typing = content.get("stream"), content.get("typing")
        if not isinstance(typing, bool):
            await self._error(_('"typing" must be true or false.'))
            return
        if (
            not isinstance(stream, str)
            or stream not in self.subscriptions
            or not stream.startswith("ticket:")
        ):
            await self._error(_("Subscribe to the ticket before sending typing notices."))
            return
        changed = await sync_to_async(viewers.set_typing, thread_sensitive=False)(
            stream, self.channel_name, typing=typing
        )
        if changed:
            await self._publish_viewers(stream, self.subscriptions[stream].tenant_id)
        if typing and stream not in self.typing_watches:
            self.typing_watches[stream] = asyncio.create_task(self._expire_typing(stream))

    async def _expire_typing(self, stream: str) -> None:
        """Tell the others when this connection's typing notice lapses without a "false" (a tab in the
        background, a lost message): otherwise "X is typing…" would stay on their screens."""
        try:
            while True:
                until = await sync_to_async(viewers.typing_until, thread_sensitive=False)(
                    stream, self.channel_name
                )
                remaining = until - time.time()
                if remaining <= 0:
                    break
                await asyncio.sleep(remaining + 0.05)
            subscription = self.subscriptions.get(stream)
            if subscription is not None and until:  # 0: stopped by a "false", already announced
                await self._publish_viewers(stream, subscription.tenant_id)
        finally:
            self.typing_watches.pop(stream, None)

    async def _on_heartbeat(self, content: dict[str, Any]) -> None:
        idle = content.get("idle", False)
        if not isinstance(idle, bool):
            await self._error(_('"idle" must be true or false.'))
            return
        now = time.monotonic()
        # A change between idle and active always counts: an agent back at the keyboard is online now.
        if now - self.last_heartbeat < MIN_HEARTBEAT_INTERVAL and idle == self.last_idle:
            return
        self.last_heartbeat, self.last_idle = now, idle
        if self.access.agent_id is not None:
            await database_sync_to_async(account_services.agent_heartbeat)(
                agent_id=self.access.agent_id, idle=idle
            )
        watched = [stream for stream in self.subscriptions if stream.startswith(streams.TICKET + ":")]
        if watched:
            await sync_to_async(viewers.touch, thread_sensitive=False)(watched, self.channel_name)
        await self._fill_silent_gaps()

    async def _fill_silent_gaps(self) -> None:
        """Under overload the channel layer may drop a group message; the next event would reveal
        the gap, but on a quiet stream there may be no next event. Each heartbeat compares positions
        with the log and sends what is missing."""
        newest = await sync_to_async(log.currents, thread_sensitive=False)(list(self.subscriptions))
        for stream, seq in newest.items():
            subscription = self.subscriptions.get(stream)
            if subscription is not None and seq > subscription.last:
                await self._catch_up_to(stream, subscription, seq)

    # --- from the channel layer ------------------------------------------------------------------

    async def live_event(self, message: dict[str, Any]) -> None:
        event: Envelope = message["event"]
        stream = event["stream"]
        subscription = self.subscriptions.get(stream)
        if subscription is None:
            return
        await self._refresh_access(wait=False)
        seq = event["seq"]
        if seq is None:
            await self._forward(stream, event)
            return
        if seq <= subscription.last:
            return  # already sent (replayed on subscribe, or filled into a gap)
        if seq > subscription.last + 1:
            await self._catch_up_to(stream, subscription, seq - 1)
        subscription.last = seq
        await self._forward(stream, event)

    async def _catch_up_to(self, stream: str, subscription: Subscription, last: int) -> None:
        """Send the logged events after the subscription's position up to ``last`` (a gap)."""
        kind = streams.kind_of(stream)
        if kind is not None and kind.log_length == 1:  # a snapshot stream: the newest is enough
            latest = await sync_to_async(log.latest, thread_sensitive=False)(stream, 1)
            await self._forward_all(
                stream, [event for event in latest if (event["seq"] or 0) > subscription.last]
            )
            subscription.last = max(last, (latest[-1]["seq"] or 0) if latest else 0)
            return
        missing = await sync_to_async(log.between, thread_sensitive=False)(
            stream, subscription.last + 1, last
        )
        if len(missing) != last - subscription.last:
            await self.send_json(
                {"type": "reload", "stream": stream, "reason": _("Events were lost; reload this view.")}
            )
        else:
            await self._forward_all(stream, missing)
        subscription.last = last

    # --- helpers ---------------------------------------------------------------------------------

    async def _forward_all(self, stream: str, events: list[Envelope]) -> int:
        sent = 0
        for event in events:
            sent += await self._forward(stream, event)
        return sent

    async def _forward(self, stream: str, event: Envelope) -> int:
        """Send one event if the user may still see its tenant (0: the agent's own stream only)."""
        tenant_id = event["tenant"]
        allowed = self.access.may_see(tenant_id) or (
            tenant_id == 0 and stream.startswith(streams.AGENT + ":")
        )
        if not allowed:
            return 0
        await self.send(text_data=_encoded(event))
        return 1

    async def _publish_viewers(self, stream: str, tenant_id: int) -> None:
        """Tell everyone on the ticket who is viewing and typing now (the whole list, not a delta)."""
        parsed = streams.parse(stream)
        if parsed is None:
            return
        people = await sync_to_async(viewers.snapshot, thread_sensitive=False)(stream)
        await publish_ephemeral(
            event_type="ticket.viewers",
            tenant_id=tenant_id,
            data={"ticket": {"id": parsed[1]}, "viewers": people},
            stream=stream,
        )

    async def _refresh_access(self, *, wait: bool) -> None:
        """Re-read what the user may see when the copy is older than ``ACCESS_SECONDS``.

        Events do not wait for it (``wait=False``): the re-read runs beside them, so a connection's
        events are never queued behind a database round trip; a withdrawn authorisation therefore
        takes effect within ``ACCESS_SECONDS`` plus one re-read. Messages from the client wait.
        """
        if time.monotonic() - self.access_loaded_at < streams.ACCESS_SECONDS:
            return
        if self.access_refresh is None or self.access_refresh.done():
            self.access_refresh = asyncio.create_task(self._reload_access())
        if wait:
            await self.access_refresh

    async def _reload_access(self) -> None:
        access = await sync_to_async(_reload_access, thread_sensitive=False)(self.access.user_id)
        self.access_loaded_at = time.monotonic()
        if access is None:
            self.access = streams.Access(
                self.access.user_id, self.access.name, None, False, False, frozenset()
            )
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.access = access

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops into its one sync thread before every handler to close stale database
        # connections; live events touch no database, and that hop was the fan-out's largest cost
        # (bench live_fanout: p99 220 -> 60 ms at 100 clients).
        if message["type"] == "live.event":
            await self.live_event(message)
            return
        await super().dispatch(message)

    async def _refuse(self, stream: str, message: str) -> None:
        await self.send_json({"type": "refused", "stream": stream, "message": message})

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})


_ENCODED: OrderedDict[tuple[str, str, int | None], str] = OrderedDict()
_ENCODED_SIZE = 256


def _encoded(event: Envelope) -> str:
    """The event as JSON text, encoded once per process however many connections it goes to (each
    connection receives its own decoded copy from the channel layer, so the cache is keyed by id)."""
    key = (event["id"], event["stream"], event["seq"])
    text = _ENCODED.get(key)
    if text is None:
        text = json.dumps(event)
        _ENCODED[key] = text
        if len(_ENCODED) > _ENCODED_SIZE:
            _ENCODED.popitem(last=False)
    return text


def _reload_access(user_id: int) -> streams.Access | None:
    """Runs in a worker thread of its own (not Channels' one sync thread): its connection is closed."""
    from care.accounts.models import User

    try:
        user = User.objects.filter(pk=user_id).first()
        return streams.load_access(user) if user is not None else None
    finally:
        connections.close_all()


class PingConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Accepts logged-in users only and answers ``{"type": "ping"}`` with ``pong`` and who they are."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "user": self.scope["user"].email})
        else:
            await self.send_json({"type": "error", "message": 'Unknown message; send {"type": "ping"}.'})
