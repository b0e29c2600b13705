from __future__ import annotations

import factory

from care.contacts.models import Customer, Identity
from tests.factories.tenants import TenantFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    display_name = factory.Faker("name")
    preferred_language = "de"


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    kind = "email"
    value = factory.Sequence(lambda n: f"customer{n}@example.com")
