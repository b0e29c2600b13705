"""SLA endpoints, mounted at /api/sla/ (see docs/api.md)."""

from __future__ import annotations

from django.urls import path

from care.sla import api

app_name = "sla_api"

urlpatterns = [
    path("tickets/<str:reference>", api.TicketClocksApi.as_view(), name="ticket_clocks"),
    path("attainment", api.AttainmentApi.as_view(), name="attainment"),
]
