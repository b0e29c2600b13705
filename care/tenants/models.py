"""Client companies (tenants), joint-venture groups, their service hours and agent guidelines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.core.languages import Proficiency, validate_language_code, validate_language_codes
from care.core.models import TenantOwned, TenantOwnedQuerySet, TimeStampedModel
from care.core.validators import validate_hex_colour, validate_time_zone
from care.tenants.validators import validate_holiday_region

TENANT_CODE_VALIDATOR = RegexValidator(
    r"^[A-Z][A-Z0-9]{1,9}$",
    _("Use 2 to 10 capital letters or digits, starting with a letter (it prefixes ticket references)."),
)


class TenantGroup(TimeStampedModel):
    """A joint venture: small companies that share one service center and one pool of agents."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("tenant group")
        verbose_name_plural = _("tenant groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tenant(TimeStampedModel):
    """A client company whose customer contacts the center handles."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    code = models.CharField(
        _("reference code"),
        max_length=10,
        unique=True,
        validators=[TENANT_CODE_VALIDATOR],
        help_text=_("Prefix of ticket references, e.g. ACME gives ACME-1042."),
    )
    group = models.ForeignKey(
        TenantGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tenants",
        verbose_name=_("tenant group"),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    default_language = models.CharField(
        _("default language"), max_length=8, default="en", validators=[validate_language_code]
    )
    supported_languages = ArrayField(
        models.CharField(max_length=8),
        verbose_name=_("supported languages"),
        default=list,
        blank=True,
        validators=[validate_language_codes],
        help_text=_("Languages customers may be served in, as ISO 639-1 codes separated by commas."),
    )
    required_proficiency = models.PositiveSmallIntegerField(
        _("required language level"),
        choices=Proficiency.choices,
        default=Proficiency.B2,
        help_text=_("The least level an agent must have in the customer's language to be given the work."),
    )
    holiday_country = models.CharField(
        _("holiday country"), max_length=2, blank=True, help_text=_("ISO 3166-1 code, e.g. DE.")
    )
    holiday_subdivision = models.CharField(
        _("holiday subdivision"), max_length=10, blank=True, help_text=_("e.g. BY for Bavaria.")
    )
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#4f46e5",
        validators=[validate_hex_colour],
        help_text=_("Marks this client's work in the agent desk."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    objects: Any = TenantOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        validate_holiday_region(self.holiday_country, self.holiday_subdivision)
        if (
            self.default_language
            and self.supported_languages
            and (self.default_language not in self.supported_languages)
        ):
            raise ValidationError(
                {"supported_languages": _("The supported languages must include the default language.")}
            )

    @property
    def languages(self) -> list[str]:
        """All languages served, the default first."""
        return [self.default_language, *(c for c in self.supported_languages if c != self.default_language)]


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class ServiceHours(TenantOwned):
    """One opening interval on one weekday, in the tenant's time zone. No row for a day: closed."""

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        verbose_name = _("service hours")
        verbose_name_plural = _("service hours")
        ordering = ["tenant", "weekday", "opens_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "weekday", "opens_at"], name="tenants_hours_unique_start"
            )
        ]
        indexes = [models.Index(fields=["tenant", "weekday"], name="tenants_hours_tenant_day")]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if (
            self.opens_at
            and self.closes_at
            and self.closes_at != dt.time(0)
            and self.closes_at <= self.opens_at
        ):
            raise ValidationError({"closes_at": _("Closing time must be after opening time.")})


class TenantHoliday(TenantOwned):
    """A day the tenant's service is closed besides public holidays (a company event, a local day)."""

    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("closing day")
        verbose_name_plural = _("closing days")
        ordering = ["tenant", "date"]
        constraints = [models.UniqueConstraint(fields=["tenant", "date"], name="tenants_holiday_unique_date")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"


class Guideline(TenantOwned):
    """The client's instructions for agents: greeting, script, product notes. Shown beside tickets."""

    class Kind(models.TextChoices):
        GREETING = "greeting", _("Greeting")
        SCRIPT = "script", _("Call script")
        PRODUCT = "product", _("Product notes")
        INSTRUCTION = "instruction", _("Instruction")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.INSTRUCTION)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    language = models.CharField(_("language"), max_length=8, blank=True, validators=[validate_language_code])
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("guideline")
        verbose_name_plural = _("guidelines")
        ordering = ["tenant", "position", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "language", "title"], name="tenants_guideline_unique_title"
            )
        ]
        indexes = [models.Index(fields=["tenant", "position"], name="tenants_guideline_tenant_pos")]

    def __str__(self) -> str:
        return self.title
