"""The admin base every tenant-owned model uses: rows, choices, filters and autocomplete are scoped.

A staff user who is not a superuser sees only the tenants ``visible_to`` lets through, in the change
list, on the change page (others answer as missing), in foreign-key choices (so a crafted POST cannot
attach another tenant's row), in related-field filters and in autocomplete answers (Django asks the
related model's admin ``get_queryset`` for those).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Field, ForeignKey, ManyToManyField, Model, QuerySet
from django.http import HttpRequest


def _scoped(queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
    if hasattr(queryset, "visible_to"):
        return queryset.visible_to(request.user)  # type: ignore[no-any-return]
    return queryset


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter that offers only the rows the user may see."""

    def field_choices(  # type: ignore[override]
        self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[Any, str]]:
        related_model: type[Model] = field.related_model
        rows = _scoped(related_model._default_manager.all(), request)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, str(row)) for row in rows]


class ScopedFormFieldsMixin:
    """Limit foreign-key and many-to-many choices to the rows the user may see."""

    def get_autocomplete_fields(self, request: HttpRequest) -> Any:
        # Autocomplete answers from the related model's admin. Where that admin refuses the user
        # (a supervisor and the tenants admin, say), a widget would only ever get a 403: offer a
        # plain select of the scoped choices instead.
        fields = super().get_autocomplete_fields(request)  # type: ignore[misc]
        return [name for name in fields if _related_admin_lets_view(self, name, request)]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs["queryset"] = _field_queryset(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs["queryset"] = _field_queryset(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


def _related_admin_lets_view(model_admin: Any, field_name: str, request: HttpRequest) -> bool:
    related = model_admin.model._meta.get_field(field_name).related_model
    site = model_admin.admin_site
    return bool(site.is_registered(related) and site.get_model_admin(related).has_view_permission(request))


def _field_queryset(db_field: Field[Any, Any], request: HttpRequest, kwargs: dict[str, Any]) -> QuerySet[Any]:
    queryset = kwargs.get("queryset")
    if queryset is None:
        queryset = db_field.remote_field.model._default_manager.all()  # type: ignore[union-attr]
    return _scoped(queryset, request)


class TenantScopedAdmin(ScopedFormFieldsMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """ModelAdmin for tenant-owned models (and for Tenant itself)."""

    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is not worth it

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _scoped(super().get_queryset(request), request)

    def get_list_filter(self, request: HttpRequest) -> Any:
        scoped: list[Any] = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                related = field.related_model
                if (
                    field.is_relation
                    and related is not None
                    and hasattr(related._default_manager, "visible_to")
                ):
                    scoped.append((entry, ScopedRelatedFieldListFilter))
                    continue
            scoped.append(entry)
        return scoped


class TenantScopedInline(ScopedFormFieldsMixin, admin.TabularInline):  # type: ignore[type-arg]
    """Inline whose rows and foreign-key choices are scoped like the parent admin's.

    The parent may span tenants (an agent authorised for several): its inline rows of other
    tenants stay hidden.
    """

    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _scoped(super().get_queryset(request), request)


def sees_all_tenants(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "sees_all_tenants", False))


class GlobalWritesMixin:
    """Rows that users with a tenant scope may look at but only users who see every tenant may change:
    agents' profiles and tenant authorisations (granting access is the provider's decision)."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return sees_all_tenants(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_tenants(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_tenants(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class AllTenantsOnlyAdmin(GlobalWritesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """For rows that span tenants (groups, users, teams): only users who see every tenant.

    A supervisor with admin access manages their tenants' data, not the provider's staff list.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return sees_all_tenants(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_tenants(request) and super().has_view_permission(request, obj)


class UniqueNamePerTenantForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form for models unique on (tenant, name) whose tenant is read-only once saved: Django then
    leaves (tenant, name) out of its uniqueness check, and a clash would surface as an IntegrityError.
    Subclasses set ``duplicate_name_message`` (with ``%(tenant)s``)."""

    duplicate_name_message: Any = ""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id else None)
        name = cleaned.get("name")
        if tenant is not None and name:
            clash = type(self.instance).objects.filter(tenant=tenant, name=name).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("name", self.duplicate_name_message % {"tenant": tenant})
        return cleaned
