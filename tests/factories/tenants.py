from __future__ import annotations

import factory

from care.tenants.models import Tenant, TenantGroup


class TenantGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TenantGroup
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Joint venture {n}")
    slug = factory.Sequence(lambda n: f"jv-{n}")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")
    code = factory.Sequence(lambda n: f"C{n:03d}")
    time_zone = "Europe/Berlin"
    default_language = "de"
    supported_languages = factory.LazyFunction(lambda: ["de", "en"])
    holiday_country = "DE"
