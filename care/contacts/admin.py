from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from care.contacts.models import Customer, Identity
from care.contacts.services import customers_merge
from care.core.admin import TenantScopedAdmin, TenantScopedInline


class IdentityInlineForm(forms.ModelForm):  # type: ignore[type-arg]
    """An identity row on its customer's page. It takes the customer's tenant before validation, so
    that phone numbers parse in the tenant's country and the per-tenant uniqueness of identities is
    a form error here rather than an IntegrityError on save (tenant is not a field of this form)."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        customer = self.fields["customer"].parent_instance  # type: ignore[attr-defined]
        self.instance.tenant_id = customer.tenant_id
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        exclusions: set[str] = super()._get_validation_exclusions()  # type: ignore[misc]
        if self.instance.tenant_id is not None:
            exclusions.discard("tenant")
        return exclusions


class IdentityInlineFormSet(forms.BaseInlineFormSet):  # type: ignore[type-arg]
    def clean(self) -> None:
        super().clean()
        # Django compares rows by what was typed; two spellings of one address collide only once
        # normalised, which the database would report as an IntegrityError.
        seen: set[tuple[str, str, str]] = set()
        for form in self.forms:
            if form.errors or not form.has_changed() or form.cleaned_data.get("DELETE"):
                continue
            key = (form.instance.kind, form.instance.platform, form.instance.value)
            if key in seen:
                raise ValidationError(_("%(value)s is listed twice.") % {"value": form.instance.value})
            seen.add(key)


class IdentityInline(TenantScopedInline):
    model = Identity
    form = IdentityInlineForm
    formset = IdentityInlineFormSet
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
