from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo world (`manage.py seed_demo`). Highest of all apps: it builds through every service."""

    name = "care.demo"
    label = "demo"
    verbose_name = _("Demo data")
