from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MacrosConfig(AppConfig):
    name = "care.macros"
    label = "macros"
    verbose_name = _("Macros")
