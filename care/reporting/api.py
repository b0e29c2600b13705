"""The reporting REST API: a tenant's wallboard now (the data of the live ``wallboard.snapshot``), and
the figures of its inbound calls over a period (``care/reporting/calls.py``).

Who may call: supervisors and administrators (others 403), for a tenant they may see; an unknown
tenant and another company's answer alike, 404, so that codes cannot be probed. See docs/api.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from care.accounts.models import User
from care.reporting.call_figures import CallFigures
from care.reporting.calls import INTERVALS, TenantCallFigures, call_figures_of, local_days
from care.reporting.selectors import wallboard_of
from care.routing.api import Supervises
from care.sla.api import PeriodIn
from care.tenants.models import Tenant

# Intervals shorter than a day make many rows: a report of them covers at most this many days.
MAX_INTERVAL_PERIOD_DAYS = 31


def _visible_tenant(user: User, code: str, *, active_only: bool) -> Tenant:
    """The tenant of ``code`` if ``user`` may see it; unknown and not yours answer alike (404)."""
    tenants = Tenant.objects.visible_to(user).filter(code=code.strip().upper())
    tenant = (tenants.filter(is_active=True) if active_only else tenants).first()
    if tenant is None:
        raise exceptions.NotFound(_("No such tenant."))
    return tenant


def _supervisor(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):  # Supervises let only active users through; this narrows the type
        raise exceptions.NotAuthenticated()
    return user


class WallboardApi(APIView):
    permission_classes = [Supervises]

    def get(self, request: Request, tenant_code: str) -> Response:
        tenant = _visible_tenant(_supervisor(request), tenant_code, active_only=True)
        return Response(wallboard_of(tenant))


class CallFiguresIn(PeriodIn):
    """``from`` and ``to`` (both included) are days in the tenant's time zone."""

    tenant = serializers.CharField(max_length=100)
    interval = serializers.ChoiceField(choices=list(INTERVALS), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        interval = attrs.get("interval")
        if interval not in (None, "1d") and (attrs["to"] - attrs["from"]).days >= MAX_INTERVAL_PERIOD_DAYS:
            raise serializers.ValidationError(
                {
                    "interval": [
                        _("With intervals shorter than a day, a period is at most %(days)d days long.")
                        % {"days": MAX_INTERVAL_PERIOD_DAYS}
                    ]
                }
            )
        return attrs


# Rates to four places, seconds to one: enough for a report, and stable to compare in tests.
_RATES = ("service_level", "abandonment_rate", "rejection_rate")
_SECONDS = ("average_speed_of_answer", "average_handle_time", "longest_wait")


def figures_shape(figures: CallFigures) -> dict[str, Any]:
    shape = dataclasses.asdict(figures)
    for name, places in (*((rate, 4) for rate in _RATES), *((seconds, 1) for seconds in _SECONDS)):
        if shape[name] is not None:
            shape[name] = round(shape[name], places)
    return shape


def call_report_shape(report: TenantCallFigures, first: dt.date, last: dt.date) -> dict[str, Any]:
    contract = report.contract
    shape: dict[str, Any] = {
        "tenant": report.tenant.code,
        "time_zone": report.tenant.time_zone,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "target": {
            "answered_within_seconds": contract.target.answered_within_seconds,
            "percent": contract.target.percent,
            "short_abandon_seconds": contract.short_abandon_seconds,
            "abandoned_counting": str(contract.abandoned_counting),
        },
        "total": figures_shape(report.total),
    }
    if report.by_interval is not None:
        shape["intervals"] = [
            {"start": start.isoformat(), **figures_shape(figures)} for start, figures in report.by_interval
        ]
    return shape


class CallFiguresApi(APIView):
    permission_classes = [Supervises]

    def get(self, request: Request) -> Response:
        query = CallFiguresIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        tenant = _visible_tenant(_supervisor(request), data["tenant"], active_only=False)
        start, end = local_days(tenant, data["from"], data["to"])
        interval = INTERVALS[data["interval"]] if data.get("interval") else None
        report = call_figures_of(tenant=tenant, start=start, end=end, interval=interval)
        return Response(call_report_shape(report, data["from"], data["to"]))
