"""Mailboxes, the raw inbound store (failed messages can be retried here) and outbound deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from care.connectors.models import InboundMessage, InboundStatus, Mailbox, OutboundDelivery
from care.connectors.services import inbound_retry
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
        "recipient",
        "status",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "tenant", "channel"]
    search_fields = ["recipient", "message_id"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "tenant",
        "interaction",
        "channel",
        "mailbox",
        "recipient",
        "message_id",
        "status",
        "attempts",
        "last_error",
        "sent_at",
        "failed_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
