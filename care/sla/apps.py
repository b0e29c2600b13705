from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    name = "care.sla"
    label = "sla"
    verbose_name = _("Service levels (SLA)")

    def ready(self) -> None:
        from care.sla import live, receivers  # noqa: F401 - connects the signal receivers
