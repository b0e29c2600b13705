"""Phone lines, call records and what the call center records about calls (docs/phone.md).

A ``Call`` is one contact by phone, built from the telephone system's events (``services.py``): the
events may arrive twice or out of order, so every field is set by a rule that gives the same result
in any order (the first answer time, the last end time, the largest talk time, ...). Raw requests
are stored by the connectors before they get here (``care/connectors/phone``).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.contacts.identities import normalise_phone
from care.core.languages import validate_language_code
from care.core.models import TenantOwned


def new_line_token() -> str:
    return secrets.token_urlsafe(24)


def validate_e164(value: str) -> None:
    if normalise_phone(value) != value:
        raise ValidationError(_("Write the number in E.164, e.g. +493012345678."), code="not_e164")


class Provider(models.TextChoices):
    GENERIC = "generic", _("Care's JSON events")
    TWILIO = "twilio", "Twilio"
    ASTERISK = "asterisk", "Asterisk"
    FREESWITCH = "freeswitch", "FreeSWITCH"


class PhoneLine(TenantOwned):
    """A dialled number of a tenant, with its IVR menu and where calls go when nobody can take them."""

    number = models.CharField(_("number"), max_length=20, unique=True, validators=[validate_e164])
    name = models.CharField(_("name"), max_length=200)
    provider = models.CharField(_("telephone system"), max_length=20, choices=Provider.choices)
    inbound_token = models.CharField(
        _("inbound token"),
        max_length=64,
        unique=True,
        default=new_line_token,
        editable=False,
        help_text=_("Part of the event and route URLs: /inbound/phone/<token>/…"),
    )
    signing_secret = models.CharField(
        _("signing secret"),
        max_length=200,
        blank=True,
        help_text=_("Twilio's auth token, or the HMAC secret of signed JSON events. Never shown again."),
    )
    ivr_menu = models.JSONField(
        _("IVR menu"),
        default=dict,
        blank=True,
        help_text=_(
            'Digit to choice, e.g. {"1": {"language": "de"}, "2": {"language": "en", "tags": ["billing"]}}.'
        ),
    )
    default_language = models.CharField(
        _("default language"), max_length=8, validators=[validate_language_code]
    )
    ticket_window_hours = models.PositiveSmallIntegerField(
        _("append to an open ticket within (hours)"),
        default=24,
        help_text=_(
            "A call from a customer with an open ticket of this tenant updated this recently is added to it."
        ),
    )
    voicemail_target = models.CharField(_("voicemail target"), max_length=300, blank=True)
    overflow_target = models.CharField(
        _("overflow target"),
        max_length=300,
        blank=True,
        help_text=_(
            "Where a call goes when no agent can take it in service hours (a queue or a provider's number)."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("phone line")
        verbose_name_plural = _("phone lines")
        ordering = ["tenant", "number"]
        indexes = [models.Index(fields=["tenant", "number"], name="calls_line_tenant_number")]

    def __str__(self) -> str:
        return f"{self.number} ({self.name})"

    def ivr_choice(self, digits: str) -> dict[str, Any]:
        """The menu entry of ``digits`` ({} when the caller chose nothing known)."""
        choice = self.ivr_menu.get(digits) if isinstance(self.ivr_menu, dict) else None
        return choice if isinstance(choice, dict) else {}


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class CallStatus(models.TextChoices):
    """Where a call is now; later states win over earlier ones whatever order the events came in."""

    OFFERED = "offered", _("Offered")
    QUEUED = "queued", _("Waiting in queue")
    RINGING = "ringing", _("Ringing")
    ANSWERED = "answered", _("Answered")
    ON_HOLD = "on_hold", _("On hold")
    ENDED = "ended", _("Ended")


class CallOutcome(models.TextChoices):
    """How an inbound call ended, for the figures (care/reporting/call_figures.py)."""

    ANSWERED = "answered", _("Answered")
    ABANDONED = "abandoned", _("Abandoned (the caller hung up while waiting)")
    REJECTED = "rejected", _("Rejected (overload: lines busy or queue full)")
    VOICEMAIL = "voicemail", _("Voicemail")
    MISSED = "missed", _("Missed")


class Campaign(TenantOwned):
    """An outbound calling campaign of a tenant (sales, surveys); its sales earn the revenue share."""

    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    starts_on = models.DateField(_("starts"), null=True, blank=True)
    ends_on = models.DateField(_("ends"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="calls_campaign_unique_name")]

    def __str__(self) -> str:
        return self.name


class CallCode(TenantOwned):
    """A call reason or outcome code of a tenant, chosen by the agent after a call."""

    class Kind(models.TextChoices):
        REASON = "reason", _("Call reason")
        OUTCOME = "outcome", _("Outcome")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    code = models.SlugField(_("code"), max_length=40)
    label = models.CharField(_("label"), max_length=200)
    is_sale = models.BooleanField(_("counts as a sale"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("call code")
        verbose_name_plural = _("call codes")
        ordering = ["tenant", "kind", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "code"], name="calls_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.label}"


class Call(TenantOwned):
    """One phone call with its timings, as the call center's figures and billing need them."""

    line = models.ForeignKey(
        PhoneLine,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("line"),
    )
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    provider = models.CharField(_("telephone system"), max_length=20, choices=Provider.choices)
    external_id = models.CharField(
        _("call id"), max_length=200, help_text=_("The telephone system's id of the call.")
    )
    caller = models.CharField(_("caller"), max_length=40, blank=True)
    dialled = models.CharField(_("dialled"), max_length=40, blank=True)
    customer = models.ForeignKey(
        "contacts.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("customer"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=CallStatus.choices, default=CallStatus.OFFERED
    )
    outcome = models.CharField(_("outcome"), max_length=10, choices=CallOutcome.choices, blank=True)
    offered_at = models.DateTimeField(_("offered"))
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    queue_wait_seconds = models.PositiveIntegerField(_("queue wait (s)"), null=True, blank=True)
    talk_seconds = models.PositiveIntegerField(_("talk (s)"), default=0)
    hold_seconds = models.PositiveIntegerField(_("hold (s)"), default=0)
    wrapup_seconds = models.PositiveIntegerField(_("wrap-up (s)"), default=0)
    agent = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("agent"),
    )
    agent_ref = models.CharField(
        _("agent reference"),
        max_length=300,
        blank=True,
        help_text=_(
            "The telephone system's name for the agent (extension, SIP URI), kept when Care has none such."
        ),
    )
    agent_named_at = models.DateTimeField(
        _("agent named at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Time of the newest event that named the agent: a later one hands the call on."),
    )
    reported_wait_seconds = models.PositiveIntegerField(
        _("reported queue wait (s)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "The longest wait the telephone system reported; it wins over the wait computed from the times."
        ),
    )
    ivr_path = models.CharField(_("IVR path"), max_length=100, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    recording_url = models.URLField(_("recording"), max_length=1000, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("ticket"),
    )
    interaction = models.OneToOneField(
        "tickets.Interaction",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="call",
        verbose_name=_("timeline entry"),
    )
    reason = models.ForeignKey(
        CallCode,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("call reason"),
        limit_choices_to={"kind": CallCode.Kind.REASON},
    )
    outcome_code = models.ForeignKey(
        CallCode,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("outcome code"),
        limit_choices_to={"kind": CallCode.Kind.OUTCOME},
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("campaign"),
    )
    sale_amount = models.DecimalField(
        _("sale amount"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    events_seen = ArrayField(
        models.CharField(max_length=120),
        default=list,
        blank=True,
        editable=False,
        verbose_name=_("events applied"),
        help_text=_("Ids of the events already applied (idempotency)."),
    )
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-offered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "external_id"], name="calls_call_unique_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-offered_at"], name="calls_call_tenant_offered"),
            models.Index(fields=["agent", "status"], name="calls_call_agent_status"),
        ]

    def __str__(self) -> str:
        parties = f"{self.caller or '?'} → {self.dialled or '?'}"
        return f"{self.get_direction_display()} {parties} ({self.offered_at:%Y-%m-%d %H:%M})"


