"""Websocket consumers. For now one: a ping that proves the ASGI stack and session auth work end to end."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer


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
