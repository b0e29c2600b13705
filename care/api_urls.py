"""The REST API. Each capability adds its endpoints here under its own prefix."""

from __future__ import annotations

from typing import Any

from django.urls import include, path

urlpatterns: list[Any] = [
    path("routing/", include("care.routing.api_urls")),
    path("sla/", include("care.sla.api_urls")),
    path("reporting/", include("care.reporting.api_urls")),
    path("calls/", include("care.calls.api_urls")),
]