class AbandonedCounting(models.TextChoices):
    """How abandoned calls enter the service level (care/reporting/call_figures.py)."""

    EXCLUDE_SHORT = "exclude_short", _("Leave out calls abandoned within the short threshold")
    COUNT_AS_MISSED = "count_as_missed", _("Count every abandoned call as not answered in time")
    EXCLUDE_ALL = "exclude_all", _("Leave out every abandoned call")


class ServiceLevelTarget(TenantOwned):
    """A tenant's contracted phone service level (e.g. 80 % answered within 20 s); 80/20 when absent."""

    answered_within_seconds = models.PositiveSmallIntegerField(_("answered within (s)"), default=20)
    percent = models.PositiveSmallIntegerField(
        _("share (%)"), default=80, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    short_abandon_seconds = models.PositiveSmallIntegerField(_("short abandon (s)"), default=5)
    abandoned_counting = models.CharField(
        _("abandoned calls"),
        max_length=20,
        choices=AbandonedCounting.choices,
        default=AbandonedCounting.EXCLUDE_SHORT,
    )

    class Meta:
        verbose_name = _("phone service level target")
        verbose_name_plural = _("phone service level targets")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="calls_service_level_one_per_tenant")]

    def __str__(self) -> str:
        return f"{self.percent}/{self.answered_within_seconds}"
