"""The placeholders a macro may use, and rendering them: a fixed table and one regular expression.

Macro bodies are written by supervisors and are not trusted: they are never given to Django's
template engine. ``{{ customer.first_name }}`` (spaces inside the braces optional) is replaced by the
value from :data:`PLACEHOLDERS`; any other ``{{ … }}`` is refused when the macro is saved
(:func:`unknown_placeholders`). At render time a value that is missing (a customer without a name,
an agent without a full name) renders as nothing, and so would a placeholder unknown by then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from care.accounts.models import User
    from care.tickets.models import Ticket

# ``{{ name }}`` with optional spaces; the name is what PLACEHOLDERS knows or not.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True)
class Values:
    """What placeholders are filled from: the ticket (with tenant and customer) and the agent."""

    ticket: Ticket
    agent: User | None


def _first_word(text: str) -> str:
    words = text.split()
    return words[0] if words else ""


def _customer_name(values: Values) -> str:
    return values.ticket.customer.display_name.strip()


def _agent_name(values: Values) -> str:
    return values.agent.full_name.strip() if values.agent is not None else ""


# Named functions rather than lambdas: mypy types a lambda in this module-level table only when it has
# seen the models first, which depends on the order it checks modules in (a fresh cache failed).
def _ticket_reference(values: Values) -> str:
    return str(values.ticket.reference)


def _ticket_subject(values: Values) -> str:
    return str(values.ticket.subject)


def _tenant_name(values: Values) -> str:
    return str(values.ticket.tenant.name)


PLACEHOLDERS: dict[str, tuple[Promise, Callable[[Values], str]]] = {
    "customer.name": (_("the customer's name"), _customer_name),
    "customer.first_name": (
        _("the first word of the customer's name"),
        lambda v: _first_word(_customer_name(v)),
    ),
    "agent.name": (_("your full name"), _agent_name),
    "agent.first_name": (_("your first name"), lambda v: _first_word(_agent_name(v))),
    "ticket.reference": (_("the ticket's reference, e.g. SWN-1042"), _ticket_reference),
    "ticket.subject": (_("the ticket's subject"), _ticket_subject),
    "tenant.name": (_("the client company's name"), _tenant_name),
}


def placeholder_help() -> str:
    """The list for help texts: ``{{customer.name}}`` (the customer's name), …"""
    return ", ".join(f"{{{{{name}}}}} ({label})" for name, (label, _value) in PLACEHOLDERS.items())


def unknown_placeholders(text: str) -> list[str]:
    """The placeholders in ``text`` that are not in the table, and stray ``{{``/``}}`` (as written)."""
    unknown = [match.group(0) for match in PLACEHOLDER.finditer(text) if match.group(1) not in PLACEHOLDERS]
    rest = PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        unknown.append("{{" if "{{" in rest else "}}")
    return list(dict.fromkeys(unknown))


def render(text: str, values: Values) -> str:
    """``text`` with every placeholder replaced; missing values and unknown names render empty."""

    def replace(match: re.Match[str]) -> str:
        entry = PLACEHOLDERS.get(match.group(1))
        if entry is None:
            return ""
        return entry[1](values) or ""

    return PLACEHOLDER.sub(replace, text)
