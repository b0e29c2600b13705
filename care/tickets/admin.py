"""Tickets in the admin. Every change made here goes through the ticket services, so it is checked
and audited exactly like a change made in the desk."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf.locale import LANG_INFO
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from care.core.admin import TenantScopedAdmin
from care.tenants.models import Tenant
from care.tickets import services
from care.tickets.models import Attachment, Interaction, Ticket, TicketEvent, TicketLink
from care.tickets.selectors import parse_reference
from care.tickets.status import Status, check_transition

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def search_by_ticket_reference(
    queryset: QuerySet[Any], search_term: str, prefix: str = "ticket__"
) -> QuerySet[Any] | None:
    """For admins of rows that belong to a ticket: the rows of the ticket ``ENN-12`` (or of ticket
    number 12 in any visible tenant), else None (search as usual)."""
    term = search_term.strip()
    parsed = parse_reference(term)
    if parsed is not None:
        return queryset.filter(**{f"{prefix}tenant__code": parsed[0], f"{prefix}number": parsed[1]})
    if term.isascii() and term.isdigit():
        return queryset.filter(**{f"{prefix}number": int(term)})
    return None


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InteractionInline(ReadOnlyInline):
    model = Interaction
    fields = readonly_fields = ("occurred_at", "direction", "channel", "author_label", "body_text")
    ordering = ["occurred_at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Interaction]:
        return super().get_queryset(request).select_related("author_user", "author_identity")


class TicketEventInline(ReadOnlyInline):
    model = TicketEvent
    fields = readonly_fields = ("created_at", "kind", "actor", "changes")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketEvent]:
        return super().get_queryset(request).select_related("actor")


class TicketLinkInline(ReadOnlyInline):
    model = TicketLink
    fk_name = "source"
    fields = readonly_fields = ("kind", "target", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketLink]:
        return super().get_queryset(request).select_related("target__tenant")


class TicketForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Ticket
        fields = [
            "tenant",
            "customer",
            "channel",
            "subject",
            "language",
            "status",
            "priority",
            "assignee",
            "team",
            "tags",
        ]

    def clean_status(self) -> str:
        status: str = self.cleaned_data["status"]
        if self.instance.pk is not None:
            check_transition_or_same(self.instance.status, status)
        elif status != Status.NEW:
            raise ValidationError(_("A new ticket starts as New."))
        return status

    def clean(self) -> dict[str, Any]:
        """The services' rules, checked here so that a breach is a form error rather than a 500."""
        cleaned: dict[str, Any] = super().clean() or {}
        existing = self.instance if self.instance.pk is not None else None
        # On the change page tenant and customer are read-only: they come from the ticket.
        tenant = cleaned.get("tenant") or (existing.tenant if existing else None)
        customer, assignee, team = cleaned.get("customer"), cleaned.get("assignee"), cleaned.get("team")
        if tenant and customer and customer.tenant_id != tenant.pk:
            self.add_error("customer", _("The customer belongs to another tenant."))
        if existing is None and customer and customer.merged_into_id is not None:
            self.add_error("customer", _("This customer was merged into another one; use that customer."))
        if tenant and assignee and not assignee.authorisations.filter(tenant=tenant).exists():
            self.add_error("assignee", _("This agent is not authorised for the ticket's tenant."))
        if existing and existing.status == Status.CLOSED and "assignee" in self.changed_data:
            self.add_error("assignee", _("A closed ticket cannot be assigned."))
        if tenant and team and team.tenant_id not in (None, tenant.pk):
            self.add_error("team", _("That in-house team belongs to another tenant."))
        return cleaned


def check_transition_or_same(current: str, target: str) -> None:
    if current != target:
        check_transition(current, target)


