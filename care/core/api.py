"""DRF glue shared by every API.

- A ``BusinessRuleViolation`` without field keys becomes a 400 ``{"detail": "<message>"}``, the shape
  of DRF's own errors (a client shows ``detail``, whatever went wrong);
- any other Django ``ValidationError`` (and a violation with field keys) becomes a 400 with its
  messages, per field when it has them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from care.core.errors import BusinessRuleViolation


class RuleViolated(exceptions.APIException):
    status_code = 400
    default_code = "business_rule"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BusinessRuleViolation) and not hasattr(exc, "error_dict"):
        exc = RuleViolated(detail=" ".join(exc.messages))
    elif isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)
