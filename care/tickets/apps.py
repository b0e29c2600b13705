from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "care.tickets"
    label = "tickets"
    verbose_name = _("Tickets")

    def ready(self) -> None:
        from care.tickets import live, receivers  # noqa: F401 - connects the signal receivers

        live.register_stream_kind()
