"""Inbound endpoints of the channels, mounted at /inbound/."""

from __future__ import annotations

from django.urls import path

from care.connectors.email.views import inbound_email

app_name = "inbound"

urlpatterns = [
    path("email/<str:token>/", inbound_email, name="email"),
]
