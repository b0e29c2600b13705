"""SLA in the admin: policies (the client's targets), and the clocks and events they produce.

A policy is checked by its model's ``clean()`` (at least one target, an escalation queue of its own
tenant, a warning between 1 and 99 %), so a bad policy is a form error. Clocks and events are
records written by the SLA services: they are looked at here, never changed. A policy change applies
to clocks started afterwards; running clocks keep the target they started with.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from care.core.admin import TenantScopedAdmin, UniqueNamePerTenantForm
from care.sla.models import ClockState, SlaClock, SlaEvent, SlaPolicy
from care.tickets.admin import ReadOnlyInline, TicketAdmin, search_by_ticket_reference
from care.tickets.models import Ticket


def _ticket_link(ticket: Ticket) -> str:
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    return format_html('<a href="{}">{}</a>', url, ticket.reference)


def _duration(seconds: int) -> str:
    """``2 h 05 min`` or ``40 min``: whole minutes, rounded towards zero."""
    minutes = abs(seconds) // 60
    if minutes >= 60:
        return gettext("%(hours)d h %(minutes)02d min") % {"hours": minutes // 60, "minutes": minutes % 60}
    return gettext("%(minutes)d min") % {"minutes": minutes}


def time_left(clock: SlaClock, now: dt.datetime | None = None) -> str:
    """A running clock: wall-clock time to its due instant, what a countdown shows (or how late it is);
    a paused clock: the business time left of its target; nothing once it is met or stopped."""
    if clock.state == ClockState.RUNNING and clock.due_at is not None:
        seconds = int((clock.due_at - (now or timezone.now())).total_seconds())
        if seconds < 0:
            return gettext("overdue by %(duration)s") % {"duration": _duration(seconds)}
        return _duration(seconds)
    if clock.state == ClockState.PAUSED:
        left = max(clock.budget_seconds - clock.elapsed_seconds, 0)
        return gettext("%(duration)s (paused)") % {"duration": _duration(left)}
    return "–"


# --- Policies -----------------------------------------------------------------------------------


class SlaPolicyForm(UniqueNamePerTenantForm):
    class Meta:
        model = SlaPolicy
        fields = [
            "tenant",
            "name",
            "position",
            "is_active",
            "priority",
            "channel",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "business_hours",
            "warning_percent",
            "raise_priority_on_breach",
            "escalate_to_queue",
        ]

    duplicate_name_message = _("%(tenant)s already has a policy of this name.")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantScopedAdmin):
    form = SlaPolicyForm
    list_display = [
        "name",
        "tenant",
        "priority",
        "channel",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "business_hours",
        "warning_percent",
        "breach_actions",
        "is_active",
    ]
    list_filter = ["tenant", "is_active", "business_hours", "priority", "channel"]
    search_fields = ["name", "tenant__name", "tenant__code"]
    autocomplete_fields = ["tenant", "escalate_to_queue"]
    list_select_related = ["tenant", "escalate_to_queue"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "position", "is_active"]}),
        (_("Which tickets"), {"fields": ["priority", "channel"]}),
        (
            _("Targets"),
            {
                "fields": [
                    "first_response_minutes",
                    "next_response_minutes",
                    "resolution_minutes",
                    "business_hours",
                    "warning_percent",
                ]
            },
        ),
        (_("On breach"), {"fields": ["raise_priority_on_breach", "escalate_to_queue"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Clocks of the tenant's tickets refer to the policy and its escalation queue: fixed once saved.
        return ["tenant"] if obj is not None else []

    @admin.display(description=_("on breach"))
    def breach_actions(self, policy: SlaPolicy) -> str:
        actions = [gettext("notify")]
        if policy.raise_priority_on_breach:
            actions.append(gettext("raise the priority"))
        if policy.escalate_to_queue is not None:
            actions.append(gettext("route through %(queue)s") % {"queue": policy.escalate_to_queue})
        return ", ".join(actions)

    @admin.action(description=_("Activate selected policies"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[SlaPolicy]) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, _("%(count)d policies activated.") % {"count": count})

    @admin.action(description=_("Deactivate selected policies"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[SlaPolicy]) -> None:
        # Clocks already running keep their targets; new tickets get the next matching policy.
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, _("%(count)d policies deactivated.") % {"count": count})


# --- Clocks and events: records -----------------------------------------------------------------


class ReadOnlyAdmin(TenantScopedAdmin):
    """Records written by the SLA services: read-only for everybody, superusers included."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found = search_by_ticket_reference(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_reference(self, row: SlaClock | SlaEvent) -> str:
        return _ticket_link(row.ticket)


class BreachedFilter(admin.SimpleListFilter):
    title = _("breached")
    parameter_name = "breached"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(breached_at__isnull=self.value() == "no")
        return queryset


@admin.register(SlaClock)
class SlaClockAdmin(ReadOnlyAdmin):
    list_display = [
        "ticket_reference",
        "tenant",
        "target",
        "state",
        "due_at",
        "time_left_display",
        "warned",
        "breached",
    ]
    list_filter = ["tenant", "target", "state", BreachedFilter]
    search_fields = ["ticket__subject"]
    list_select_related = ["tenant", "ticket__tenant"]
    ordering = ["-started_at", "-id"]
    fields = readonly_fields = (
        "ticket_reference",
        "tenant",
        "policy",
        "target",
        "state",
        "time_left_display",
        "budget_minutes",
        "business_hours",
        "started_at",
        "due_at",
        "warn_at",
        "warned_at",
        "breached_at",
        "paused_at",
        "met_at",
        "stopped_at",
    )

    @admin.display(description=_("time left"))
    def time_left_display(self, clock: SlaClock) -> str:
        return time_left(clock)

    @admin.display(description=_("target (minutes)"))
    def budget_minutes(self, clock: SlaClock) -> int:
        return clock.budget_seconds // 60

    @admin.display(description=_("warned"), boolean=True, ordering="warned_at")
    def warned(self, clock: SlaClock) -> bool:
        return clock.warned_at is not None

    @admin.display(description=_("breached"), boolean=True, ordering="breached_at")
    def breached(self, clock: SlaClock) -> bool:
        return clock.breached_at is not None


@admin.register(SlaEvent)
class SlaEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "ticket_reference", "tenant", "target", "kind", "due_at", "actions_taken"]
    list_filter = ["tenant", "kind", "target"]
    search_fields = ["ticket__subject"]
    list_select_related = ["tenant", "ticket__tenant"]
    fields = readonly_fields = (
        "created_at",
        "ticket_reference",
        "tenant",
        "target",
        "kind",
        "due_at",
        "actions_taken",
        "actions_done_at",
    )

    @admin.display(description=_("actions taken"))
    def actions_taken(self, event: SlaEvent) -> str:
        if event.actions_done_at is None:
            return gettext("pending")
        return "; ".join(str(action) for action in event.actions or [])


# --- The ticket page ----------------------------------------------------------------------------


class SlaClockInline(ReadOnlyInline):
    model = SlaClock
    fields = readonly_fields = (
        "target",
        "state",
        "started_at",
        "due_at",
        "time_left_display",
        "warned_at",
        "breached_at",
        "met_at",
    )
    ordering = ["started_at", "id"]
    verbose_name_plural = _("SLA clocks")

    @admin.display(description=_("time left"))
    def time_left_display(self, clock: SlaClock) -> str:
        return time_left(clock)


# SLA extends the ticket page from above, as routing does: tickets must not import the SLA engine.
TicketAdmin.inlines = [*TicketAdmin.inlines, SlaClockInline]
