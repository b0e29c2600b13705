"""Origin checking for websockets."""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings


class AllowedHostsOriginValidator(OriginValidator):  # type: ignore[misc]
    """Channels' validator of the same name, but reading ``ALLOWED_HOSTS`` on every connection.

    Channels' version copies the list when the ASGI application is built; settings changed after
    that (by the test runner, or an override) would be ignored and a valid origin refused.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, [])

    @property
    def allowed_origins(self) -> list[str]:
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        return hosts

    @allowed_origins.setter
    def allowed_origins(self, value: list[str]) -> None:
        # Set once by the base class's __init__; the property above is the source of truth.
        pass
