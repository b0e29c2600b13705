"""The agents' call REST API: log an outbound call, code a call, list a ticket's calls.

Who may call (every endpoint needs a session; tenant portal users never):
- ``POST outbound``: users with an agent profile, for tenants they are authorised for;
- ``POST <id>/codes`` and ``GET ?ticket=``: service-center staff, for calls and tickets of tenants they
  see. A call, ticket or tenant the caller may not see is a 404, like one that does not exist.
Codes and campaigns are named by the caller's tenant's own codes and ids; another tenant's are
unknown (400). See docs/api.md ("Calls").
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from care.accounts.models import Agent, User
from care.calls.models import Call, CallCode, Campaign, validate_e164
from care.calls.selectors import access_call, calls_of_ticket
from care.calls.services import call_set_codes, outbound_call_log
from care.routing import api as routing_api
from care.tenants.models import Tenant
from care.tickets.models import Ticket
from care.tickets.selectors import access_ticket

# --- Who may call ---------------------------------------------------------------------------------


def _user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):  # the permission classes ran first; this narrows the type
        raise exceptions.NotAuthenticated()
    return user


class DeskUser(routing_api.DeskUser):
    portal_message = gettext_lazy("Tenant portal users do not use the calls API.")


class HasAgentProfile(routing_api.HasAgentProfile):
    portal_message = gettext_lazy("Tenant portal users do not use the calls API.")


def _ticket(user: User, reference: str) -> Ticket:
    try:
        return access_ticket(user, reference)
    except Http404 as exc:
        raise exceptions.NotFound(_("No such ticket.")) from exc


def _code(tenant_id: int, kind: str, code: str | None, field: str) -> CallCode | None:
    """The tenant's active code of ``kind`` named ``code`` (None for none); an unknown one is a 400."""
    if not code:
        return None
    found: CallCode | None = CallCode.objects.filter(
        tenant_id=tenant_id, kind=kind, code=code.strip().lower(), is_active=True
    ).first()
    if found is None:
        raise serializers.ValidationError({field: [_("No such code: %(code)s.") % {"code": code}]})
    return found


# --- Serializers ----------------------------------------------------------------------------------


class OutboundIn(serializers.Serializer[Any]):
    tenant = serializers.CharField(max_length=100, required=False, allow_blank=True)
    dialled = serializers.CharField(max_length=40)
    started_at = serializers.DateTimeField()
    talk_seconds = serializers.IntegerField(min_value=0, max_value=24 * 3600)
    outcome_code = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    campaign = serializers.IntegerField(required=False, allow_null=True)
    sale_amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
    )
    ticket = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)

    def validate_dialled(self, value: str) -> str:
        try:
            validate_e164(value.strip())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("tenant") and not attrs.get("ticket"):
            raise serializers.ValidationError(
                {"tenant": [_("Name the tenant, or the ticket the call was about.")]}
            )
        return attrs


class CodesIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    outcome_code = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)


class CallListIn(serializers.Serializer[Any]):
    ticket = serializers.CharField(max_length=40)


class PersonOut(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    name = serializers.SerializerMethodField()

    def get_name(self, obj: Agent) -> str:
        return obj.user.full_name or obj.user.email


class CodeOut(serializers.Serializer[Any]):
    code = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["label"] = serializers.CharField()  # ``label`` is a Field attribute: no class attribute
        return fields


class CampaignOut(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()


class CallOut(serializers.Serializer[Any]):  # Any: listed with many=True
    id = serializers.IntegerField(source="pk")
    direction = serializers.CharField()
    status = serializers.CharField()
    outcome = serializers.CharField()
    caller = serializers.CharField()
    dialled = serializers.CharField()
    offered_at = serializers.DateTimeField()
    answered_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    queue_wait_seconds = serializers.IntegerField(allow_null=True)
    talk_seconds = serializers.IntegerField()
    hold_seconds = serializers.IntegerField()
    language = serializers.CharField()
    agent = PersonOut(allow_null=True)
    reason = CodeOut(allow_null=True)
    outcome_code = CodeOut(allow_null=True)
    campaign = CampaignOut(allow_null=True)
    sale_amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    ticket = serializers.SerializerMethodField()

    def get_ticket(self, obj: Call) -> str | None:
        # The ticket's tenant is the call's: the reference needs no query of its own.
        ticket = obj.ticket
        if ticket is None:
            return None
        ticket.tenant = obj.tenant
        return ticket.reference


# --- Views ----------------------------------------------------------------------------------------


class OutboundApi(APIView):
    permission_classes = [HasAgentProfile]

    def post(self, request: Request) -> Response:
        given = OutboundIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        user = _user(request)
        ticket = _ticket(user, data["ticket"]) if data.get("ticket") else None
        tenant = self._tenant(user, data.get("tenant"), ticket)
        campaign = None
        if data.get("campaign") is not None:
            campaign = Campaign.objects.filter(tenant=tenant, pk=data["campaign"], is_active=True).first()
            if campaign is None:
                raise serializers.ValidationError({"campaign": [_("No such campaign.")]})
        call = outbound_call_log(
            tenant=tenant,
            agent=user.agent,
            dialled=data["dialled"],
            started_at=data["started_at"],
            talk_seconds=data["talk_seconds"],
            outcome_code=_code(tenant.pk, CallCode.Kind.OUTCOME, data.get("outcome_code"), "outcome_code"),
            campaign=campaign,
            sale_amount=data.get("sale_amount"),
            actor=user,
            ticket=ticket,
        )
        call.tenant = tenant
        return Response(CallOut(call).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _tenant(user: User, code: str | None, ticket: Ticket | None) -> Tenant:
        if ticket is not None:
            if code and code.strip().upper() != ticket.tenant.code:
                raise serializers.ValidationError({"ticket": [_("The ticket belongs to another tenant.")]})
            return ticket.tenant
        tenant: Tenant | None = (
            Tenant.objects.visible_to(user).filter(code=(code or "").strip().upper()).first()
        )
        if tenant is None:
            raise exceptions.NotFound(_("No such tenant."))
        return tenant


class CallCodesApi(APIView):
    permission_classes = [DeskUser]

    def post(self, request: Request, call_id: int) -> Response:
        try:
            call = access_call(_user(request), call_id)
        except Http404 as exc:
            raise exceptions.NotFound(_("No such call.")) from exc
        given = CodesIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        # A code left out stays as it is; null or "" clears it.
        reason = (
            _code(call.tenant_id, CallCode.Kind.REASON, data["reason"], "reason")
            if "reason" in data
            else call.reason
        )
        outcome = (
            _code(call.tenant_id, CallCode.Kind.OUTCOME, data["outcome_code"], "outcome_code")
            if "outcome_code" in data
            else call.outcome_code
        )
        call = call_set_codes(call=call, reason=reason, outcome_code=outcome, actor=_user(request))
        return Response(CallOut(call).data)


class TicketCallsApi(APIView):
    permission_classes = [DeskUser]

    def get(self, request: Request) -> Response:
        given = CallListIn(data=request.query_params)
        given.is_valid(raise_exception=True)
        ticket = _ticket(_user(request), given.validated_data["ticket"])
        calls = list(calls_of_ticket(ticket).select_related("campaign"))
        for call in calls:
            call.tenant, call.ticket = ticket.tenant, ticket
        return Response(CallOut(calls, many=True).data)
