"""Routing in the admin: queues with their steps, the live queue, and the decision log.

Configuration is checked by the models' ``clean()`` (``rules.check_queue`` and ``rules.check_step``),
so an impossible queue or step is a form error with the same message the services give. The live
queue and the decision log are records: they are looked at here, and changed only through the
routing services ("Route now").
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from care.accounts.models import Presence, TenantAuthorisation
from care.core.admin import TenantScopedAdmin, TenantScopedInline, UniqueNamePerTenantForm
from care.routing import services
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.routing.selectors import explain_decision
from care.tickets.admin import ReadOnlyInline, TicketAdmin, search_by_ticket_reference

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


# --- Queues and steps ---------------------------------------------------------------------------


class RoutingStepInline(TenantScopedInline):
    """Steps are validated with their queue's tenant, also while the queue is being added (the step
    then holds the unsaved queue: ``check_step`` reads its tenant from there)."""

    model = RoutingStep
    fields = ["position", "after_seconds", "hours", "team_kind", "team", "language", "min_proficiency"]
    autocomplete_fields = ["team"]
    ordering = ["position", "after_seconds", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingStep]:
        return super().get_queryset(request).select_related("team")


class RoutingQueueForm(UniqueNamePerTenantForm):
    class Meta:
        model = RoutingQueue
        fields = [
            "tenant",
            "name",
            "position",
            "is_active",
            "channels",
            "languages",
            "tags",
            "required_skill",
            "strategy",
            "offer_timeout_seconds",
            "overflow_queue",
            "overflow_after_seconds",
        ]

    duplicate_name_message = _("%(tenant)s already has a queue of this name.")


def _agents_online() -> Any:
    """Online, active agents authorised for the queue's tenant (holding its skill, if it needs one):
    one subquery per row of the change list, no query per row."""
    authorised = TenantAuthorisation.objects.filter(
        tenant_id=OuterRef("tenant_id"), agent__presence=Presence.ONLINE, agent__user__is_active=True
    )

    def count(rows: QuerySet[TenantAuthorisation]) -> Any:
        counted = rows.order_by().values("tenant_id").annotate(n=Count("agent_id", distinct=True)).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    return Case(
        When(required_skill__isnull=True, then=count(authorised)),
        default=count(authorised.filter(skills=OuterRef("required_skill_id"))),
        output_field=IntegerField(),
    )


@admin.register(RoutingQueue)
class RoutingQueueAdmin(TenantScopedAdmin):
    form = RoutingQueueForm
    list_display = [
        "name",
        "tenant",
        "channel_list",
        "language_list",
        "strategy_label",
        "step_count",
        "overflow_queue",
        "is_active",
        "agents_online",
    ]
    list_filter = ["tenant", "strategy", "is_active"]
    search_fields = ["name", "tags", "tenant__name", "tenant__code"]
    autocomplete_fields = ["tenant", "required_skill", "overflow_queue"]
    list_select_related = ["tenant", "overflow_queue"]
    inlines = [RoutingStepInline]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "position", "is_active"]}),
        (_("Which work"), {"fields": ["channels", "languages", "tags", "required_skill"]}),
        (_("How it is given"), {"fields": ["strategy", "offer_timeout_seconds"]}),
        (_("Overflow"), {"fields": ["overflow_queue", "overflow_after_seconds"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingQueue]:
        queues: QuerySet[RoutingQueue] = super().get_queryset(request)
        # Subqueries rather than a join and GROUP BY, which would drop the model's default ordering.
        steps = RoutingStep.objects.filter(queue=OuterRef("pk")).order_by().values("queue")
        step_total = Subquery(steps.annotate(n=Count("pk")).values("n"), output_field=IntegerField())
        return queues.annotate(step_total=Coalesce(step_total, 0), online_total=_agents_online())

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Waiting items, steps and overflow links belong to the queue's tenant: it is fixed once saved.
        return ["tenant"] if obj is not None else []

    @admin.display(description=_("channels"))
    def channel_list(self, queue: RoutingQueue) -> str:
        return ", ".join(queue.channels) or str(_("all"))

    @admin.display(description=_("languages"))
    def language_list(self, queue: RoutingQueue) -> str:
        return ", ".join(queue.languages) or str(_("all"))

    @admin.display(description=_("strategy"), ordering="strategy")
    def strategy_label(self, queue: RoutingQueue) -> str:
        return str(queue.get_strategy_display())

    @admin.display(description=_("steps"), ordering="step_total")
    def step_count(self, queue: RoutingQueue) -> int:
        return int(getattr(queue, "step_total", 0))

    @admin.display(description=_("agents online"), ordering="online_total")
    def agents_online(self, queue: RoutingQueue) -> int:
        """Authorised for the tenant (with the queue's skill) and online; language, channel, shift
        and capacity are checked when work is routed (see a decision's candidates)."""
        return int(getattr(queue, "online_total", 0))

    @admin.action(description=_("Activate selected queues"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[RoutingQueue]) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, _("%(count)d queues activated.") % {"count": count})

    @admin.action(description=_("Deactivate selected queues"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[RoutingQueue]) -> None:
        # Work already in a deactivated queue is routed by the tenant's default rule.
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, _("%(count)d queues deactivated.") % {"count": count})


# --- The live queue -----------------------------------------------------------------------------


@admin.register(QueuedItem)
class QueuedItemAdmin(TenantScopedAdmin):
    """What waits now. Read-only: items come and go with their tickets; "Route now" asks the engine."""

    list_display = [
        "ticket_reference",
        "tenant",
        "queue",
        "state",
        "channel",
        "language",
        "priority",
        "enqueued_at",
        "offered_to",
        "next_attempt_at",
    ]
    list_filter = ["tenant", "state", "channel", "queue"]
    search_fields = ["ticket__subject"]
    list_select_related = ["tenant", "ticket__tenant", "queue", "offered_to__user"]
    fields = readonly_fields = (
        "ticket_reference",
        "tenant",
        "queue",
        "state",
        "channel",
        "language",
        "priority",
        "sla_due_at",
        "enqueued_at",
        "queue_entered_at",
        "offered_to",
        "offer_expires_at",
        "declined_by",
        "explained_steps",
        "next_attempt_at",
        "attempts",
        "last_routed_at",
    )
    actions = ["route_now"]

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_reference(self, item: QueuedItem) -> str:
        return f"{item.ticket.reference} {item.ticket.subject}"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[QueuedItem], search_term: str
    ) -> tuple[QuerySet[QueuedItem], bool]:
        found = search_by_ticket_reference(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An item stops waiting through its ticket (assigned, solved); deleting it would leave the
        # ticket waiting unseen until the sweep queues it again.
        return False

    def has_route_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("routing.change_queueditem")

    @admin.action(description=_("Route selected items now"), permissions=["route"])
    def route_now(self, request: HttpRequest, queryset: QuerySet[QueuedItem]) -> None:
        outcome: Counter[str] = Counter()
        for item_id, state in queryset.values_list("pk", "state"):
            if state != QueuedItem.State.WAITING:
                outcome["offered_before"] += 1
                continue
            decision = services.route_item(item_id=item_id)
            kind = decision.kind if decision is not None else ""
            if kind in (RoutingDecision.Kind.ASSIGNED, RoutingDecision.Kind.OFFERED):
                outcome[kind] += 1
            else:
                outcome["waiting"] += 1
        message: StrOrPromise = _(
            "%(assigned)d assigned, %(offered)d offered, %(waiting)d still waiting (nobody eligible "
            "is free: see the decision log), %(skipped)d already offered and left alone."
        )
        self.message_user(
            request,
            message
            % {
                "assigned": outcome[RoutingDecision.Kind.ASSIGNED],
                "offered": outcome[RoutingDecision.Kind.OFFERED],
                "waiting": outcome["waiting"],
                "skipped": outcome["offered_before"],
            },
        )


# --- The decision log ---------------------------------------------------------------------------


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(TenantScopedAdmin):
    """The explainable decision log: read-only for everybody, superusers included."""

    list_display = [
        "created_at",
        "ticket_reference",
        "tenant",
        "kind",
        "agent",
        "step",
        "queue_name",
        "waited_seconds",
        "actor",
    ]
    list_filter = ["tenant", "kind"]
    search_fields = [
        "ticket__subject",
        "queue_name",
        "reason",
        "agent__user__email",
        "agent__user__full_name",
    ]
    list_select_related = ["tenant", "ticket__tenant", "agent__user", "actor"]
    fields = readonly_fields = (
        "ticket_reference",
        "tenant",
        "created_at",
        "kind",
        "agent",
        "actor",
        "queue_name",
        "step",
        "strategy",
        "enqueued_at",
        "waited_seconds",
        "reason",
        "explanation",
    )

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_reference(self, decision: RoutingDecision) -> str:
        return decision.ticket.reference

    @admin.display(description=_("explanation"))
    def explanation(self, decision: RoutingDecision) -> str:
        return format_html("<pre>{}</pre>", "\n".join(explain_decision(decision)))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[RoutingDecision], search_term: str
    ) -> tuple[QuerySet[RoutingDecision], bool]:
        found = search_by_ticket_reference(queryset, search_term)
        if found is not None:
            return found, False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RoutingDecisionInline(ReadOnlyInline):
    model = RoutingDecision
    fields = readonly_fields = ("created_at", "kind", "agent", "explanation")
    ordering = ["created_at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingDecision]:
        # explain_decision reads the agent's user and the actor: loaded here, not once per row.
        return super().get_queryset(request).select_related("agent__user", "actor")

    @admin.display(description=_("why"))
    def explanation(self, decision: RoutingDecision) -> str:
        # The first line repeats the time, kind and agent shown in the columns before.
        lines = [line.strip() for line in explain_decision(decision)[1:]]
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))


# Routing extends the ticket page from above: tickets sit below routing in the app map and must not
# import it, so the ticket admin does not know this inline exists; routing adds it when its admin
# module is loaded.
TicketAdmin.inlines = [*TicketAdmin.inlines, RoutingDecisionInline]
