"""Per-stream sequence numbers and the recent-events log, in Redis (db 1, the channel layer's).

``append`` gives an event the next sequence of its stream and stores it, atomically (one Lua script),
so the log never has a gap: a consumer that sees sequence 9 after 7 can fetch 8 from here. The log
keeps the newest ``LIVE_LOG_LENGTH`` events of a stream (1 for snapshot streams) for
``LIVE_LOG_SECONDS``; a client that missed more is told to reload.

Every key starts with the channel layer's prefix, so tests and deployments sharing a Redis are apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from django.conf import settings

from care.realtime.schema import Envelope

# KEYS: sequence key, log key. ARGV: event JSON without its sequence, length to keep, seconds to keep.
# The member is "<seq>|<json>": unique even if two events had the same JSON.
_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return seq
"""


@cache
def _client(url: str) -> Any:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def redis_for(url: str) -> Any:
    """A pooled, thread-safe client for ``url`` (one per URL per process)."""
    return _client(url)


def client() -> Any:
    """The Redis the channel layer uses (a pooled, thread-safe client per URL). Typed ``Any``:
    redis-py's stubs type every command as sync-or-async."""
    return _client(settings.CHANNEL_LAYER_URL)


def prefix() -> str:
    config: Any = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    return str(config.get("prefix", "care"))


def _keys(stream: str) -> tuple[str, str]:
    base = f"{prefix()}:live:{stream}"
    return f"{base}:seq", f"{base}:log"


@cache
def _append_script(url: str) -> Any:
    # A registered script runs as EVALSHA (the body is sent once per server, not per event).
    return _client(url).register_script(_APPEND)


def append(stream: str, event: dict[str, Any], *, keep: int | None = None) -> int:
    """Store ``event`` (an envelope without ``seq``) as the stream's next event; returns its sequence."""
    return append_all([(stream, event, keep)])[0]


def append_all(entries: list[tuple[str, dict[str, Any], int | None]]) -> list[int]:
    """``append`` for several ``(stream, event, keep)`` in one round trip; the sequences in order."""
    if not entries:
        return []
    script = _append_script(settings.CHANNEL_LAYER_URL)
    with client().pipeline(transaction=False) as pipe:
        for stream, event, keep in entries:
            seq_key, log_key = _keys(stream)
            body = json.dumps(event, separators=(",", ":"), sort_keys=True)
            length = keep if keep is not None else settings.LIVE_LOG_LENGTH
            script(keys=[seq_key, log_key], args=[body, length, settings.LIVE_LOG_SECONDS], client=pipe)
        return [int(seq) for seq in pipe.execute()]


def current(stream: str) -> int:
    """The stream's newest sequence (0 when nothing was published or the log expired)."""
    value = client().get(_keys(stream)[0])
    return int(value) if value is not None else 0


def currents(streams: list[str]) -> dict[str, int]:
    """The newest sequence of each stream, in one round trip (streams never published are left out)."""
    if not streams:
        return {}
    values = client().mget([_keys(stream)[0] for stream in streams])
    return {stream: int(value) for stream, value in zip(streams, values, strict=True) if value is not None}


@dataclass(frozen=True)
class CatchUp:
    events: list[Envelope]
    newest: int
    complete: bool  # False: events after ``since`` are no longer all in the log; the client reloads


def _decode(member: bytes, seq: float) -> Envelope:
    body = member.split(b"|", 1)[1]
    event: Envelope = json.loads(body)
    event["seq"] = int(seq)
    return event


def since(stream: str, last_seen: int) -> CatchUp:
    """The events after ``last_seen``, oldest first, and whether that is all of them."""
    seq_key, log_key = _keys(stream)
    with client().pipeline(transaction=True) as pipe:
        pipe.get(seq_key)
        pipe.zrangebyscore(log_key, last_seen + 1, "+inf", withscores=True)
        newest_raw, rows = pipe.execute()
    newest = int(newest_raw) if newest_raw is not None else 0
    events = [_decode(member, seq) for member, seq in rows]
    if last_seen > newest:
        # The client saw more than exists: the log was reset (Redis restarted or flushed).
        return CatchUp(events=[], newest=newest, complete=False)
    expected = newest - last_seen
    return CatchUp(events=events, newest=newest, complete=len(events) == expected)


def latest(stream: str, count: int) -> list[Envelope]:
    """The newest ``count`` events still logged, oldest first (the current board of a snapshot stream)."""
    rows = client().zrange(_keys(stream)[1], -count, -1, withscores=True)
    return [_decode(member, seq) for member, seq in rows]


def between(stream: str, first: int, last: int) -> list[Envelope]:
    """Logged events with ``first <= seq <= last`` (to fill a gap a consumer noticed)."""
    rows = client().zrangebyscore(_keys(stream)[1], first, last, withscores=True)
    return [_decode(member, seq) for member, seq in rows]
