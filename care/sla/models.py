"""SLA policies, the clocks that run per ticket and target, and the warning and breach events.

One ``SlaClock`` per ticket and target is live (running or paused) at a time; the next-response
target gets a new clock for every customer message that waits for an answer, so attainment can be
counted per clock. ``SlaEvent`` rows are unique per ticket, target, kind and due time: that
constraint is what makes a warning or breach happen once, however often a task is retried.
Clock rules are in ``services.py`` and docs/sla.md.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.core.channels import Channel
from care.core.models import TenantOwned
from care.tickets.models import Priority


class Target(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    NEXT_RESPONSE = "next_response", _("Next response")
    RESOLUTION = "resolution", _("Resolution")


class SlaPolicy(TenantOwned):
    """The response and resolution targets a tenant pays for, optionally per priority and channel."""

    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveIntegerField(
        _("position"), default=0, help_text=_("A ticket gets the first active policy that matches it.")
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, null=True, blank=True, help_text=_("Empty: any priority.")
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=Channel.choices, blank=True, help_text=_("Empty: any channel.")
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response within (minutes)"), null=True, blank=True
    )
    next_response_minutes = models.PositiveIntegerField(
        _("next response within (minutes)"), null=True, blank=True
    )
    resolution_minutes = models.PositiveIntegerField(_("resolution within (minutes)"), null=True, blank=True)
    business_hours = models.BooleanField(
        _("count service hours only"),
        default=True,
        help_text=_("Count only the tenant's service hours (minus holidays); off: round the clock."),
    )
    warning_percent = models.PositiveSmallIntegerField(
        _("warn at (% of the target)"), default=75, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    raise_priority_on_breach = models.BooleanField(_("raise the priority on breach"), default=False)
    escalate_to_queue = models.ForeignKey(
        "routing.RoutingQueue",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("on breach, route again through"),
        help_text=_("E.g. the overflow pool: unstarted work is taken back and routed through this queue."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["tenant", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="sla_policy_tenant_name_unique")
        ]
        indexes = [models.Index(fields=["tenant", "is_active", "position"], name="sla_policy_tenant_pos")]

    def __str__(self) -> str:
        return self.name

    def minutes_for(self, target: str) -> int | None:
        return {
            Target.FIRST_RESPONSE: self.first_response_minutes,
            Target.NEXT_RESPONSE: self.next_response_minutes,
            Target.RESOLUTION: self.resolution_minutes,
        }[Target(target)]

    def clean(self) -> None:
        super().clean()
        if not any(self.minutes_for(t) for t in Target.values):
            raise ValidationError(_("Set at least one target (first response, next response or resolution)."))
        if (
            self.escalate_to_queue is not None
            and self.tenant_id
            and self.escalate_to_queue.tenant_id != self.tenant_id
        ):
            raise ValidationError({"escalate_to_queue": _("That queue belongs to another tenant.")})


class ClockState(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused (waiting on the customer)")
    MET = "met", _("Met")
    STOPPED = "stopped", _("Stopped (no longer applies)")


LIVE_STATES = (ClockState.RUNNING, ClockState.PAUSED)


class SlaClock(TenantOwned):
    """One target of one ticket, timed in business time. Breached clocks keep running until met."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="sla_clocks")
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="clocks")
    target = models.CharField(_("target"), max_length=20, choices=Target.choices)
    state = models.CharField(
        _("state"), max_length=10, choices=ClockState.choices, default=ClockState.RUNNING
    )
    budget_seconds = models.PositiveIntegerField(_("target (seconds of business time)"))
    business_hours = models.BooleanField(_("service hours only"), default=True)
    started_at = models.DateTimeField(_("started"))
    elapsed_seconds = models.PositiveIntegerField(
        _("business seconds used before the last start or resume"), default=0
    )
    resumed_at = models.DateTimeField(_("running since"), null=True, blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    warn_at = models.DateTimeField(_("warning at"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused"), null=True, blank=True)
    met_at = models.DateTimeField(_("met"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    warned_at = models.DateTimeField(_("warned"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached"), null=True, blank=True)

    class Meta:
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")
        ordering = ["ticket", "started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "target"],
                condition=models.Q(state__in=["running", "paused"]),
                name="sla_clock_one_live_per_target",
            )
        ]
        indexes = [
            # The sweep: running clocks past due that have not breached yet, and the same for warnings.
            models.Index(
                fields=["due_at"],
                name="sla_clock_due",
                condition=models.Q(state="running", breached_at__isnull=True),
            ),
            models.Index(
                fields=["warn_at"],
                name="sla_clock_warn",
                condition=models.Q(state="running", warned_at__isnull=True),
            ),
            models.Index(fields=["tenant", "ticket", "target"], name="sla_clock_ticket"),
            # Attainment per tenant and period.
            models.Index(fields=["tenant", "target", "started_at"], name="sla_clock_attainment"),
        ]

    def __str__(self) -> str:
        return f"{self.get_target_display()} ({self.get_state_display()})"

    @property
    def is_breached(self) -> bool:
        return self.breached_at is not None


class SlaEvent(TenantOwned):
    """A warning or a breach of one clock: recorded once, with the actions it triggered."""

    class Kind(models.TextChoices):
        WARNING = "warning", _("Warning")
        BREACH = "breach", _("Breach")

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="sla_events")
    clock = models.ForeignKey(SlaClock, on_delete=models.CASCADE, related_name="events")
    target = models.CharField(_("target"), max_length=20, choices=Target.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    due_at = models.DateTimeField(_("due"))
    actions = models.JSONField(_("actions taken"), default=list, blank=True)
    actions_done_at = models.DateTimeField(_("actions done"), null=True, blank=True)

    class Meta:
        verbose_name = _("SLA event")
        verbose_name_plural = _("SLA events")
        ordering = ["-created_at"]
        constraints = [
            # Exactly once: one warning and one breach per ticket, target and due time.
            models.UniqueConstraint(fields=["ticket", "target", "kind", "due_at"], name="sla_event_once")
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="sla_event_tenant_time"),
            models.Index(fields=["tenant", "ticket"], name="sla_event_ticket"),
            # The sweep's retry of actions whose task was lost.
            models.Index(
                fields=["created_at"],
                name="sla_event_actions_due",
                condition=models.Q(actions_done_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_target_display()}"
