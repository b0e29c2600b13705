from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from care.core.admin import TenantScopedAdmin
from care.mentions.models import Mention


@admin.register(Mention)
class MentionAdmin(TenantScopedAdmin):
    """Mentions are written by notes, never by hand: the admin shows them (read-only)."""

    list_display = ["mentioned", "ticket", "author", "tenant", "created_at", "read_at"]
    list_filter = ["tenant", ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["mentioned__email", "mentioned__full_name", "author__email", "interaction__body_text"]
    list_select_related = ["mentioned", "author", "tenant", "ticket__tenant"]
    raw_id_fields = ["interaction", "ticket", "mentioned", "author"]
    readonly_fields = ["tenant", "interaction", "ticket", "mentioned", "author", "created_at", "read_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Mention | None = None) -> bool:
        return False
