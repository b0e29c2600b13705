"""Routing endpoints, mounted at /api/routing/ (see docs/api.md)."""

from __future__ import annotations

from django.urls import path

from care.routing import api

app_name = "routing_api"

urlpatterns = [
    path("offers/", api.OfferListApi.as_view(), name="offers"),
    path("offers/<int:item_id>/accept", api.OfferAcceptApi.as_view(), name="offer_accept"),
    path("offers/<int:item_id>/decline", api.OfferDeclineApi.as_view(), name="offer_decline"),
    path("next", api.NextApi.as_view(), name="next"),
    path("presence", api.PresenceApi.as_view(), name="presence"),
    path("tickets/<str:reference>/assign", api.AssignApi.as_view(), name="assign"),
    path("tickets/<str:reference>/decisions", api.DecisionListApi.as_view(), name="decisions"),
    path("queues/", api.QueueOverviewApi.as_view(), name="queues"),
]
