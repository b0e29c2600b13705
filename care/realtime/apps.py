from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "care.realtime"
    label = "realtime"
    verbose_name = _("Live updates")

    def ready(self) -> None:
        from care.realtime import receivers  # noqa: F401 - connects the signal receivers
