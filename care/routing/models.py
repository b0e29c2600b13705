"""Routing configuration (queues and their relaxation steps), the live queue, and the decision log.

A ticket that waits for an agent has exactly one ``QueuedItem``; the row is deleted when the work is
given to an agent or stops waiting, so the table holds only what waits now. What happened stays in
``RoutingDecision``: each assignment, offer, decline, timeout, overflow and the candidates considered.

Validation of configuration (unknown languages, impossible steps, overflow cycles) is in ``rules.py``
and runs from ``clean()``, so the admin and the services reject the same things with the same message.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from care.core.channels import Channel
from care.core.languages import Proficiency, validate_language_code, validate_language_codes
from care.core.models import TenantOwned


def strategy_choices() -> list[tuple[str, Any]]:
    from care.routing.strategies import STRATEGIES

    return [("", _("Default for the channel"))] + [(name, s.label) for name, s in STRATEGIES.items()]


def validate_channels(values: list[str]) -> None:
    from django.core.exceptions import ValidationError

    unknown = sorted(set(values) - set(Channel.values))
    if unknown:
        raise ValidationError(
            _("Unknown channels: %(unknown)s; use %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(Channel.values)}
        )


class RoutingQueue(TenantOwned):
    """Where a tenant's work waits: matched by channel, language and tags, served by ordered steps."""

    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveIntegerField(
        _("position"), default=0, help_text=_("Work goes to the first matching queue of its tenant.")
    )
    channels = ArrayField(
        models.CharField(max_length=20),
        default=list,
        blank=True,
        validators=[validate_channels],
        verbose_name=_("channels"),
        help_text=_("Empty: every channel. E.g. email,social."),
    )
    languages = ArrayField(
        models.CharField(max_length=8),
        default=list,
        blank=True,
        validators=[validate_language_codes],
        verbose_name=_("languages"),
        help_text=_("Empty: every language. ISO 639-1 codes separated by commas."),
    )
    tags = ArrayField(
        models.CharField(max_length=50),
        default=list,
        blank=True,
        verbose_name=_("tags"),
        help_text=_("Empty: any ticket. Otherwise tickets with at least one of these tags."),
    )
    required_skill = models.ForeignKey(
        "accounts.Skill",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="queues",
        verbose_name=_("required skill"),
    )
    strategy = models.CharField(
        _("strategy"),
        max_length=30,
        blank=True,
        choices=strategy_choices,
        help_text=_("Empty: longest idle for calls, least loaded for written channels."),
    )
    offer_timeout_seconds = models.PositiveIntegerField(
        _("offer timeout (seconds)"),
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text=_("How long an agent who is offered work has to accept it."),
    )
    overflow_queue = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="overflow_sources",
        verbose_name=_("overflow to"),
    )
    overflow_after_seconds = models.PositiveIntegerField(_("overflow after (seconds)"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("routing queue")
        verbose_name_plural = _("routing queues")
        ordering = ["tenant", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="routing_queue_tenant_name_unique"),
            models.CheckConstraint(
                condition=models.Q(overflow_queue__isnull=True)
                | models.Q(overflow_after_seconds__isnull=False),
                name="routing_queue_overflow_has_delay",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "is_active", "position"], name="routing_queue_tenant_pos")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        from care.routing.rules import check_queue

        check_queue(self)


class StepHours(models.TextChoices):
    ANY = "any", _("Any time")
    OPEN = "open", _("During service hours")
    CLOSED = "closed", _("Outside service hours")


class TeamKind(models.TextChoices):
    ANY = "any", _("Any team")
    IN_HOUSE = "in_house", _("In-house teams")
    PROVIDER = "provider", _("Provider teams")


def team_kind_phrase(kind: str) -> str:
    """The team kind as it reads inside a sentence ("not one of the in-house teams")."""
    phrases: dict[str, str] = {
        TeamKind.IN_HOUSE: gettext("in-house teams"),
        TeamKind.PROVIDER: gettext("provider teams"),
    }
    return phrases.get(kind, gettext("any team"))


def hours_phrase(hours: str) -> str:
    """The step's time condition as it reads inside a sentence."""
    phrases: dict[str, str] = {
        StepHours.OPEN: gettext("during service hours"),
        StepHours.CLOSED: gettext("outside service hours"),
    }
    return phrases.get(hours, gettext("at any time"))


class RoutingStep(models.Model):
    """One ring of a queue: from ``after_seconds`` of waiting on, these agents may take the work too.

    Steps widen: once a step is active, the agents of earlier active steps still qualify and are tried
    first, so work goes to the narrowest ring that has someone free.
    """

    queue = models.ForeignKey(
        RoutingQueue, on_delete=models.CASCADE, related_name="steps", verbose_name=_("queue")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    after_seconds = models.PositiveIntegerField(
        _("after (seconds)"), default=0, help_text=_("Waiting time in the queue from which the step applies.")
    )
    hours = models.CharField(_("when"), max_length=10, choices=StepHours.choices, default=StepHours.ANY)
    team_kind = models.CharField(
        _("team kind"), max_length=10, choices=TeamKind.choices, default=TeamKind.ANY
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="routing_steps",
        verbose_name=_("team"),
    )
    language = models.CharField(
        _("serve in language"),
        max_length=8,
        blank=True,
        validators=[validate_language_code],
        help_text=_("Empty: the customer's language. Otherwise a fallback such as en the tenant allows."),
    )
    min_proficiency = models.PositiveSmallIntegerField(
        _("least language level"),
        choices=Proficiency.choices,
        null=True,
        blank=True,
        help_text=_("Empty: the tenant's required level. Never below it."),
    )

    class Meta:
        verbose_name = _("routing step")
        verbose_name_plural = _("routing steps")
        ordering = ["queue", "position", "after_seconds", "id"]
        indexes = [models.Index(fields=["queue", "position"], name="routing_step_queue_pos")]

    def __str__(self) -> str:
        from care.routing.rules import describe_step

        return describe_step(self)

    def clean(self) -> None:
        super().clean()
        from care.routing.rules import check_step

        check_step(self)


class QueuedItem(TenantOwned):
    """A ticket waiting for an agent (or offered to one). Deleted once given or no longer waiting."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered")

    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="queued_item", verbose_name=_("ticket")
    )
    queue = models.ForeignKey(
        RoutingQueue,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="items",
        verbose_name=_("queue"),
        help_text=_("Empty: the tenant's default routing (any authorised agent)."),
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.WAITING)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=8)
    priority = models.PositiveSmallIntegerField(_("priority"))
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    enqueued_at = models.DateTimeField(_("waiting since"), default=timezone.now)
    queue_entered_at = models.DateTimeField(_("in this queue since"), default=timezone.now)
    offered_to = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="offers",
        verbose_name=_("offered to"),
    )
    offer_expires_at = models.DateTimeField(_("offer expires"), null=True, blank=True)
    declined_by = ArrayField(
        models.PositiveIntegerField(), default=list, blank=True, verbose_name=_("declined by (agent ids)")
    )
    explained_steps = models.CharField(
        _("last explained steps"),
        max_length=100,
        blank=True,
        help_text=_("The active steps when 'nobody available' was last logged: logged again only on change."),
    )
    next_attempt_at = models.DateTimeField(
        _("next routing attempt"),
        null=True,
        blank=True,
        help_text=_("When the next step or overflow applies; the sweep retries items whose timer was lost."),
    )
    attempts = models.PositiveIntegerField(_("routing attempts"), default=0)
    last_routed_at = models.DateTimeField(_("last routing attempt"), null=True, blank=True)

    class Meta:
        verbose_name = _("queued item")
        verbose_name_plural = _("queued items")
        ordering = ["tenant", "enqueued_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(state="waiting", offered_to__isnull=True, offer_expires_at__isnull=True)
                    | models.Q(state="offered", offered_to__isnull=False, offer_expires_at__isnull=False)
                ),
                name="routing_item_offer_consistent",
            )
        ]
        indexes = [
            # What an agent who frees up pulls: waiting work of their tenants, most urgent first.
            models.Index(
                "tenant",
                "channel",
                models.F("sla_due_at").asc(nulls_last=True),
                models.F("priority").desc(),
                "enqueued_at",
                name="routing_item_waiting_urgency",
                condition=models.Q(state="waiting"),
            ),
            models.Index(fields=["tenant", "state", "enqueued_at"], name="routing_item_tenant_state"),
            models.Index(
                fields=["offer_expires_at"],
                name="routing_item_offer_expiry",
                condition=models.Q(state="offered"),
            ),
            models.Index(fields=["offered_to"], name="routing_item_offered_to"),
            models.Index(
                fields=["next_attempt_at"],
                name="routing_item_next_attempt",
                condition=models.Q(state="waiting"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} #{self.ticket_id}"


class RoutingDecision(TenantOwned):
    """One routing event on a ticket, with the reasons: the explainable decision log."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        OFFERED = "offered", _("Offered")
        ACCEPTED = "accepted", _("Offer accepted")
        DECLINED = "declined", _("Offer declined")
        EXPIRED = "expired", _("Offer timed out")
        WAITING = "waiting", _("Nobody available, waiting")
        OVERFLOWED = "overflowed", _("Overflowed to another queue")
        MANUAL = "manual", _("Assigned by hand")
        RETURNED = "returned", _("Returned to the queue")

    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="routing_decisions", verbose_name=_("ticket")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    agent = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="routing_decisions",
        verbose_name=_("agent"),
    )
    actor = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="routing_decisions",
        verbose_name=_("by"),
        help_text=_("Empty: the routing engine."),
    )
    queue_name = models.CharField(_("queue"), max_length=200, blank=True)
    step = models.CharField(_("step"), max_length=300, blank=True)
    strategy = models.CharField(_("strategy"), max_length=30, blank=True)
    waited_seconds = models.PositiveIntegerField(_("waited (seconds)"), default=0)
    enqueued_at = models.DateTimeField(_("waiting since"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    candidates = models.JSONField(
        _("candidates"),
        default=list,
        blank=True,
        help_text=_('[{"agent": id, "name": ..., "rejected": [reasons]}] in the order they were tried.'),
    )

    class Meta:
        verbose_name = _("routing decision")
        verbose_name_plural = _("routing decisions")
        ordering = ["ticket", "created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "ticket", "created_at"], name="routing_decision_ticket"),
            models.Index(fields=["tenant", "created_at"], name="routing_decision_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M:%S}"
