"""Recognising customers by their identities: normalisation, uniqueness per tenant, concurrency."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from care.contacts.identities import normalise_identity
from care.contacts.models import Customer, Identity
from care.contacts.services import customer_create, customer_get_or_create_by_identity, identity_add
from tests.factories.tenants import TenantFactory
from tests.helpers import run_in_threads

# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "platform", "region", "expected"),
    [
        ("email", "Anna.Schmidt@Example.COM", "", None, "anna.schmidt@example.com"),
        ("email", "  anna@example.com\n", "", None, "anna@example.com"),
        ("phone", "030 1234567", "", "DE", "+49301234567"),
        ("phone", "(030) 123-45-67", "", "DE", "+49301234567"),
        ("phone", "+49 30 1234567", "", "ES", "+49301234567"),
        ("phone", "0049 30 1234567", "", "DE", "+49301234567"),
        ("phone", "+34 612 345 678", "", "DE", "+34612345678"),
        ("phone", "612 345 678", "", "ES", "+34612345678"),
        ("social", "@anna_s", "instagram", None, "anna_s"),
        ("social", " anna_s ", "telegram", None, "anna_s"),
    ],
)
def test_identities_are_normalised(kind, value, platform, region, expected):
    assert normalise_identity(kind, value, platform=platform, default_region=region) == expected


@pytest.mark.parametrize(
    ("kind", "value", "platform", "region", "message"),
    [
        ("phone", "12345abc", "", "DE", "12345abc is not a valid phone number"),
        ("phone", "+49 1", "", "DE", "+49 1 is not a phone number; write it with its country code"),
        # Letters would be read as a vanity number: this would become +49301234567222.
        ("phone", "0301234567abc", "", "DE", "0301234567abc is not a valid phone number"),
        ("phone", "030 1234567", "", None, "030 1234567 is not a phone number; write it with its country"),
        ("email", "anna@", "", None, "Enter a valid email address"),
        ("social", "@anna_s", "", None, "A social handle needs its platform (one of whatsapp, "),
        ("social", "@anna_s", "myspace", None, "A social handle needs its platform"),
        ("email", "   ", "", None, "An identity needs a value"),
        ("fax", "030 1234567", "", "DE", "fax is not a kind of identity"),
    ],
)
def test_malformed_identities_are_refused_with_a_clear_message(kind, value, platform, region, message):
    with pytest.raises(ValidationError) as caught:
        normalise_identity(kind, value, platform=platform, default_region=region)
    assert any(m.startswith(message) for m in caught.value.messages), caught.value.messages


@pytest.mark.django_db
def test_phone_numbers_use_the_tenants_country_as_default(tenant_a, tenant_b):
    berlin, _, _ = customer_get_or_create_by_identity(tenant=tenant_a, kind="phone", value="030 1234567")
    madrid, _, _ = customer_get_or_create_by_identity(tenant=tenant_b, kind="phone", value="612 345 678")

    assert berlin.identities.get().value == "+49301234567"
    assert madrid.identities.get().value == "+34612345678"


@pytest.mark.django_db
def test_identity_add_stores_the_normalised_value(tenant_a):
    customer = customer_create(tenant=tenant_a, display_name="Anna Schmidt")

    email = identity_add(customer=customer, kind="email", value=" Anna@Example.com ")
    phone = identity_add(customer=customer, kind="phone", value="030 1234567")
    social = identity_add(customer=customer, kind="social", value="@anna_s", platform="instagram")

    stored = {(i.kind, i.platform, i.value) for i in Identity.objects.filter(customer=customer)}
    assert stored == {
        ("email", "", "anna@example.com"),
        ("phone", "", "+49301234567"),
        ("social", "instagram", "anna_s"),
    }
    assert {email.tenant_id, phone.tenant_id, social.tenant_id} == {tenant_a.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "value", "platform", "field_message"),
    [
        ("phone", "12345abc", "", "12345abc is not a valid phone number"),
        ("social", "@anna_s", "", "A social handle needs its platform"),
        ("email", "anna@example.com", "instagram", "Only social handles have a platform."),
    ],
)
def test_identity_add_refuses_malformed_identities(tenant_a, kind, value, platform, field_message):
    customer = customer_create(tenant=tenant_a)

    with pytest.raises(ValidationError) as caught:
        identity_add(customer=customer, kind=kind, value=value, platform=platform)

    messages = [m for ms in caught.value.message_dict.values() for m in ms]
    assert any(m.startswith(field_message) for m in messages), messages
    assert not Identity.objects.filter(customer=customer).exists()


# --- uniqueness and finding customers ------------------------------------------------------------


@pytest.mark.django_db
def test_same_email_at_two_tenants_is_two_customers(tenant_a, tenant_b):
    at_a, identity_a, created_a = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="email", value="anna@example.com"
    )
    at_b, identity_b, created_b = customer_get_or_create_by_identity(
        tenant=tenant_b, kind="email", value="Anna@Example.com"
    )

    assert created_a is True
    assert created_b is True
    assert at_a != at_b
    assert (at_a.tenant, at_b.tenant) == (tenant_a, tenant_b)
    assert identity_a.value == identity_b.value == "anna@example.com"


@pytest.mark.django_db
def test_get_or_create_is_idempotent_however_the_address_is_written(tenant_a):
    customer, identity, created = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="phone", value="030 1234567", display_name="Anna", preferred_language="de"
    )
    assert created is True
    assert identity.is_primary
    assert (customer.display_name, customer.preferred_language) == ("Anna", "de")

    for written in ("030 1234567", "+49 30 1234567", "0049301234567"):
        again, again_identity, created_again = customer_get_or_create_by_identity(
            tenant=tenant_a, kind="phone", value=written, display_name="Someone else"
        )
        assert (again, again_identity, created_again) == (customer, identity, False)

    assert Customer.objects.filter(tenant=tenant_a).count() == 1
    assert Identity.objects.filter(tenant=tenant_a).count() == 1


@pytest.mark.django_db
def test_same_handle_on_two_platforms_is_two_customers(tenant_a):
    on_x, _, _ = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="social", value="@anna", platform="x"
    )
    on_instagram, _, _ = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="social", value="anna", platform="instagram"
    )
    assert on_x != on_instagram


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_contacts_create_one_customer():
    tenant = TenantFactory(code="CONC", slug="concurrent", holiday_country="DE")
    writings = ["030 1234567", "+49 30 1234567", "0049 30 1234567", "+49301234567"]

    def first_contact(index):
        customer, identity, created = customer_get_or_create_by_identity(
            tenant=tenant, kind="phone", value=writings[index % len(writings)]
        )
        return customer.pk, identity.pk, created

    results = run_in_threads(first_contact, 8)

    assert len({customer_pk for customer_pk, _, _ in results}) == 1
    assert len({identity_pk for _, identity_pk, _ in results}) == 1
    assert [created for _, _, created in results].count(True) == 1
    # The losers' customers were rolled back with their identity, not left behind empty.
    assert Customer.objects.filter(tenant=tenant).count() == 1
    assert Identity.objects.get(tenant=tenant).value == "+49301234567"


@pytest.mark.django_db
def test_identity_of_another_customer_is_refused_with_a_message(tenant_a):
    anna, identity, _ = customer_get_or_create_by_identity(
        tenant=tenant_a, kind="email", value="anna@example.com"
    )
    bert = customer_create(tenant=tenant_a, display_name="Bert")

    with pytest.raises(ValidationError) as caught:
        identity_add(customer=bert, kind="email", value="ANNA@example.com")

    assert caught.value.message_dict == {
        "value": ["anna@example.com already belongs to another customer of this tenant."]
    }
    assert Identity.objects.get(pk=identity.pk).customer == anna
    assert not bert.identities.exists()


@pytest.mark.django_db
def test_phone_of_another_customer_is_refused_however_written(tenant_a):
    customer_get_or_create_by_identity(tenant=tenant_a, kind="phone", value="+49 30 1234567")
    bert = customer_create(tenant=tenant_a)

    with pytest.raises(ValidationError, match="already belongs to another customer"):
        identity_add(customer=bert, kind="phone", value="030 1234567")


@pytest.mark.django_db
def test_identity_of_a_customer_at_another_tenant_is_no_conflict(tenant_a, tenant_b):
    customer_get_or_create_by_identity(tenant=tenant_a, kind="email", value="anna@example.com")
    at_b = customer_create(tenant=tenant_b)

    identity = identity_add(customer=at_b, kind="email", value="anna@example.com")

    assert identity.tenant_id == tenant_b.pk
