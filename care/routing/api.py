"""The routing REST API: agents' offers, asking for work and presence; supervisors' manual assignment,
decision logs and queue overview. Thin: each view validates, calls one service or selector, renders.

Who may call (every endpoint needs a session; portal users never use this API):
- the calling agent's own work (offers, next, presence): users with an agent profile;
- ticket endpoints (assign, decisions): the ticket is looked up first through ``access_ticket``, so a
  ticket the caller may not see is a 404 for everyone; then only supervisors and admins get further;
- the queue overview: supervisors and admins, over the tenants they may see.
See docs/api.md for the contracts.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from care.accounts.models import Agent, Presence, Role, User
from care.accounts.selectors import access_agent
from care.accounts.services import agent_set_presence
from care.core.errors import BusinessRuleViolation
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.selectors import decisions_for_ticket, offers_for_agent, queue_overview
from care.routing.services import offer_accept, offer_decline, route_for_agent, routing_assign_by_hand
from care.tenants.models import Tenant
from care.tickets.models import Ticket
from care.tickets.selectors import access_ticket

# --- Who may call ---------------------------------------------------------------------------------


def _user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):  # the permission classes ran first; this narrows the type
        raise exceptions.NotAuthenticated()
    return user


def is_supervisor(user: User) -> bool:
    """The same rule as ``routing.services.routing_assign_by_hand`` applies."""
    return user.is_active and (user.sees_all_tenants or user.role == Role.SUPERVISOR)


class DeskUser(BasePermission):
    """Logged-in, active staff of the service center: everyone but tenant portal users. Other APIs
    reuse it (and ``HasAgentProfile``) with their own ``portal_message``."""

    portal_message = gettext_lazy("Tenant portal users do not use the routing API.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not isinstance(user, User) or not user.is_active:
            return False  # DRF answers "not authenticated"
        if user.role == Role.PORTAL:
            raise exceptions.PermissionDenied(self.portal_message)
        return True


class HasAgentProfile(DeskUser):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        if not hasattr(request.user, "agent"):
            raise exceptions.PermissionDenied(_("You have no agent profile."))
        return True


class Supervises(DeskUser):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        if not is_supervisor(_user(request)):
            raise exceptions.PermissionDenied(_("Only supervisors and administrators may do this."))
        return True


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("The request conflicts with the current state.")
    default_code = "conflict"


def _agent(request: Request) -> Agent:
    agent: Agent = _user(request).agent
    return agent


def _ticket_for_supervisor(request: Request, reference: str) -> Ticket:
    """The ticket if the caller may see it (else 404, whoever asks), then supervisors only (else 403)."""
    try:
        ticket = access_ticket(request.user, reference)
    except Http404 as exc:
        raise exceptions.NotFound(_("No such ticket.")) from exc
    if not is_supervisor(_user(request)):
        raise exceptions.PermissionDenied(_("Only supervisors and administrators may do this."))
    return ticket


# --- Serializers ----------------------------------------------------------------------------------


class TenantOut(serializers.Serializer[Tenant]):
    code = serializers.CharField()
    name = serializers.CharField()
    colour = serializers.CharField()


class OfferOut(serializers.Serializer[Any]):  # Any: listed with many=True
    item = serializers.IntegerField(source="pk")
    ticket = serializers.CharField(source="ticket.reference")
    subject = serializers.CharField(source="ticket.subject")
    tenant = TenantOut(source="ticket.tenant")
    channel = serializers.CharField()
    language = serializers.CharField()
    expires_at = serializers.DateTimeField(source="offer_expires_at")


class DeclineIn(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AssignmentOut(serializers.Serializer[Ticket]):
    ticket = serializers.CharField(source="reference")
    status = serializers.CharField()
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True)


class NextOut(serializers.Serializer[Any]):
    kind = serializers.CharField()
    ticket = serializers.CharField()
    item = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class AssignIn(serializers.Serializer[Any]):
    agent = serializers.IntegerField(allow_null=True, min_value=1)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class PersonOut(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    name = serializers.SerializerMethodField()

    def get_name(self, obj: Agent | User) -> str:
        return str(obj)


class DecisionOut(serializers.Serializer[Any]):  # Any: listed with many=True
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    created_at = serializers.DateTimeField()
    agent = PersonOut(allow_null=True)
    actor = PersonOut(allow_null=True)
    queue = serializers.CharField(source="queue_name")
    step = serializers.CharField()
    strategy = serializers.CharField()
    waited_seconds = serializers.IntegerField()
    reason = serializers.CharField()
    candidates = serializers.JSONField()


class QueueOut(serializers.Serializer[Any]):  # Any: listed with many=True
    tenant = serializers.CharField()
    queue = serializers.CharField()
    waiting = serializers.IntegerField()
    offered = serializers.IntegerField()
    longest_wait_seconds = serializers.IntegerField()


class PresenceIn(serializers.Serializer[Any]):
    presence = serializers.ChoiceField(
        choices=[(p.value, p.label) for p in (Presence.ONLINE, Presence.AWAY, Presence.OFFLINE)]
    )


class PresenceOut(serializers.Serializer[Agent]):
    presence = serializers.CharField()
    since = serializers.DateTimeField(source="presence_changed_at")


# --- Reads this API needs that routing.selectors does not have yet ---------------------------------


# --- Views ----------------------------------------------------------------------------------------


class OfferListApi(APIView):
    permission_classes = [HasAgentProfile]

    def get(self, request: Request) -> Response:
        offers = offers_for_agent(user=_user(request), agent=_agent(request))
        return Response(OfferOut(offers, many=True).data)


class OfferAcceptApi(APIView):
    permission_classes = [HasAgentProfile]

    def post(self, request: Request, item_id: int) -> Response:
        try:
            ticket = offer_accept(item_id=item_id, agent=_agent(request))
        except BusinessRuleViolation as exc:
            raise Conflict(" ".join(exc.messages)) from exc
        return Response(AssignmentOut(ticket).data)


class OfferDeclineApi(APIView):
    permission_classes = [HasAgentProfile]

    def post(self, request: Request, item_id: int) -> Response:
        data = DeclineIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            offer_decline(item_id=item_id, agent=_agent(request), reason=data.validated_data["reason"])
        except BusinessRuleViolation as exc:
            raise Conflict(" ".join(exc.messages)) from exc
        return Response({"detail": _("Offer declined.")})


class NextApi(APIView):
    permission_classes = [HasAgentProfile]

    def post(self, request: Request) -> Response:
        agent = _agent(request)
        if agent.presence != Presence.ONLINE:
            raise Conflict(_("Set yourself online to be given work."))
        decision = route_for_agent(agent_id=agent.pk)
        if decision is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        ticket = Ticket.objects.select_related("tenant").get(pk=decision.ticket_id)
        item = (
            QueuedItem.objects.filter(ticket=ticket, state=QueuedItem.State.OFFERED, offered_to=agent).first()
            if decision.kind == RoutingDecision.Kind.OFFERED
            else None
        )
        given = {
            "kind": decision.kind,
            "ticket": ticket.reference,
            "item": item.pk if item else None,
            "expires_at": item.offer_expires_at if item else None,
        }
        return Response(NextOut(given).data)


class AssignApi(APIView):
    permission_classes = [DeskUser]

    def post(self, request: Request, reference: str) -> Response:
        ticket = _ticket_for_supervisor(request, reference)
        data = AssignIn(data=request.data)
        data.is_valid(raise_exception=True)
        agent = None
        if data.validated_data["agent"] is not None:
            agent = access_agent(_user(request), data.validated_data["agent"])
            if agent is None:
                raise exceptions.ValidationError({"agent": [_("No such agent.")]})
        ticket = routing_assign_by_hand(
            ticket=ticket, agent=agent, actor=_user(request), note=data.validated_data["note"]
        )
        return Response(AssignmentOut(ticket).data)


class DecisionListApi(APIView):
    permission_classes = [DeskUser]

    def get(self, request: Request, reference: str) -> Response:
        ticket = _ticket_for_supervisor(request, reference)
        return Response(DecisionOut(decisions_for_ticket(ticket), many=True).data)


class QueueOverviewApi(APIView):
    permission_classes = [Supervises]

    def get(self, request: Request) -> Response:
        tenant_ids = list(Tenant.objects.visible_to(_user(request)).values_list("pk", flat=True))
        return Response(QueueOut(queue_overview(tenant_ids=tenant_ids), many=True).data)


class PresenceApi(APIView):
    permission_classes = [HasAgentProfile]

    def post(self, request: Request) -> Response:
        data = PresenceIn(data=request.data)
        data.is_valid(raise_exception=True)
        agent = agent_set_presence(agent=_agent(request), presence=data.validated_data["presence"])
        return Response(PresenceOut(agent).data)
