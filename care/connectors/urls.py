"""Inbound endpoints of the channels, mounted at /inbound/."""

from __future__ import annotations

from django.urls import path

from care.connectors.email.views import inbound_email
from care.connectors.phone.route_view import phone_route
from care.connectors.phone.views import phone_events, phone_twilio
from care.connectors.social.views import social_webhook

app_name = "inbound"

urlpatterns = [
    path("email/<str:token>/", inbound_email, name="email"),
    path("phone/<str:token>/events", phone_events, name="phone_events"),
    path("phone/<str:token>/twilio", phone_twilio, name="phone_twilio"),
    path("phone/<str:token>/route", phone_route, name="phone_route"),
    path("social/<slug:slug>/<str:token>/", social_webhook, name="social"),
]
