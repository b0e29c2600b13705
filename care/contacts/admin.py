from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from care.contacts.models import Customer, Identity
from care.contacts.services import customers_merge
from care.core.admin import TenantScopedAdmin, TenantScopedInline


class IdentityInline(TenantScopedInline):
    model = Identity
    fields = ["kind", "platform", "value", "display_name", "is_primary"]


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tenant", "preferred_language", "merged_into", "created_at"]
    list_filter = ["tenant", "preferred_language"]
    search_fields = ["display_name", "identities__value"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["merged_into"]
    list_select_related = ["tenant", "merged_into"]
    inlines = [IdentityInline]
    actions = ["merge_into_oldest"]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Identities added on a new customer's page learn their tenant only once the customer exists.
        for inline_form in formset.forms:
            if isinstance(inline_form.instance, Identity) and not inline_form.instance.tenant_id:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)

    @admin.action(description=_("Merge selected customers into the oldest one"), permissions=["change"])
    def merge_into_oldest(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        customers = list(queryset.order_by("created_at", "pk"))
        if len(customers) < 2:
            self.message_user(request, _("Select at least two customers to merge."), messages.WARNING)
            return
        target, *sources = customers
        try:
            with transaction.atomic():  # all or nothing: a half-merged selection helps nobody
                for source in sources:
                    customers_merge(source=source, target=target, actor=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            _("%(count)d customers merged into %(target)s.") % {"count": len(sources), "target": target},
        )


@admin.register(Identity)
class IdentityAdmin(TenantScopedAdmin):
    list_display = ["value", "kind", "platform", "customer", "tenant", "is_primary"]
    list_filter = ["tenant", "kind", "platform"]
    search_fields = ["value", "display_name", "customer__display_name"]
    autocomplete_fields = ["tenant", "customer"]
    list_select_related = ["tenant", "customer"]
