"""Call endpoints, mounted at /api/calls/ (see docs/api.md)."""

from __future__ import annotations

from django.urls import path

from care.calls import api

app_name = "calls_api"

urlpatterns = [
    path("", api.TicketCallsApi.as_view(), name="ticket_calls"),
    path("outbound", api.OutboundApi.as_view(), name="outbound"),
    path("<int:call_id>/codes", api.CallCodesApi.as_view(), name="codes"),
]
