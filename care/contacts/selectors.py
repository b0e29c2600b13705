"""Reads of customers, always scoped to what the user may see."""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from care.contacts.identities import IdentityKind
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


def phone_international(value: str) -> str:
    """An E.164 number as people read it internationally ("+49 30 1234567"); as stored if unparsable."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def customer_identities(*, customer: Customer) -> list[Identity]:
    """Every identity of ``customer`` (emails, phones, social handles), primary first within a kind,
    each with ``label``: a phone number in international format, a handle with ``@``. One query.

    The caller has checked access to the customer (e.g. through its ticket)."""
    identities = list(
        Identity.objects.filter(tenant_id=customer.tenant_id, customer=customer).order_by(
            "kind", "-is_primary", "platform", "value"
        )
    )
    for identity in identities:
        if identity.kind == IdentityKind.PHONE:
            identity.label = phone_international(identity.value)  # type: ignore[attr-defined]
        elif identity.kind == IdentityKind.SOCIAL:
            identity.label = f"@{identity.value}"  # type: ignore[attr-defined]
        else:
            identity.label = identity.value  # type: ignore[attr-defined]
    return identities
