from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Field, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from care.core.admin import TenantScopedAdmin
from care.macros.models import Macro
from care.macros.placeholders import placeholder_help


@admin.register(Macro)
class MacroAdmin(TenantScopedAdmin):
    list_display = ["title", "tenant", "language", "shortcut", "is_active", "position", "created_by"]
    list_filter = ["tenant", "language", "is_active"]
    search_fields = ["title", "body", "shortcut"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fields = ["tenant", "title", "language", "shortcut", "body", "position", "is_active", *readonly_fields]
    actions = ["deactivate", "activate"]

    def formfield_for_dbfield(self, db_field: Field[Any, Any], request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "body" and field is not None:
            field.help_text = f"{db_field.help_text} {_('Known placeholders:')} {placeholder_help()}"
        return field

    def save_model(self, request: HttpRequest, obj: Macro, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=gettext_lazy("Deactivate selected macros"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Macro]) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, _("%(count)d macros deactivated.") % {"count": count})

    @admin.action(description=gettext_lazy("Activate selected macros"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Macro]) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, _("%(count)d macros activated.") % {"count": count})
