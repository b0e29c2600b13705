"""A websocket client of /ws/live/ for consumer tests, on Channels' in-process test communicator.

Everything else is real: the ASGI stack with session auth and the origin check, the Redis channel
layer and the Redis live log. Tests are synchronous and run their async conversation with
``async_to_sync``; they are transactional because the session is read in a thread of its own.
"""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from tests.factories.accounts import PASSWORD

ALLOWED_ORIGIN = (b"origin", b"http://testserver")
TIMEOUT = 5


def session_headers(user: Any) -> list[tuple[bytes, bytes]]:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return [ALLOWED_ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


class LiveClient:
    """One connection. ``headers`` come from ``session_headers(user)`` (made outside the event loop)."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        self.welcome: dict[str, Any] | None = None

    async def connect(self) -> tuple[bool, Any]:
        connected, detail = await self.communicator.connect(timeout=TIMEOUT)
        if connected:
            self.welcome = await self.receive()
        return connected, detail

    async def send(self, message: Any) -> None:
        await self.communicator.send_json_to(message)

    async def receive(self, timeout: float = TIMEOUT) -> Any:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def subscribe(self, stream: str, since: int | None = None) -> list[Any]:
        """Subscribe; returns every message up to and including the answer (subscribed/refused/...)."""
        await self.send({"type": "subscribe", "stream": stream, "since": since})
        messages = []
        while True:
            message = await self.receive()
            messages.append(message)
            if message.get("type") in {"subscribed", "refused", "error"}:
                return messages

    async def nothing_more(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def receive_type(self, event_type: str, timeout: float = TIMEOUT) -> Any:
        """Skip other messages until one of ``event_type`` arrives."""
        while True:
            message = await self.receive(timeout)
            if message.get("type") == event_type:
                return message

    async def close(self) -> None:
        await self.communicator.disconnect()
