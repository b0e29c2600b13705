"""Reads of customers, always scoped to what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from care.contacts.models import Customer, Identity


def customer_list(*, user: Any) -> QuerySet[Customer]:
    return (
        Customer.objects.visible_to(user)
        .filter(merged_into__isnull=True)
        .select_related("tenant")
        .prefetch_related(Prefetch("identities", queryset=Identity.objects.order_by("kind", "value")))
    )


def access_customer(user: Any, customer_id: int) -> Customer:
    """The customer if ``user`` may see it, else 404 (never "forbidden": that would confirm it exists)."""
    return get_object_or_404(Customer.objects.visible_to(user).select_related("tenant"), pk=customer_id)
