"""Writes for customers and identities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from care.contacts.identities import normalise_identity
from care.contacts.models import Customer, Identity
from care.contacts.signals import customers_merged
from care.core.errors import BusinessRuleViolation

if TYPE_CHECKING:
    from care.tenants.models import Tenant


def customer_create(
    *, tenant: Tenant, display_name: str = "", preferred_language: str = "", notes: str = ""
) -> Customer:
    customer = Customer(
        tenant=tenant, display_name=display_name, preferred_language=preferred_language, notes=notes
    )
    customer.full_clean(exclude=["tenant", "merged_into"])  # the tenant is an object in hand
    customer.save()
    return customer


def identity_add(
    *,
    customer: Customer,
    kind: str,
    value: str,
    platform: str = "",
    display_name: str = "",
    is_primary: bool = False,
) -> Identity:
    """Attach an identity; raises ValidationError if it is malformed or belongs to another customer."""
    identity = Identity(
        tenant=customer.tenant,
        customer=customer,
        kind=kind,
        value=value,
        platform=platform,
        display_name=display_name,
        is_primary=is_primary,
    )
    # Constraints are left to the database: the unique one would otherwise answer with Django's generic
    # "Identity with this Tenant, Kind, Platform and Value already exists." instead of the message below
    # (the platform check constraint is enforced with a field message by Identity.clean()).
    identity.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            identity.save()
    except IntegrityError:
        raise ValidationError(
            {
                "value": _("%(value)s already belongs to another customer of this tenant.")
                % {"value": identity.value}
            }
        ) from None
    return identity


def customer_get_or_create_by_identity(
    *,
    tenant: Tenant,
    kind: str,
    value: str,
    platform: str = "",
    display_name: str = "",
    preferred_language: str = "",
) -> tuple[Customer, Identity, bool]:
    """Find the customer behind an address, or create both. Safe under concurrent calls.

    Returns (customer, identity, created).
    """
    normalised = normalise_identity(
        kind, value, platform=platform, default_region=tenant.holiday_country or None
    )
    lookup: dict[str, Any] = {"tenant": tenant, "kind": kind, "platform": platform, "value": normalised}
    existing = Identity.objects.select_related("customer").filter(**lookup).first()
    if existing is not None:
        return existing.customer, existing, False
    try:
        with transaction.atomic():
            customer = customer_create(
                tenant=tenant, display_name=display_name, preferred_language=preferred_language
            )
            identity = Identity.objects.create(
                customer=customer, display_name=display_name, is_primary=True, **lookup
            )
    except IntegrityError:
        # Another request created the same identity between our read and our insert.
        existing = Identity.objects.select_related("customer").get(**lookup)
        return existing.customer, existing, False
    return customer, identity, True


@transaction.atomic
def customers_merge(*, source: Customer, target: Customer, actor: Any = None) -> Customer:
    """Merge ``source`` into ``target``: identities and (through the signal) tickets move over.

    The source stays as a tombstone pointing at the target, so old links still resolve.
    """
    if source.pk == target.pk:
        raise BusinessRuleViolation(_("A customer cannot be merged into itself."))
    if source.tenant_id != target.tenant_id:
        raise BusinessRuleViolation(_("Customers of different tenants cannot be merged."))
    # Lock both rows in primary-key order so that two opposite merges cannot deadlock.
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")
    }
    source, target = locked[source.pk], locked[target.pk]
    if source.merged_into_id is not None:
        raise BusinessRuleViolation(_("This customer was already merged into another one."))
    if target.merged_into_id is not None:
        raise BusinessRuleViolation(_("Cannot merge into a customer that was itself merged away."))
    Identity.objects.filter(customer=source).update(customer=target, is_primary=False)
    if not target.display_name and source.display_name:
        target.display_name = source.display_name
    if not target.preferred_language and source.preferred_language:
        target.preferred_language = source.preferred_language
    if source.notes:
        target.notes = "\n\n".join(filter(None, [target.notes, source.notes]))
    target.save()
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    customers_merged.send(sender=Customer, source=source, target=target, actor=actor)
    return target
