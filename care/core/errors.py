"""Errors raised by services. Edges turn them into a clear 4xx, a form error or a CLI message."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class BusinessRuleViolation(ValidationError):  # noqa: N818 - reads as what happened
    """A request that is well-formed but breaks a rule of the business (e.g. an illegal transition)."""
