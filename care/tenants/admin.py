from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from care.core.admin import AllTenantsOnlyAdmin, TenantScopedAdmin, TenantScopedInline
from care.tenants.models import Guideline, ServiceHours, Tenant, TenantGroup, TenantHoliday


class ServiceHoursInline(TenantScopedInline):
    model = ServiceHours
    fields = ["weekday", "opens_at", "closes_at"]


class TenantHolidayInline(TenantScopedInline):
    model = TenantHoliday
    fields = ["date", "name"]
    extra = 0


class GuidelineInline(TenantScopedInline):
    model = Guideline
    fields = ["position", "kind", "title", "language", "body"]
    extra = 0


@admin.register(Tenant)
class TenantAdmin(AllTenantsOnlyAdmin, TenantScopedAdmin):
    """A client company's settings (code, time zone, holidays, activation) are the provider's to set.

    Supervisors manage their tenants' guidelines and service hours on those models' own pages; where
    their forms name a tenant they get a select of their own tenants (see ``ScopedFormFieldsMixin``).
    """

    list_display = [
        "name",
        "code",
        "group",
        "time_zone",
        "default_language",
        "required_proficiency",
        "holiday_country",
        "is_active",
    ]
    list_filter = ["is_active", "group", "default_language", "time_zone"]
    search_fields = ["name", "slug", "code"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["group"]
    inlines = [ServiceHoursInline, TenantHolidayInline, GuidelineInline]
    actions = ["deactivate", "activate"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "code", "group", "colour", "is_active"]}),
        (_("Languages"), {"fields": ["default_language", "supported_languages", "required_proficiency"]}),
        (_("Time and holidays"), {"fields": ["time_zone", "holiday_country", "holiday_subdivision"]}),
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Tenants own years of records; they are deactivated, never deleted from the admin.
        return False

    @admin.action(description=_("Deactivate selected tenants"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, _("%(count)d tenants deactivated.") % {"count": count})

    @admin.action(description=_("Activate selected tenants"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, _("%(count)d tenants activated.") % {"count": count})

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj else self.prepopulated_fields


@admin.register(TenantGroup)
class TenantGroupAdmin(AllTenantsOnlyAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Guideline)
class GuidelineAdmin(TenantScopedAdmin):
    list_display = ["title", "tenant", "kind", "language", "position"]
    list_filter = ["tenant", "kind", "language"]
    search_fields = ["title", "body"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]


@admin.register(ServiceHours)
class ServiceHoursAdmin(TenantScopedAdmin):
    list_display = ["tenant", "weekday", "opens_at", "closes_at"]
    list_filter = ["tenant", "weekday"]
    search_fields = ["tenant__name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]


@admin.register(TenantHoliday)
class TenantHolidayAdmin(TenantScopedAdmin):
    """A tenant's own closing days; public holidays come from the tenant's holiday region."""

    list_display = ["date", "name", "tenant"]
    list_filter = ["tenant", "date"]
    search_fields = ["name", "tenant__name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]
