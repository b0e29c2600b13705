from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "care.tenants"
    label = "tenants"
    verbose_name = _("Client companies")
