"""Validation of tenant settings that depend on outside tables (holiday regions)."""

from __future__ import annotations

from functools import cache

import holidays
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


@cache
def _supported_regions() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def validate_holiday_region(country: str, subdivision: str) -> None:
    """Raise when ``country``/``subdivision`` is not a region the ``holidays`` library knows."""
    if not country:
        if subdivision:
            raise ValidationError({"holiday_subdivision": _("A subdivision needs a country.")})
        return
    regions = _supported_regions()
    if country not in regions:
        raise ValidationError(
            {
                "holiday_country": _("%(country)s is not a country with known public holidays.")
                % {"country": country}
            }
        )
    if subdivision and subdivision not in regions[country]:
        raise ValidationError(
            {
                "holiday_subdivision": _("%(sub)s is not a subdivision of %(country)s; known: %(known)s.")
                % {"sub": subdivision, "country": country, "known": ", ".join(regions[country])}
            }
        )
