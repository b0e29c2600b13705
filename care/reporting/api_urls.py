"""Reporting endpoints, mounted at /api/reporting/ (see docs/api.md)."""

from __future__ import annotations

from django.urls import path

from care.reporting import api

app_name = "reporting_api"

urlpatterns = [
    path("wallboard/<str:tenant_code>", api.WallboardApi.as_view(), name="wallboard"),
    path("calls", api.CallFiguresApi.as_view(), name="call_figures"),
]
