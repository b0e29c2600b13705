"""The phone channel in the admin: lines, the call record, codes, campaigns and service level targets.

A line's signing secret is write-only (never sent back to the browser). Calls are records built from
the telephone system's events: they are looked at here; only their codes change, through
``call_set_codes``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from care.calls.models import Call, CallCode, Campaign, PhoneLine, ServiceLevelTarget
from care.calls.services import call_set_codes
from care.core.admin import TenantScopedAdmin, UniqueNamePerTenantForm
from care.tickets.admin import ReadOnlyInline, TicketAdmin, search_by_ticket_reference

# URL names of the line's endpoints (care/connectors/urls.py); a name not (yet) routed is left out.
_LINE_URL_NAMES = [
    ("events", "inbound:phone_events"),
    ("Twilio", "inbound:phone_twilio"),
    ("route", "inbound:phone_route"),
]


class PhoneLineForm(forms.ModelForm):  # type: ignore[type-arg]
    """The signing secret is write-only: it is never sent back to the browser once saved."""

    signing_secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "Twilio's auth token or the HMAC secret of signed events. Leave empty to keep the stored one."
        ),
    )

    class Meta:
        model = PhoneLine
        fields = [
            "tenant",
            "number",
            "name",
            "provider",
            "is_active",
            "signing_secret",
            "default_language",
            "ivr_menu",
            "ticket_window_hours",
            "voicemail_target",
            "overflow_target",
        ]

    def clean_signing_secret(self) -> str:
        entered: str = self.cleaned_data.get("signing_secret") or ""
        return entered or (self.instance.signing_secret if self.instance.pk else "")


@admin.register(PhoneLine)
class PhoneLineAdmin(TenantScopedAdmin):
    form = PhoneLineForm
    list_display = ["number", "name", "tenant", "provider", "is_active"]
    list_filter = ["tenant", "provider", "is_active"]
    search_fields = ["number", "name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]
    readonly_fields = ["inbound_token", "endpoint_urls", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["tenant", "number", "name", "provider", "is_active"]}),
        (_("Telephone system"), {"fields": ["signing_secret", "inbound_token", "endpoint_urls"]}),
        (
            _("Calls"),
            {
                "fields": [
                    "default_language",
                    "ivr_menu",
                    "ticket_window_hours",
                    "voicemail_target",
                    "overflow_target",
                ]
            },
        ),
        (_("Times"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("URLs for the telephone system"))
    def endpoint_urls(self, line: PhoneLine) -> str:
        if not line.pk:
            return str(_("Shown once the line is saved."))
        rows = []
        for label, name in _LINE_URL_NAMES:
            try:
                rows.append((label, reverse(name, kwargs={"token": line.inbound_token})))
            except NoReverseMatch:
                continue
        return format_html_join("", "<div>{}: <code>{}</code></div>", rows)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Calls keep their line (PROTECT); a line no longer used is set inactive.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.calls.exists())


class CallForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Call
        fields = ["reason", "outcome_code"]


_CALL_RECORD_FIELDS = [
    "tenant",
    "line",
    "direction",
    "provider",
    "external_id",
    "caller",
    "dialled",
    "customer",
    "status",
    "outcome",
    "offered_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "queue_wait_seconds",
    "reported_wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "wrapup_seconds",
    "agent",
    "agent_ref",
    "ivr_path",
    "language",
    "recording_url",
    "ticket",
    "interaction",
    "campaign",
    "sale_amount",
    "last_event_at",
    "events_count",
    "created_at",
    "updated_at",
]


@admin.register(Call)
class CallAdmin(TenantScopedAdmin):
    form = CallForm
    list_display = [
        "offered_at",
        "tenant",
        "direction",
        "caller",
        "agent",
        "outcome",
        "queue_wait_seconds",
        "talk_seconds",
    ]
    list_filter = ["direction", "outcome", "status", "tenant", "agent"]
    search_fields = ["caller", "dialled", "external_id"]
    date_hierarchy = "offered_at"
    autocomplete_fields = ["ticket", "agent", "customer"]
    list_select_related = ["tenant", "agent__user"]
    readonly_fields = _CALL_RECORD_FIELDS
    fieldsets = [
        (None, {"fields": ["tenant", "line", "direction", "provider", "external_id", "caller", "dialled"]}),
        (
            _("Handling"),
            {"fields": ["customer", "agent", "agent_ref", "ticket", "interaction", "ivr_path", "language"]},
        ),
        (_("Codes"), {"fields": ["reason", "outcome_code", "campaign", "sale_amount"]}),
        (
            _("Times"),
            {
                "fields": [
                    "status",
                    "outcome",
                    "offered_at",
                    "queued_at",
                    "answered_at",
                    "ended_at",
                    "queue_wait_seconds",
                    "reported_wait_seconds",
                    "talk_seconds",
                    "hold_seconds",
                    "wrapup_seconds",
                    "recording_url",
                ]
            },
        ),
        (_("Events"), {"fields": ["last_event_at", "events_count", "created_at", "updated_at"]}),
    ]

    @admin.display(description=_("events applied"))
    def events_count(self, call: Call) -> int:
        return len(call.events_seen)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("reason", "outcome_code") and field is not None:
            # The call's own tenant's codes only; the service refuses others anyway.
            call_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            call = Call.objects.filter(pk=call_id).only("tenant_id").first() if call_id else None
            if call is not None:
                field.queryset = field.queryset.filter(tenant_id=call.tenant_id)
        return field

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Call], search_term: str
    ) -> tuple[QuerySet[Call], bool]:
        found = search_by_ticket_reference(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request: HttpRequest, obj: Call, form: ModelForm[Call], change: bool) -> None:
        call_set_codes(
            call=obj,
            reason=form.cleaned_data.get("reason"),
            outcome_code=form.cleaned_data.get("outcome_code"),
            actor=request.user,  # type: ignore[arg-type]
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CallCode)
class CallCodeAdmin(TenantScopedAdmin):
    list_display = ["code", "label", "kind", "tenant", "is_sale", "is_active"]
    list_filter = ["tenant", "kind", "is_sale", "is_active"]
    search_fields = ["code", "label"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A code's tenant and kind are fixed once calls may carry it.
        return ["tenant", "kind"] if obj is not None else []


class CampaignForm(UniqueNamePerTenantForm):
    class Meta:
        model = Campaign
        fields = ["tenant", "name", "is_active", "starts_on", "ends_on"]

    duplicate_name_message = _("%(tenant)s already has a campaign of this name.")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    form = CampaignForm
    list_display = ["name", "tenant", "is_active", "starts_on", "ends_on"]
    list_filter = ["tenant", "is_active"]
    search_fields = ["name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["tenant"] if obj is not None else []


@admin.register(ServiceLevelTarget)
class ServiceLevelTargetAdmin(TenantScopedAdmin):
    list_display = [
        "tenant",
        "percent",
        "answered_within_seconds",
        "short_abandon_seconds",
        "abandoned_counting",
    ]
    list_filter = ["tenant", "abandoned_counting"]
    search_fields = ["tenant__name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["tenant"] if obj is not None else []


class CallInline(ReadOnlyInline):
    model = Call
    fields = readonly_fields = (
        "offered_at",
        "direction",
        "caller",
        "agent",
        "outcome",
        "queue_wait_seconds",
        "talk_seconds",
    )
    ordering = ["offered_at", "id"]
    fk_name = "ticket"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        return super().get_queryset(request).select_related("agent__user")


# Calls extend the ticket page from above, as routing and sla do: tickets must not import calls.
TicketAdmin.inlines = [*TicketAdmin.inlines, CallInline]
