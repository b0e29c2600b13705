"""The SLA REST API: a ticket's clocks, and attainment per tenant, target and period.

Who may call (every endpoint needs a session):
- a ticket's clocks: whoever may see the ticket (``access_ticket``: agents, supervisors, admins, and
  the tenant's portal users); a ticket the caller may not see is a 404;
- attainment: supervisors and administrators for the tenants they see, and a tenant's portal users
  for their own tenant (this is the figure the client's portal and reports show); plain agents 403.
See docs/api.md for the contracts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from care.accounts.models import Role, User
from care.sla.models import Target
from care.sla.selectors import Attainment, attainment, clocks_of
from care.tenants.models import Tenant
from care.tickets.selectors import access_ticket

# A report covers at most this many days: a bound on what one request may scan.
MAX_PERIOD_DAYS = 366
# Dates outside these years are typing mistakes; they also keep local midnights within datetime's range.
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2999, 12, 31)

# --- Who may call ---------------------------------------------------------------------------------


def _user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):  # the permission classes ran first; this narrows the type
        raise exceptions.NotAuthenticated()
    return user


class ActiveUser(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_active  # else DRF answers "not authenticated"


class SeesAttainment(ActiveUser):
    """Supervisors and administrators, and tenant portal users (for their own tenant)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        user = _user(request)
        if not (user.sees_all_tenants or user.role in (Role.SUPERVISOR, Role.PORTAL)):
            raise exceptions.PermissionDenied(
                _("Only supervisors, administrators and the tenant's portal users may see attainment.")
            )
        return True


# --- Serializers ----------------------------------------------------------------------------------


class ClockOut(serializers.Serializer[Any]):  # Any: listed with many=True
    target = serializers.CharField()
    state = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    seconds_left = serializers.IntegerField(allow_null=True)
    warned = serializers.BooleanField()
    breached = serializers.BooleanField()


class PeriodIn(serializers.Serializer[Any]):
    """``from`` and ``to`` (both included) are days in each tenant's own time zone."""

    to = serializers.DateField(input_formats=["%Y-%m-%d"])
    tenant = serializers.CharField(required=False, max_length=100)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField(input_formats=["%Y-%m-%d"])  # a keyword: no attribute
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs["from"], attrs["to"]
        for name, day in (("from", start), ("to", end)):
            if not EARLIEST <= day <= LATEST:
                raise serializers.ValidationError(
                    {name: [_("Enter a date between %(earliest)s and %(latest)s.") % _bounds()]}
                )
        if start > end:
            raise serializers.ValidationError({"to": [_("The period ends before it starts.")]})
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise serializers.ValidationError(
                {"to": [_("A period is at most %(days)d days long.") % {"days": MAX_PERIOD_DAYS}]}
            )
        return attrs


def _bounds() -> dict[str, str]:
    return {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()}


class AttainmentOut(serializers.Serializer[Any]):  # Any: listed with many=True
    tenant = serializers.CharField()
    target = serializers.CharField()
    finished = serializers.IntegerField()
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)


# --- Reads ----------------------------------------------------------------------------------------


def _attainment_by_local_days(tenants: list[Tenant], start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Attainment of ``tenants`` for the days ``start`` to ``end`` (included), each tenant's days in its
    own time zone: one query per time zone among them. By tenant code, then target."""
    by_zone: dict[str, list[Tenant]] = defaultdict(list)
    for tenant in tenants:
        by_zone[tenant.time_zone].append(tenant)
    rows: list[Attainment] = []
    for zone_name, members in by_zone.items():
        zone = ZoneInfo(zone_name)
        rows += attainment(
            tenant_ids=[tenant.pk for tenant in members],
            start=dt.datetime.combine(start, dt.time(0), tzinfo=zone),
            end=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone),
        )
    codes = {tenant.pk: tenant.code for tenant in tenants}
    order = {target: index for index, target in enumerate(Target.values)}
    rows.sort(key=lambda row: (codes[row.tenant_id], order[row.target]))
    return [
        {
            "tenant": codes[row.tenant_id],
            "target": row.target,
            "finished": row.finished,
            "met": row.met,
            "breached": row.breached,
            "share": round(row.share, 4) if row.share is not None else None,
        }
        for row in rows
    ]


# --- Views ----------------------------------------------------------------------------------------


class TicketClocksApi(APIView):
    permission_classes = [ActiveUser]

    def get(self, request: Request, reference: str) -> Response:
        try:
            ticket = access_ticket(_user(request), reference)
        except Http404 as exc:
            raise exceptions.NotFound(_("No such ticket.")) from exc
        return Response(ClockOut(clocks_of(ticket), many=True).data)


class AttainmentApi(APIView):
    permission_classes = [SeesAttainment]

    def get(self, request: Request) -> Response:
        period = PeriodIn(data=request.query_params)
        period.is_valid(raise_exception=True)
        tenants = Tenant.objects.visible_to(_user(request)).only("pk", "code", "time_zone")
        code = period.validated_data.get("tenant")
        if code is not None:
            tenants = tenants.filter(code=code.strip().upper())
        found = list(tenants.order_by("code"))
        if code is not None and not found:
            # Unknown and not yours answer alike: other companies' codes cannot be probed.
            raise exceptions.NotFound(_("No such tenant."))
        rows = _attainment_by_local_days(found, period.validated_data["from"], period.validated_data["to"])
        return Response(AttainmentOut(rows, many=True).data)
