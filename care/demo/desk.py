"""The demo's agent-desk material: each tenant's macros (canned answers) in its languages.

Found by (tenant, language, title) on a second run and brought back to the text below, like the
guidelines, so a demo that was played with is reset by seeding again.
"""

from __future__ import annotations

from care.macros.models import Macro
from care.tenants.models import Tenant

# (title, keyword, text) per language. The placeholders are those of care/macros/placeholders.py.
MACROS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "de": (
        (
            "Begrüßung",
            "hallo",
            "Guten Tag {{customer.name}},\n\nvielen Dank für Ihre Nachricht an {{tenant.name}}.\n\n",
        ),
        (
            "Zählerstand nachreichen",
            "zaehler",
            "Guten Tag {{customer.name}},\n\nbitte senden Sie uns Ihren aktuellen Zählerstand mit einem Foto "
            "des Zählers. Wir korrigieren die Abrechnung dann umgehend.\n\nViele Grüße\n{{agent.first_name}}",
        ),
        (
            "Abschluss",
            "danke",
            "Wir schließen Ihr Anliegen {{ticket.reference}} nun ab. Melden Sie sich gern, falls noch "
            "etwas offen ist.\n\nViele Grüße\n{{agent.name}}",
        ),
    ),
    "en": (
        (
            "Greeting",
            "hello",
            "Hello {{customer.first_name}},\n\nthank you for contacting {{tenant.name}}.\n\n",
        ),
        (
            "Need more details",
            "details",
            "Hello {{customer.first_name}},\n\ncould you send us your customer number and a short "
            "description of what happened? Then we can look into it right away.\n\nBest regards\n"
            "{{agent.first_name}}",
        ),
        (
            "Closing",
            "thanks",
            "We are closing {{ticket.reference}} now. Just reply if anything is still open.\n\nBest regards\n"
            "{{agent.name}}",
        ),
    ),
    "es": (
        (
            "Saludo",
            "hola",
            "Hola {{customer.first_name}}:\n\ngracias por contactar con {{tenant.name}}.\n\n",
        ),
        (
            "Cierre",
            "gracias",
            "Cerramos la incidencia {{ticket.reference}}. Si necesita algo más, responda a este mensaje."
            "\n\nUn saludo\n{{agent.name}}",
        ),
    ),
    "nl": (
        (
            "Begroeting",
            "hallo",
            "Beste {{customer.name}},\n\nbedankt voor uw bericht aan {{tenant.name}}.\n\n",
        ),
        (
            "Afsluiting",
            "bedankt",
            "We sluiten {{ticket.reference}} nu af. Laat het ons weten als er nog iets is.\n\n"
            "Met vriendelijke groet\n{{agent.name}}",
        ),
    ),
}


def ensure_macros(tenants: dict[str, Tenant]) -> int:
    """Every tenant's macros in each of its languages that has a set above; returns how many exist."""
    count = 0
    for tenant in tenants.values():
        for language in tenant.supported_languages:
            for position, (title, keyword, body) in enumerate(MACROS.get(language, ())):
                macro, _created = Macro.objects.update_or_create(
                    tenant=tenant,
                    language=language,
                    title=title,
                    defaults={"shortcut": keyword, "body": body, "position": position, "is_active": True},
                )
                macro.full_clean()  # the placeholders above must be ones the macros app knows
                count += 1
    return count
