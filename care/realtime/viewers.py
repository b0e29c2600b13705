"""Who is viewing a ticket and who is typing a reply on it: ephemeral state in Redis.

One hash per ticket stream, one field per websocket connection (a user with two tabs is two
connections, shown once). Entries carry their own expiry, refreshed by the connection's heartbeats,
so a server that dies without saying goodbye leaves entries that vanish after ``VIEWER_SECONDS``.
Nothing here is stored in PostgreSQL: it is only true while the connection lives.
"""

from __future__ import annotations

import json
import time
from typing import Any

from care.realtime import log

VIEWER_SECONDS = 60  # three missed heartbeats
TYPING_SECONDS = 8


def _key(stream: str) -> str:
    return f"{log.prefix()}:live:{stream}:viewers"


def join(stream: str, connection: str, *, user_id: int, name: str) -> None:
    entry = {"user": user_id, "name": name, "seen_until": time.time() + VIEWER_SECONDS, "typing_until": 0}
    client = log.client()
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(_key(stream), connection, json.dumps(entry))
        pipe.expire(_key(stream), VIEWER_SECONDS * 2)
        pipe.execute()


def leave(stream: str, connection: str) -> None:
    log.client().hdel(_key(stream), connection)


def set_typing(stream: str, connection: str, *, typing: bool) -> bool:
    """Mark the connection (not) typing; True when what others see changed (to publish only then)."""
    raw = log.client().hget(_key(stream), connection)
    if raw is None:
        return False
    entry = json.loads(raw)
    now = time.time()
    was_typing = entry["typing_until"] > now
    entry["typing_until"] = now + TYPING_SECONDS if typing else 0
    entry["seen_until"] = now + VIEWER_SECONDS
    log.client().hset(_key(stream), connection, json.dumps(entry))
    return bool(was_typing != typing)


def typing_until(stream: str, connection: str) -> float:
    """When the connection's typing notice expires (0: not typing or gone)."""
    raw = log.client().hget(_key(stream), connection)
    return float(json.loads(raw)["typing_until"]) if raw is not None else 0.0


def touch(streams: list[str], connection: str) -> None:
    """A heartbeat: the connection still views these tickets."""
    client = log.client()
    now = time.time()
    for stream in streams:
        raw = client.hget(_key(stream), connection)
        if raw is None:
            continue
        entry = json.loads(raw)
        entry["seen_until"] = now + VIEWER_SECONDS
        with client.pipeline(transaction=False) as pipe:
            pipe.hset(_key(stream), connection, json.dumps(entry))
            pipe.expire(_key(stream), VIEWER_SECONDS * 2)
            pipe.execute()


def snapshot(stream: str) -> list[dict[str, Any]]:
    """Everyone viewing now, once per user, typing if any of their connections types; expired entries
    are removed on the way."""
    client = log.client()
    now = time.time()
    people: dict[int, dict[str, Any]] = {}
    expired: list[Any] = []
    for connection, raw in client.hgetall(_key(stream)).items():
        entry = json.loads(raw)
        if entry["seen_until"] < now:
            expired.append(connection)
            continue
        person = people.setdefault(
            entry["user"], {"user": entry["user"], "name": entry["name"], "typing": False}
        )
        person["typing"] = person["typing"] or entry["typing_until"] > now
    if expired:
        client.hdel(_key(stream), *expired)
    return sorted(people.values(), key=lambda person: (person["name"], person["user"]))