class LanguageListFilter(admin.SimpleListFilter):
    """Languages of the tenants the user sees: a DISTINCT over millions of tickets is not needed."""

    title = _("language")
    parameter_name = "language"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        codes: set[str] = set()
        for tenant in Tenant.objects.visible_to(request.user).only("default_language", "supported_languages"):
            codes.update(tenant.languages)
        return [(code, LANG_INFO.get(code, {}).get("name", code)) for code in sorted(codes)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(language=self.value()) if self.value() else queryset


@admin.register(Ticket)
class TicketAdmin(TenantScopedAdmin):
    form = TicketForm
    list_display = [
        "reference_link",
        "subject",
        "tenant",
        "status",
        "priority",
        "channel",
        "language",
        "assignee",
        "sla_due_at",
        "created_at",
    ]
    list_filter = ["tenant", "status", "priority", "channel", LanguageListFilter, "team", "created_at"]
    search_fields = ["subject", "customer__display_name", "customer__identities__value"]
    autocomplete_fields = ["tenant", "customer", "assignee", "team"]
    list_select_related = ["tenant", "assignee__user"]
    readonly_fields = [
        "reference",
        "sla_due_at",
        "first_response_at",
        "solved_at",
        "closed_at",
        "created_at",
        "updated_at",
    ]
    # No date_hierarchy: its MIN/MAX and per-day DISTINCT scan the whole table on every page.
    inlines = [InteractionInline, TicketLinkInline, TicketEventInline]
    actions = ["mark_solved", "mark_closed", "unassign"]
    fieldsets = [
        (None, {"fields": ["reference", "tenant", "customer", "subject", "channel", "language"]}),
        (_("Work"), {"fields": ["status", "priority", "assignee", "team", "tags"]}),
        (
            _("Times"),
            {
                "fields": [
                    "sla_due_at",
                    "first_response_at",
                    "solved_at",
                    "closed_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Where a ticket belongs is fixed once it exists; moving it is a merge, not an edit.
        fixed = ["tenant", "customer", "channel"] if obj is not None else []
        return [*self.readonly_fields, *fixed]

    @admin.display(description=_("reference"), ordering="number")
    def reference_link(self, ticket: Ticket) -> str:
        return format_html("<strong>{}</strong>", ticket.reference)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Tickets are closed, never deleted: the audit trail and billing depend on them.
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str) -> Any:
        parsed = parse_reference(search_term)
        if parsed is not None:
            return queryset.filter(tenant__code=parsed[0], number=parsed[1]), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        actor = request.user
        data = form.cleaned_data
        if not change:
            created = services.ticket_create(
                tenant=data["tenant"],
                customer=data["customer"],
                channel=data["channel"],
                subject=data["subject"],
                language=data.get("language") or "",
                priority=data["priority"],
                team=data.get("team"),
                tags=data.get("tags") or [],
                actor=actor,  # type: ignore[arg-type]
            )
            if data.get("assignee"):
                created = services.ticket_assign(ticket=created, agent=data["assignee"], actor=actor)  # type: ignore[arg-type]
            obj.pk, obj.number, obj.tenant = created.pk, created.number, created.tenant
            return
        original = Ticket.objects.get(pk=obj.pk)
        plain = {
            name: data[name]
            for name in ("subject", "language", "priority", "team", "tags")
            if name in form.changed_data
        }
        if plain:
            services.ticket_update(ticket=original, actor=actor, **plain)  # type: ignore[arg-type]
        if "assignee" in form.changed_data:
            services.ticket_assign(ticket=original, agent=data["assignee"], actor=actor)  # type: ignore[arg-type]
        if "status" in form.changed_data:
            services.ticket_change_status(ticket=original, status=data["status"], actor=actor)  # type: ignore[arg-type]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Inlines are read-only; nothing related is saved from this page. The change message that
        # Django writes next reads what each formset saved: nothing.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Ticket],
        change: Callable[[Ticket], object],
        done_message: StrOrPromise,
    ) -> None:
        """Run ``change`` on each ticket; the ones a rule refuses are reported, not fatal."""
        done, refused = 0, []
        for ticket in queryset.select_related("tenant"):
            try:
                change(ticket)
                done += 1
            except ValidationError as exc:
                refused.append(f"{ticket.reference}: {' '.join(exc.messages)}")
        if done:
            self.message_user(request, done_message % {"count": done})
        for line in refused[:10]:
            self.message_user(request, line, messages.WARNING)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Ticket], status: str) -> None:
        def change(ticket: Ticket) -> object:
            return services.ticket_change_status(ticket=ticket, status=status, actor=request.user)  # type: ignore[arg-type]

        # Tickets already there are left alone, and not counted as updated.
        self._apply(request, queryset.exclude(status=status), change, _("%(count)d tickets updated."))

    @admin.action(description=_("Mark selected tickets solved"), permissions=["change"])
    def mark_solved(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._set_status(request, queryset, Status.SOLVED)

    @admin.action(description=_("Close selected tickets"), permissions=["change"])
    def mark_closed(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._set_status(request, queryset, Status.CLOSED)

    @admin.action(description=_("Unassign selected tickets"), permissions=["change"])
    def unassign(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        def change(ticket: Ticket) -> object:
            return services.ticket_assign(ticket=ticket, agent=None, actor=request.user)  # type: ignore[arg-type]

        self._apply(
            request, queryset.filter(assignee__isnull=False), change, _("%(count)d tickets unassigned.")
        )


@admin.register(Interaction)
class InteractionAdmin(TenantScopedAdmin):
    list_display = ["__str__", "ticket", "tenant", "direction", "channel", "author_label", "occurred_at"]
    list_filter = ["tenant", "direction", "channel"]
    search_fields = ["body_text", "external_id"]
    autocomplete_fields = ["tenant", "ticket", "author_identity", "author_user"]
    list_select_related = ["tenant", "ticket__tenant", "author_user", "author_identity"]
    readonly_fields = ["external_id", "created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Interactions arrive through channels or the desk, which check and thread them.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The timeline is a record, like the audit trail: editing it here would re-thread messages
        # across tickets (and tenants) and skip the HTML sanitiser, with no audit event.
        return False


@admin.register(Attachment)
class AttachmentAdmin(TenantScopedAdmin):
    list_display = ["filename", "content_type", "size", "tenant", "interaction", "sha256", "created_at"]
    list_filter = ["tenant", "is_inline"]
    search_fields = ["filename", "sha256"]
    list_select_related = ["tenant", "interaction"]
    readonly_fields = [
        "tenant",
        "interaction",
        "file",
        "filename",
        "content_type",
        "size",
        "sha256",
        "content_id",
        "is_inline",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TicketEvent)
class TicketEventAdmin(TenantScopedAdmin):
    """The audit trail: read-only for everybody, superusers included."""

    list_display = ["created_at", "ticket", "tenant", "kind", "actor", "changes"]
    list_filter = ["tenant", "kind"]
    search_fields = ["ticket__subject", "actor__email"]
    list_select_related = ["tenant", "ticket__tenant", "actor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TicketLink)
class TicketLinkAdmin(TenantScopedAdmin):
    """Links are made by the channels and the desk (through ticket_link); here they are looked up."""

    list_display = ["source", "kind", "target", "tenant", "created_at"]
    list_filter = ["tenant", "kind"]
    search_fields = ["source__subject", "target__subject"]
    list_select_related = ["tenant", "source__tenant", "target__tenant"]
    readonly_fields = ["tenant", "source", "kind", "target"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
