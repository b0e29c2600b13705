"""The reporting REST API: a tenant's wallboard now (the data of the live ``wallboard.snapshot``).

Who may call: supervisors and administrators (others 403), for a tenant they may see; an unknown
tenant and another company's answer alike, 404, so that codes cannot be probed. See docs/api.md.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from care.accounts.models import User
from care.reporting.selectors import wallboard_of
from care.routing.api import Supervises
from care.tenants.models import Tenant


class WallboardApi(APIView):
    permission_classes = [Supervises]

    def get(self, request: Request, tenant_code: str) -> Response:
        user = request.user
        if not isinstance(user, User):  # Supervises let only active users through; this narrows the type
            raise exceptions.NotAuthenticated()
        tenant = (
            Tenant.objects.visible_to(user).filter(code=tenant_code.strip().upper(), is_active=True).first()
        )
        if tenant is None:
            raise exceptions.NotFound(_("No such tenant."))
        return Response(wallboard_of(tenant))
