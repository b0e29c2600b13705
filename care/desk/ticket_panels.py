"""What the ticket page shows beside the timeline: the customer panel (name, every identity, the
customer's other tickets of this tenant) and the tenant's guidelines for agents; and the SLA clocks
with their countdowns in the page's head (``desk/ticket_sla_clocks.html``).

Costs three queries whatever the customer's history: identities, other tickets (with their count),
guidelines. The SLA clocks reuse the page's one query (``care.sla.selectors.clocks_of``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from care.accounts.models import User
from care.contacts.selectors import customer_identities
from care.sla.models import ClockState, Target
from care.sla.selectors import ClockStatus
from care.tickets.models import Ticket
from care.tickets.selectors import customer_other_tickets, ticket_guidelines

OTHER_TICKETS_SHOWN = 10


def panels_context(*, ticket: Ticket, user: User) -> dict[str, Any]:
    """The template context this part adds to the ticket page."""
    others, others_total = customer_other_tickets(ticket=ticket, limit=OTHER_TICKETS_SHOWN)
    return {
        "customer_panel": {
            "customer": ticket.customer,
            "identities": customer_identities(customer=ticket.customer),
            "tickets": others,
            "tickets_total": others_total,
            "tickets_more": max(others_total - len(others), 0),
        },
        "guidelines": ticket_guidelines(ticket=ticket),
    }


def countdown_text(seconds: int) -> str:
    """The countdown as the page's script writes it: ``1:02:03``, ``2 d 01:02:03`` (absolute value)."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}" if days else f"{hours}:{minutes:02d}:{secs:02d}"
    return (_("%(days)s d") % {"days": days}) + " " + clock if days else clock


def sla_clocks(clocks: list[ClockStatus]) -> list[dict[str, Any]]:
    """Each clock of the ticket for the countdown list: running ones with the time left (negative:
    overdue), the others with their state (paused, met, stopped)."""
    rows = []
    for clock in clocks:
        running = clock.state == ClockState.RUNNING and clock.due_at is not None
        left = clock.seconds_left if running else None
        if not running:
            mood = "idle"
        elif clock.breached or (left is not None and left < 0):
            mood = "breached"
        elif clock.warned:
            mood = "warned"
        else:
            mood = "ok"
        rows.append(
            {
                "target": clock.target,
                "label": Target(clock.target).label if clock.target in Target.values else clock.target,
                "state": clock.state,
                "state_label": ClockState(clock.state).label
                if clock.state in ClockState.values
                else clock.state,
                "running": running,
                "due_at": clock.due_at,
                "seconds_left": left,
                "overdue": left is not None and left < 0,
                "countdown": countdown_text(left) if left is not None else "",
                "breached": clock.breached,
                "warned": clock.warned,
                "mood": mood,
            }
        )
    return rows
