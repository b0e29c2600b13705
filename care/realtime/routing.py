"""Websocket URL routes: the live feed (docs/realtime.md) and a ping that proves the stack."""

from __future__ import annotations

from typing import Any

from django.urls import path

from care.realtime.consumers import LiveConsumer, PingConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/ping/", PingConsumer.as_asgi()),
]
