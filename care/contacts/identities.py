"""Normalising customer identities so that the same person is found however the address was written.

Emails are compared case-insensitively, phone numbers as E.164 (parsed with Google's ``phonenumbers``),
social handles per platform without a leading ``@``.
"""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdentityKind(models.TextChoices):
    EMAIL = "email", _("Email address")
    PHONE = "phone", _("Phone number")
    SOCIAL = "social", _("Social handle")


class SocialPlatform(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Facebook Messenger"
    INSTAGRAM = "instagram", "Instagram"
    TELEGRAM = "telegram", "Telegram"
    X = "x", "X"
    SMS = "sms", "SMS"
    OTHER = "other", _("Other")


def normalise_phone(value: str, default_region: str | None = None) -> str:
    """Return ``value`` as E.164 or raise ValidationError with a message a person understands."""
    if any(char.isalpha() for char in value):
        # phonenumbers reads letters as a vanity number ("030 1234567 abc" -> +49301234567222): a
        # typo would silently become someone else's number and find that person's customer record.
        raise ValidationError(
            _("%(value)s is not a valid phone number: it contains letters."),
            code="bad_phone",
            params={"value": value},
        )
    try:
        number = phonenumbers.parse(value, default_region or None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("%(value)s is not a phone number; write it with its country code, e.g. +49 30 1234567."),
            code="bad_phone",
            params={"value": value},
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("%(value)s is not a valid phone number."), code="bad_phone", params={"value": value}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(
    kind: str, value: str, *, platform: str = "", default_region: str | None = None
) -> str:
    value = value.strip()
    if not value:
        raise ValidationError(_("An identity needs a value."), code="empty_identity")
    if kind == IdentityKind.EMAIL:
        validate_email(value)
        return value.lower()
    if kind == IdentityKind.PHONE:
        return normalise_phone(value, default_region)
    if kind == IdentityKind.SOCIAL:
        if platform not in SocialPlatform.values:
            raise ValidationError(
                _("A social handle needs its platform (one of %(platforms)s)."),
                code="bad_platform",
                params={"platforms": ", ".join(SocialPlatform.values)},
            )
        return value.removeprefix("@")
    raise ValidationError(_("%(kind)s is not a kind of identity."), code="bad_kind", params={"kind": kind})
