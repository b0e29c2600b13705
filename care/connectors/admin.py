"""Mailboxes, social accounts and conversations, the raw inbound store (failed messages can be
retried here) and outbound deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from care.connectors.models import (
    InboundMessage,
    InboundStatus,
    Mailbox,
    OutboundDelivery,
    SocialAccount,
    SocialConversation,
)
from care.connectors.services import inbound_retry
from care.connectors.social.registry import slug_for
from care.core.admin import TenantScopedAdmin


class MailboxForm(forms.ModelForm):  # type: ignore[type-arg]
    """The IMAP password is write-only: it is never sent back to the browser once saved."""

    imap_password = forms.CharField(
        label=_("IMAP password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the stored password."),
    )

    class Meta:
        model = Mailbox
        fields = [
            "tenant",
            "name",
            "address",
            "is_active",
            "delivery",
            "inbound_token",
            "default_team",
            "default_language",
            "default_priority",
            "auto_acknowledge",
            "sender_name",
            "signature",
            "imap_host",
            "imap_port",
            "imap_use_ssl",
            "imap_username",
            "imap_password",
            "imap_folder",
            "imap_processed_folder",
        ]

    def clean_imap_password(self) -> str:
        entered: str = self.cleaned_data.get("imap_password") or ""
        return entered or (self.instance.imap_password if self.instance.pk else "")


@admin.register(Mailbox)
class MailboxAdmin(TenantScopedAdmin):
    form = MailboxForm
    list_display = [
        "address",
        "name",
        "tenant",
        "delivery",
        "is_active",
        "auto_acknowledge",
        "last_polled_at",
    ]
    list_filter = ["tenant", "delivery", "is_active"]
    search_fields = ["address", "name"]
    autocomplete_fields = ["tenant", "default_team"]
    list_select_related = ["tenant"]
    readonly_fields = ["imap_uidvalidity", "imap_last_uid", "last_polled_at", "last_poll_error"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "address", "is_active", "delivery", "inbound_token"]}),
        (
            _("New tickets"),
            {"fields": ["default_team", "default_language", "default_priority", "auto_acknowledge"]},
        ),
        (_("Replies"), {"fields": ["sender_name", "signature"]}),
        (
            _("IMAP"),
            {
                "fields": [
                    "imap_host",
                    "imap_port",
                    "imap_use_ssl",
                    "imap_username",
                    "imap_password",
                    "imap_folder",
                    "imap_processed_folder",
                    "imap_uidvalidity",
                    "imap_last_uid",
                    "last_polled_at",
                    "last_poll_error",
                ]
            },
        ),
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Stored mail points at its mailbox; deactivate instead.
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(TenantScopedAdmin):
    """Everything that arrived, raw. Failed messages are listed and can be retried; none is deleted."""

    list_display = [
        "received_at",
        "tenant",
        "provider",
        "source",
        "mailbox",
        "status",
        "outcome",
        "ticket",
        "error_line",
    ]
    list_filter = ["status", "tenant", "provider", "source", "outcome"]
    search_fields = ["external_id", "sha256", "source_ref", "error"]
    list_select_related = ["tenant", "mailbox", "ticket__tenant"]
    readonly_fields = [
        "tenant",
        "channel",
        "provider",
        "source",
        "mailbox",
        "sha256",
        "size",
        "source_ref",
        "received_at",
        "status",
        "attempts",
        "error",
        "processed_at",
        "external_id",
        "ticket",
        "interaction",
        "outcome",
        "summary",
        "raw_text",
    ]
    exclude = ["raw"]
    actions = ["retry"]

    @admin.display(description=_("error"))
    def error_line(self, message: InboundMessage) -> str:
        return message.error.splitlines()[0][:120] if message.error else ""

    @admin.display(description=_("raw message"))
    def raw_text(self, message: InboundMessage) -> str:
        return bytes(message.raw)[:200_000].decode("utf-8", errors="replace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Retry selected failed messages"), permissions=["view"])
    def retry(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        from care.connectors.tasks import enqueue_processing

        failed = list(queryset.filter(status=InboundStatus.FAILED))
        for message in failed:
            inbound_retry(message=message)
            enqueue_processing(message.pk)
        if failed:
            self.message_user(request, _("%(count)d messages queued again.") % {"count": len(failed)})
        else:
            self.message_user(request, _("None of the selected messages had failed."), messages.WARNING)


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(TenantScopedAdmin):
    list_display = [
        "created_at",
        "tenant",
        "channel",
        "social_account",
        "recipient",
        "status",
        "attempts",
        "sent_at",
        "delivered_at",
        "read_at",
        "last_error",
    ]
    list_filter = ["status", "tenant", "channel", "social_account__platform"]
    search_fields = ["recipient", "message_id"]
    list_select_related = ["tenant", "social_account"]
    readonly_fields = [
        "tenant",
        "interaction",
        "channel",
        "mailbox",
        "social_account",
        "recipient",
        "message_id",
        "status",
        "attempts",
        "last_error",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "payload",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


_SECRET_FIELDS = ("app_secret", "verify_token", "access_token")


def _secret_field(label: Any, help_text: Any) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class SocialAccountForm(forms.ModelForm):  # type: ignore[type-arg]
    """The secrets are write-only: never sent back to the browser once saved; an empty field keeps
    the stored value, "clear" removes it."""

    app_secret = _secret_field(
        _("app secret"),
        _(
            "Meta app secret, X consumer secret, or the HMAC key of the generic adapter. "
            "Leave empty to keep the stored value."
        ),
    )
    verify_token = _secret_field(
        _("verify token"),
        _("Meta's hub.verify_token, or Telegram's secret token. Leave empty to keep the stored value."),
    )
    access_token = _secret_field(
        _("access token"),
        _(
            "Sends replies and fetches media (page, system-user or bot token). "
            "Leave empty to keep the stored value."
        ),
    )
    api_base = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Empty: the platform's public API. Set for a sandbox."),
    )
    clear_secrets = forms.MultipleChoiceField(
        label=_("clear stored secrets"),
        required=False,
        choices=[
            ("app_secret", _("app secret")),
            ("verify_token", _("verify token")),
            ("access_token", _("access token")),
        ],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Ticked secrets are removed (a value typed above wins over this)."),
    )

    class Meta:
        model = SocialAccount
        fields = [
            "tenant",
            "platform",
            "name",
            "account_id",
            "is_active",
            "app_secret",
            "verify_token",
            "access_token",
            "api_base",
            "default_team",
            "default_language",
            "default_priority",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _SECRET_FIELDS:
            # Not even the form's initial data holds a stored secret (only "set / not set" is shown).
            self.initial[name] = ""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        cleared = set(cleaned.get("clear_secrets") or ())
        for name in _SECRET_FIELDS:
            entered = (cleaned.get(name) or "").strip()
            if entered:
                cleaned[name] = entered
            elif name in cleared:
                cleaned[name] = ""
            else:
                cleaned[name] = str(getattr(self.instance, name) or "") if self.instance.pk else ""
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id else None)
        team = cleaned.get("default_team")
        if team is not None and tenant is not None and team.tenant_id not in (None, tenant.pk):
            self.add_error("default_team", _("That in-house team belongs to another tenant."))
        return cleaned


@admin.register(SocialAccount)
class SocialAccountAdmin(TenantScopedAdmin):
    form = SocialAccountForm
    list_display = [
        "name",
        "tenant",
        "platform",
        "account_id",
        "is_active",
        "last_inbound_at",
        "webhook_url",
    ]
    list_filter = ["tenant", "platform", "is_active"]
    search_fields = ["name", "account_id"]
    autocomplete_fields = ["tenant", "default_team"]
    list_select_related = ["tenant"]
    readonly_fields = ["webhook_url", "secrets_set", "last_inbound_at", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["tenant", "platform", "name", "account_id", "is_active"]}),
        (
            _("Platform connection"),
            {
                "fields": [
                    "webhook_url",
                    "secrets_set",
                    "app_secret",
                    "verify_token",
                    "access_token",
                    "clear_secrets",
                    "api_base",
                ],
                "description": _(
                    "Secrets are stored encrypted and never shown again; see docs/social.md for which "
                    "secret each platform needs."
                ),
            },
        ),
        (_("New tickets"), {"fields": ["default_team", "default_language", "default_priority"]}),
        (_("Activity"), {"fields": ["last_inbound_at", "created_at", "updated_at"]}),
    ]
    actions = ["activate", "deactivate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Its conversations, tickets and deliveries stay with the tenant and platform it had.
            fields += ["tenant", "platform"]
        return fields

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, account: SocialAccount) -> str:
        slug = slug_for(account.platform)
        if not account.pk:
            return str(_("Shown once the account is saved."))
        if not slug:
            return str(_("No adapter serves this platform."))
        return format_html(
            "<code>{}</code>",
            reverse("inbound:social", kwargs={"slug": slug, "token": account.inbound_token}),
        )

    @admin.display(description=_("secrets"))
    def secrets_set(self, account: SocialAccount) -> str:
        labels = {
            "app_secret": _("app secret"),
            "verify_token": _("verify token"),
            "access_token": _("access token"),
        }
        return "; ".join(
            f"{labels[name]}: {_('set') if getattr(account, name) else _('not set')}"
            for name in _SECRET_FIELDS
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Conversations and deliveries keep their account (PROTECT); one no longer used is deactivated.
        return super().has_delete_permission(request, obj) and (
            obj is None or not (obj.conversations.exists() or obj.deliveries.exists())
        )

    @admin.action(description=_("Activate selected social accounts"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[SocialAccount]) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, _("%(count)d social accounts activated.") % {"count": count})

    @admin.action(description=_("Deactivate selected social accounts"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[SocialAccount]) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(
            request,
            _("%(count)d social accounts deactivated; their webhooks now answer 404.") % {"count": count},
        )


@admin.register(SocialConversation)
class SocialConversationAdmin(TenantScopedAdmin):
    """A customer's thread with a social account: looked at here, changed only by what arrives."""

    list_display = ["sender_id", "account", "tenant", "identity", "ticket", "last_inbound_at"]
    list_filter = ["tenant", "account__platform", "account"]
    search_fields = ["sender_id", "conversation_id", "identity__display_name"]
    list_select_related = ["tenant", "account", "identity", "ticket__tenant"]
    readonly_fields = [
        "tenant",
        "account",
        "identity",
        "sender_id",
        "conversation_id",
        "ticket",
        "last_inbound_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
