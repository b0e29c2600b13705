"""Languages Care routes by: ISO 639-1 codes and the CEFR proficiency scale.

Codes come from Django's own language table (``django.conf.locale.LANG_INFO``) so that names are
translated the same way everywhere; regional variants (``pt-br``) are not routing languages.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf.locale import LANG_INFO
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

LANGUAGE_CODES: frozenset[str] = frozenset(
    code for code, info in LANG_INFO.items() if len(code) == 2 and "name" in info
)


def language_choices() -> list[tuple[str, str]]:
    return sorted(((code, LANG_INFO[code]["name"]) for code in LANGUAGE_CODES), key=lambda c: c[1])


def validate_language_code(value: str) -> None:
    if value not in LANGUAGE_CODES:
        raise ValidationError(
            _("%(value)s is not a known language code; use an ISO 639-1 code such as de, en or es."),
            code="unknown_language",
            params={"value": value},
        )


def validate_language_codes(values: Iterable[str]) -> None:
    for value in values:
        validate_language_code(value)


class Proficiency(models.IntegerChoices):
    """CEFR levels, ordered so that ``level >= Proficiency.B2`` reads as it should."""

    A1 = 1, _("A1 beginner")
    A2 = 2, _("A2 elementary")
    B1 = 3, _("B1 intermediate")
    B2 = 4, _("B2 upper intermediate")
    C1 = 5, _("C1 advanced")
    C2 = 6, _("C2 proficient")
    NATIVE = 7, _("Native")
