"""Small validators shared by several apps."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zone_names():
        raise ValidationError(
            _("%(value)s is not a known time zone; use an IANA name such as Europe/Berlin."),
            code="unknown_time_zone",
            params={"value": value},
        )


def validate_hex_colour(value: str) -> None:
    if not _HEX_COLOUR.match(value):
        raise ValidationError(
            _("%(value)s is not a colour; use #rrggbb."), code="bad_colour", params={"value": value}
        )
