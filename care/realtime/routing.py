"""Websocket URL routes. The consumers arrive with the realtime capability; the router is in place."""

from __future__ import annotations

from typing import Any

from django.urls import path

from care.realtime.consumers import PingConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/ping/", PingConsumer.as_asgi()),
]
