"""Macros: placeholders rendered by our own table (never the template engine), unknown ones refused
when saved (model and admin), the macros offered on a ticket (its tenant, its language or every
language, active, in order), and the render endpoint's isolation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from care.macros.models import Macro
from care.macros.placeholders import Values, render, unknown_placeholders
from care.macros.selectors import macros_for_ticket
from care.macros.services import macro_create
from tests.desk.conftest import page_url
from tests.factories.accounts import UserFactory
from tests.factories.contacts import CustomerFactory
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(tenant_a):
    customer = CustomerFactory(tenant=tenant_a, display_name="Greta Maria Kunde")
    return make_ticket(tenant=tenant_a, customer=customer, subject="Zählerstand falsch", language="de")


def test_every_placeholder_is_rendered(ticket, tenant_a):
    agent = UserFactory(email="anna@care.test", full_name="Anna Berg")
    body = (
        "Hallo {{customer.first_name}} ({{ customer.name }}), {{agent.first_name}} / {{agent.name}} "
        "zu {{ticket.reference}} «{{ticket.subject}}» für {{tenant.name}}."
    )

    text = render(body, Values(ticket=ticket, agent=agent))

    assert text == (
        f"Hallo Greta (Greta Maria Kunde), Anna / Anna Berg zu {ticket.reference} «Zählerstand falsch» "
        "für Energie Nord."
    )


def test_missing_values_render_empty(tenant_a):
    nameless = make_ticket(tenant=tenant_a, customer=CustomerFactory(tenant=tenant_a, display_name=""))
    agent = UserFactory(email="noname@care.test", full_name="")

    text = render("Hallo {{customer.first_name}}, {{agent.name}}!", Values(ticket=nameless, agent=agent))

    assert text == "Hallo , !"
    assert render("{{agent.first_name}}.", Values(ticket=nameless, agent=None)) == "."


def test_template_syntax_in_a_macro_is_text_not_code(ticket):
    """A macro body is never given to Django's template engine: tags and filters stay as written."""
    body = "{% load static %}{{ customer.name|upper }} {% debug %}"

    assert unknown_placeholders(body) == ["{{ customer.name|upper }}"]
    assert render("{% debug %} {{customer.name}}", Values(ticket=ticket, agent=None)) == (
        "{% debug %} Greta Maria Kunde"
    )


@pytest.mark.parametrize(
    ("body", "unknown"),
    [
        ("Hallo {{customer.email}}", ["{{customer.email}}"]),
        ("{{ settings.SECRET_KEY }} {{customer.name}}", ["{{ settings.SECRET_KEY }}"]),
        ("Hallo {{customer.name}", ["{{"]),
        ("Hallo customer.name}}", ["}}"]),
        ("Hallo {{}}", ["{{}}"]),
    ],
)
def test_unknown_placeholders_are_refused_when_saved(tenant_a, body, unknown):
    with pytest.raises(ValidationError) as refused:
        macro_create(tenant=tenant_a, title="Kaputt", body=body)

    assert ", ".join(unknown) in refused.value.message_dict["body"][0]
    assert not Macro.objects.exists()


def test_admin_shows_the_refusal_and_the_placeholder_list(client, admin_user, tenant_a):
    client.force_login(admin_user)

    form = client.get("/admin/macros/macro/add/")
    refused = client.post(
        "/admin/macros/macro/add/",
        {
            "tenant": tenant_a.pk,
            "title": "Dank",
            "language": "",
            "shortcut": "",
            "body": "Danke {{kunde.name}}",
            "position": 0,
            "is_active": "on",
        },
    )
    saved = client.post(
        "/admin/macros/macro/add/",
        {
            "tenant": tenant_a.pk,
            "title": "Dank",
            "language": "de",
            "shortcut": "dank",
            "body": "Danke {{customer.first_name}}",
            "position": 0,
            "is_active": "on",
        },
    )

    assert "{{customer.first_name}}" in form.text  # the help text lists the placeholders
    assert refused.status_code == 200
    assert "Unknown placeholders: {{kunde.name}}" in refused.text
    assert saved.status_code == 302
    macro = Macro.objects.get()
    assert (macro.body, macro.language, macro.created_by) == (
        "Danke {{customer.first_name}}",
        "de",
        admin_user,
    )


def test_a_ticket_gets_its_tenants_active_macros_in_its_language_or_any_in_order(ticket, tenant_a, tenant_b):
    macro_create(tenant=tenant_a, title="B deutsch", body="b", language="de", position=2)
    macro_create(tenant=tenant_a, title="A alle", body="a", language="", position=2)
    macro_create(tenant=tenant_a, title="Zuerst", body="z", language="de", position=1)
    macro_create(tenant=tenant_a, title="English", body="e", language="en")
    macro_create(tenant=tenant_a, title="Alt", body="o", is_active=False)
    macro_create(tenant=tenant_b, title="Otro cliente", body="x", language="")
    macro_create(tenant=tenant_b, title="Anderer Kunde", body="x", language="de")

    titles = [macro.title for macro in macros_for_ticket(ticket=ticket)]

    assert titles == ["Zuerst", "A alle", "B deutsch"]


def _render_url(ticket, macro):
    return page_url(ticket, f"macros/{macro.pk}/render")


def test_render_endpoint_fills_in_the_ticket_and_the_agent(client, agent, ticket, tenant_a):
    agent.user.full_name = "Alice Adler"
    agent.user.save()
    macro = macro_create(
        tenant=tenant_a, title="Gruß", body="Hallo {{customer.first_name}}, {{agent.first_name}}"
    )
    client.force_login(agent.user)

    response = client.get(_render_url(ticket, macro))

    assert response.status_code == 200
    assert response.json() == {"id": macro.pk, "title": "Gruß", "text": "Hallo Greta, Alice"}


def test_another_tenants_macro_is_404_on_my_ticket(client, agent, ticket, tenant_b):
    foreign = macro_create(tenant=tenant_b, title="Otro", body="Hola {{customer.name}}")
    client.force_login(agent.user)

    assert client.get(_render_url(ticket, foreign)).status_code == 404


def test_inactive_and_other_language_macros_are_404(client, agent, ticket, tenant_a):
    inactive = macro_create(tenant=tenant_a, title="Alt", body="x", is_active=False)
    english = macro_create(tenant=tenant_a, title="English", body="x", language="en")
    client.force_login(agent.user)

    assert client.get(_render_url(ticket, inactive)).status_code == 404
    assert client.get(_render_url(ticket, english)).status_code == 404


def test_render_endpoint_refuses_outsiders_and_portal_users(client, outsider, portal_user, ticket, tenant_a):
    macro = macro_create(tenant=tenant_a, title="Gruß", body="Hallo")

    client.force_login(outsider.user)
    assert client.get(_render_url(ticket, macro)).status_code == 404
    client.force_login(portal_user)
    assert client.get(_render_url(ticket, macro)).status_code == 403


def test_render_endpoint_query_count_is_pinned(client, agent, ticket, tenant_a, django_assert_num_queries):
    macro = macro_create(tenant=tenant_a, title="Gruß", body="Hallo {{customer.name}} {{tenant.name}}")
    client.force_login(agent.user)
    # session, user, the user's tenants, the ticket (tenant, customer joined), the macro
    with django_assert_num_queries(5):
        assert client.get(_render_url(ticket, macro)).status_code == 200
