from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "care.routing"
    label = "routing"
    verbose_name = _("Routing")

    def ready(self) -> None:
        from care.routing import receivers  # noqa: F401 - connects the signal receivers
