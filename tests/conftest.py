"""Shared fixtures: two tenants and the three actors every isolation test needs.

- ``agent``: an agent authorised for tenant A only;
- ``supervisor``: a staff supervisor for tenant A (may use the admin, scoped to A);
- ``outsider``: an agent authorised for tenant B only, who must see nothing of A;
- ``portal_user``: a tenant portal user of A; ``admin_user``: a superuser who sees everything.
"""

from __future__ import annotations

import pytest

from care.accounts.models import Role
from tests.factories.accounts import UserFactory, make_agent
from tests.factories.tenants import TenantFactory


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Energie Nord", slug="energie-nord", code="ENN", time_zone="Europe/Berlin")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(
        name="Telco Sur",
        slug="telco-sur",
        code="TSU",
        time_zone="Europe/Madrid",
        default_language="es",
        supported_languages=["es", "en"],
        holiday_country="ES",
    )


@pytest.fixture
def agent(tenant_a):
    return make_agent(tenants=[tenant_a], email="alice@care.test")


@pytest.fixture
def supervisor(tenant_a):
    return make_agent(tenants=[tenant_a], email="sam@care.test", role=Role.SUPERVISOR, is_staff=True)


@pytest.fixture
def outsider(tenant_b):
    return make_agent(tenants=[tenant_b], email="oscar@care.test", languages=(("es", 7),))


@pytest.fixture
def portal_user(tenant_a):
    return UserFactory(email="portal@energie-nord.test", role=Role.PORTAL, portal_tenant=tenant_a)


@pytest.fixture
def admin_user(db):
    return UserFactory(email="root@care.test", role=Role.ADMIN, is_staff=True, is_superuser=True)
