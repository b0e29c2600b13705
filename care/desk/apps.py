from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeskConfig(AppConfig):
    name = "care.desk"
    label = "desk"
    verbose_name = _("Agent desk")
