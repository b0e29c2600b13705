"""Macros: a tenant's canned answers, per language, with placeholders (placeholders.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.core.languages import validate_language_code
from care.core.models import TenantOwned
from care.macros.placeholders import unknown_placeholders


class Macro(TenantOwned):
    """A canned answer an agent inserts into a reply: the tenant's wording in the ticket's language."""

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(
        _("text"),
        help_text=_(
            "Placeholders are filled in when an agent inserts the macro; a value that is missing "
            "(e.g. a customer without a name) stays empty."
        ),
    )
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        validators=[validate_language_code],
        help_text=_("Offered on tickets in this language; empty: on tickets in every language."),
    )
    shortcut = models.SlugField(
        _("shortcut"),
        max_length=40,
        blank=True,
        help_text=_("A keyword agents can type to find the macro, e.g. meter-reading."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveIntegerField(_("position"), default=0, help_text=_("Lower numbers first."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )

    class Meta:
        verbose_name = _("macro")
        verbose_name_plural = _("macros")
        ordering = ["tenant", "position", "title"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "language", "title"], name="macros_macro_unique_title")
        ]
        indexes = [
            models.Index(fields=["tenant", "is_active", "position"], name="macros_macro_tenant_active")
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        super().clean()
        unknown = unknown_placeholders(self.body or "")
        if unknown:
            raise ValidationError(
                {
                    "body": _("Unknown placeholders: %(unknown)s. Use only the placeholders listed below.")
                    % {"unknown": ", ".join(unknown)}
                }
            )
