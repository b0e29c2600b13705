from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportingConfig(AppConfig):
    name = "care.reporting"
    label = "reporting"
    verbose_name = _("Reporting")

    def ready(self) -> None:
        from care.reporting import receivers  # noqa: F401 - connects the signal receivers
