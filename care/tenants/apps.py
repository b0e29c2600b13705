from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "care.tenants"
    label = "tenants"
    verbose_name = _("Client companies")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from care.tenants.calendar import CALENDAR_MEMO
        from care.tenants.models import ServiceHours, Tenant, TenantHoliday

        for model in (Tenant, ServiceHours, TenantHoliday):
            post_save.connect(
                CALENDAR_MEMO.clear, sender=model, dispatch_uid=f"calendar_memo_{model.__name__}"
            )
            post_delete.connect(
                CALENDAR_MEMO.clear, sender=model, dispatch_uid=f"calendar_memo_d_{model.__name__}"
            )
